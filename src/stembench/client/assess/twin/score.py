"""Score models on an image's twins through the path ``stembench evaluate`` uses.

The twins are rendered where the models run
(:func:`stembench.endpoints.twin_task.build_twin_dataset`, sent to the first target's
executor: a local process pool or a Globus Compute endpoint), then
every model is evaluated on that file by :func:`stembench.client.orchestrate.evaluate_models`
(shards, retries, deadlines, results files, the endpoint's scorer), and the score records are
read back from the results files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stembench._version import __version__
from stembench.client.lifeline import give_up
from stembench.client.orchestrate import Target, evaluate_models
from stembench.client.scheduler import describe_error
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, plan_to_json
from stembench.endpoints.requests import DatasetRef
from stembench.endpoints.twin_task import build_twin_dataset
from stembench.errors import StembenchError

__all__ = ["ModelChoice", "TwinScores", "score_on_twins"]


@dataclass(frozen=True)
class ModelChoice:
    """A model to score: its spec (registry name, file or ``module:function``) and options."""

    spec: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Name shown in reports (the spec, with its weights file when one is given)."""
        weights = self.options.get("weights")
        return f"{self.spec} [{Path(str(weights)).name}]" if weights else self.spec


@dataclass(frozen=True)
class TwinScores:
    """Score records of every model on the twins.

    Attributes
    ----------
    records : dict of str to list of dict
        Model label -> one record per twin image (recall, precision, f1, rms_angstrom,
        series, step, axis_value, failed, error, ...).
    failed_shards : dict of str to dict
        Model label -> shards that failed after their retries (their images are missing).
    dataset_path : str
        Where the twins were written, on the machine that ran the models.
    """

    records: dict[str, list[dict[str, Any]]]
    failed_shards: dict[str, dict[str, str]]
    dataset_path: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


def score_on_twins(model: TwinModel, plan: Sequence[TwinVariant], models: Sequence[ModelChoice],
                   *, targets: Sequence[Target], results_dir: str | Path,
                   task_deadline_s: float | None = 900.0,
                   image_timeout_s: float | None = 120.0,
                   lanes: Mapping[str, int] | None = None) -> TwinScores:
    """Render the twins on ``targets[0]`` and evaluate every model on them.

    Parameters
    ----------
    model, plan
        The fitted twin model and the images to render.
    models : sequence of ModelChoice
        Models to score; those with the same options run through one scheduler.
    targets : sequence of Target
        Executors, as ``stembench evaluate`` builds them (local pool or endpoints); the twins
        are rendered on the first, so give one endpoint.
    results_dir : path-like
        Folder of the results: a sub-folder per twin set, one JSON-lines file per model.
    task_deadline_s, image_timeout_s, lanes
        As for :func:`~stembench.client.orchestrate.evaluate_models`.

    Raises
    ------
    StembenchError
        If the twins cannot be rendered where the models run.
    """
    target = targets[0]
    future = target.executor.submit(build_twin_dataset, model.to_dict(), plan_to_json(list(plan)),
                                    __version__)
    try:
        built = future.result(timeout=task_deadline_s)
    except TimeoutError as exc:
        give_up(future)
        raise StembenchError(f"{target.name}: the twins were not rendered within "
                             f"{task_deadline_s:g} s (task deadline)") from exc
    except StembenchError:
        raise
    except Exception as exc:  # the render failed where it ran (e.g. on the endpoint)
        raise StembenchError(f"{target.name}: the twins could not be rendered: "
                             f"{describe_error(exc)}") from exc
    dataset = DatasetRef(name=f"twin-{model.digest()}", source="path", path=built["path"])
    folder = Path(results_dir) / Path(str(built["path"])).stem  # one folder per twin set
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[ModelChoice]] = {}
    for choice in models:
        groups.setdefault(repr(sorted(choice.options.items())), []).append(choice)
    records: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, dict[str, str]] = {}
    from stembench.client.results_file import ResultsFile

    for group in groups.values():
        paths = {c.spec: folder / f"{_slug(c.label)}.jsonl" for c in group}
        outcome = evaluate_models(paths, dataset=dataset, targets=targets,
                                  image_ids=built["image_ids"], model_options=group[0].options,
                                  progress=False, task_deadline_s=task_deadline_s,
                                  image_timeout_s=image_timeout_s, lanes=lanes)
        for choice in group:
            evaluation = outcome[choice.spec]
            records[choice.label] = ResultsFile(paths[choice.spec]).records(evaluation.shard_ids)
            failed[choice.label] = dict(evaluation.failed_shards)
    return TwinScores(records, failed, str(built["path"]))
