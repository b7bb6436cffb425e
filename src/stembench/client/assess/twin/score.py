"""Score models on an image's twins through the path ``stembench evaluate`` uses.

The twins are rendered where the models run
(:func:`stembench.endpoints.twin_task.build_twin_dataset`, sent to the first target's
executor: a local process pool or a Globus Compute endpoint), then
every model is evaluated on that file by :func:`stembench.client.orchestrate.evaluate_models`
(shards, retries, deadlines, results files, the endpoint's scorer), and the score records are
read back from the results files. The twins' file is deleted where it was written once the
scores are back (:func:`~stembench.endpoints.twin_task.remove_twin_dataset`); where that fails,
:attr:`TwinScores.kept` says why it was kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stembench._version import __version__
from stembench.client.executors import with_upgrade_advice
from stembench.client.orchestrate import Target, evaluate_models
from stembench.client.scheduler import describe_error
from stembench.client.target_calls import answer_within
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, plan_to_json
from stembench.endpoints.requests import DatasetRef
from stembench.endpoints.twin_task import build_twin_dataset, remove_twin_dataset
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
    kept : str
        Empty when the twins' file was deleted after scoring; else why it was kept there.
    errors : dict of str to str
        Model label -> why it could not be evaluated at all (one line; it has no records).
    """

    records: dict[str, list[dict[str, Any]]]
    failed_shards: dict[str, dict[str, str]]
    dataset_path: str
    kept: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _remote_line(exc: BaseException) -> str:
    """One line for a failed endpoint operation; an older stembench there is told to upgrade."""
    return with_upgrade_advice(describe_error(exc))


def _remove(target: Target, path: str, timeout_s: float) -> str:
    """Delete the twins' file where it was written; ``""``, or why it was kept."""
    future = target.executor.submit(remove_twin_dataset, path, __version__)
    try:
        answer_within(target, future, "the twins' deletion", timeout_s)
    except Exception as exc:  # not deleted in time, or the deletion failed where it ran
        return _remote_line(exc)
    return ""


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
    try:  # within the task deadline, and ended at once when the endpoint goes offline
        built = answer_within(target, future, "the twin render", task_deadline_s)
    except StembenchError as exc:  # one line already; an older endpoint is told to upgrade
        if with_upgrade_advice(str(exc)) == str(exc):
            raise
        raise StembenchError(with_upgrade_advice(str(exc))) from exc
    except Exception as exc:  # the render failed where it ran (e.g. on the endpoint)
        raise StembenchError(f"{target.name}: the twins could not be rendered: "
                             f"{_remote_line(exc)}") from exc
    dataset = DatasetRef(name=f"twin-{model.digest()}", source="path", path=built["path"])
    folder = Path(results_dir) / str(built["twin_set"])  # one folder per twin set
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[ModelChoice]] = {}
    for choice in models:
        groups.setdefault(repr(sorted(choice.options.items())), []).append(choice)
    records: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    from stembench.client.results_file import ResultsFile

    pending = list(groups.values())
    while pending:
        group = pending.pop(0)
        paths = {c.spec: folder / f"{_slug(c.label)}.jsonl" for c in group}
        try:
            outcome = evaluate_models(paths, dataset=dataset, targets=targets,
                                      image_ids=built["image_ids"],
                                      model_options=group[0].options, progress=False,
                                      task_deadline_s=task_deadline_s,
                                      image_timeout_s=image_timeout_s, lanes=lanes)
        except StembenchError as exc:  # before any shard ran (a model or the twins unusable)
            if len(group) > 1:  # find which: each model alone
                pending[:0] = [[choice] for choice in group]
            else:
                errors[group[0].label] = " ".join(str(exc).split())
            continue
        for choice in group:
            evaluation = outcome[choice.spec]
            records[choice.label] = ResultsFile(paths[choice.spec]).records(evaluation.shard_ids)
            failed[choice.label] = dict(evaluation.failed_shards)
    kept = _remove(target, str(built["path"]), min(task_deadline_s or 60.0, 60.0))
    return TwinScores(records, failed, str(built["path"]), kept, errors)
