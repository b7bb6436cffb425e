"""The main job: every built-in model on the embedded default dataset, ending in a report."""

from __future__ import annotations

import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stembench.client.executors import local_executor
from stembench.client.lifeline import stop_executor
from stembench.client.orchestrate import Evaluation, Target, evaluate_models
from stembench.client.results_file import ResultsFile
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S
from stembench.endpoints.requests import DatasetRef
from stembench.errors import StembenchError

__all__ = [
    "BUILTIN_MODELS",
    "EXIT_NO_USABLE_RESULT",
    "RunSummary",
    "collect_failure_cases",
    "default_models",
    "exit_status",
    "image_counts",
    "records_provenance",
    "run_benchmark",
]

#: The models the main job evaluates.
BUILTIN_MODELS = ("atomsegnet", "atomnet-cubic", "atomnet-hexagonal", "atomap-like", "log-blob")


def default_models() -> tuple[list[str], list[str]]:
    """The main job's models when none are named, and what was left out.

    Returns
    -------
    models : list of str
        :data:`BUILTIN_MODELS` followed by every published model already fetched into the
        cache (:mod:`stembench.endpoints.models.published`).
    left_out : list of str
        One line per published model not included: why, and how to fetch it where it can be.
    """
    from stembench.endpoints.models.published import PUBLISHED, fetched_path

    models, left_out = list(BUILTIN_MODELS), []
    for entry in PUBLISHED:
        if entry.unavailable:
            left_out.append(f"{entry.name}: {entry.unavailable}")
        elif fetched_path(entry.name).is_file():
            models.append(entry.name)
        else:
            left_out.append(f"{entry.name}: not fetched; include it with `stembench models "
                            f"fetch {entry.name}`")
    return models, left_out


class RunSummary:
    """Where a run wrote its outputs and how each model's evaluation went."""

    def __init__(self, out_dir: Path, report: Path | None,
                 evaluations: dict[str, Evaluation]) -> None:
        self.out_dir, self.report, self.evaluations = out_dir, report, evaluations

    @property
    def complete(self) -> bool:
        """True when every model finished every shard."""
        return all(e.complete for e in self.evaluations.values())


def records_provenance(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The dataset and scorer every record was produced with (as the report needs them).

    Raises
    ------
    StembenchError
        If the records come from more than one dataset version or scorer version.
    """
    from stembench.scoring import SCORER_VERSION

    datasets = {(r.get("dataset_name"), r.get("dataset_version"),
                 r.get("dataset_manifest_sha256")) for r in records}
    scorers = {r.get("scorer_version", SCORER_VERSION) for r in records}
    if len(datasets) != 1 or len(scorers) != 1:
        raise StembenchError(f"records mix datasets {sorted(map(str, datasets))} or scorer "
                             f"versions {sorted(map(str, scorers))}: report them separately")
    (name, version, sha256), scorer = datasets.pop(), scorers.pop()
    return {"dataset_name": name, "dataset_version": version, "dataset_sha256": sha256,
            "scorer_version": scorer}


def _failure_case(model: str, image: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """Ground truth, predictions and their pairing inside the scored region of one image."""
    from stembench.scoring import matched_pairs

    predicted = np.asarray(entry["coordinates"], dtype=float).reshape(-1, 2)
    score = entry["score"]
    pairs = matched_pairs(predicted, image.coords, pixel_size=image.pixel_size,
                          image_shape=image.shape, image_id=image.image_id,
                          radius_angstrom=score.get("radius_angstrom", 0.5),
                          border_px=score.get("border_px", 6.0), faint=image.faint_coords)
    new_pred = np.cumsum(pairs.predicted_kept) - 1  # row in the kept arrays
    new_truth = np.cumsum(pairs.truth_kept) - 1
    return {"model": model, "image_id": image.image_id, "image": image.image,
            "truth": image.coords[pairs.truth_kept], "predicted": predicted[pairs.predicted_kept],
            "matched_predicted_index": new_pred[pairs.predicted_index],
            "matched_truth_index": new_truth[pairs.truth_index],
            "scores": score, "pixel_size": image.pixel_size}


def image_counts(evaluation: Evaluation) -> tuple[int, int]:
    """Images with a result in ``evaluation``'s current shards, and how many of them failed."""
    shards = ResultsFile(evaluation.results_path).current_shards(evaluation.shard_ids)
    entries = [entry for shard in shards for entry in shard.get("images", [])]
    return len(entries), sum(1 for entry in entries if entry.get("error"))


#: Exit status of ``evaluate`` and ``run`` when some image has no result or every image failed
#: (``2``: the dataset, the model or an option could not be used; ``130``: interrupted).
EXIT_NO_USABLE_RESULT = 1


def exit_status(evaluations: Sequence[Evaluation]) -> tuple[int, str | None]:
    """The exit status of a finished run and, when it is not 0, why.

    A run in which every image of every model has a result (failed images included: a
    failure is a result) exits 0. It exits :data:`EXIT_NO_USABLE_RESULT` when some image
    has no result (a failed shard whose images could not be recorded) or every image failed.
    """
    counts = [(*image_counts(e), e.n_images) for e in evaluations]
    missing = sum(max(0, planned - got) for got, _, planned in counts)
    if missing:
        return EXIT_NO_USABLE_RESULT, (f"{missing} image(s) have no result (see the failed "
                                       "shards above); run the same command to try them again")
    got, failed = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if got and failed == got:
        return EXIT_NO_USABLE_RESULT, f"every image failed ({failed} of {got})"
    return 0, None


def collect_failure_cases(
    evaluations: Sequence[Evaluation], dataset: Any, *, per_model: int = 2
) -> list[dict[str, Any]]:
    """Pick each model's worst generality images (lowest F1) for failure pictures.

    Only the current shards of each evaluation are read, never results of another
    dataset, scorer or model version. A failed image shows as one where nothing was found.
    Returns dicts with the image, its ground truth and the predictions (x, y pixels)
    inside the scored region, and their optimal pairing, ready for the report.

    Parameters
    ----------
    evaluations : sequence of Evaluation
        The models' evaluations.
    dataset : mapping of str to BenchmarkImage
        The dataset they were evaluated on, by image id (an opened dataset file).
    per_model : int, optional
        Images kept per model; default 2.
    """
    cases: list[dict[str, Any]] = []
    for evaluation in evaluations:
        entries = []
        for shard in ResultsFile(evaluation.results_path).current_shards(evaluation.shard_ids):
            for entry in shard.get("images", []):
                conditions = entry.get("conditions") or {}
                if entry.get("score") and "coordinates" in entry and \
                        conditions.get("series") == "generality":
                    entries.append((entry["score"]["f1"], shard["model"]["name"], entry))
        entries.sort(key=lambda item: item[0])
        cases += [_failure_case(model, dataset[entry["image_id"]], entry)
                  for _, model, entry in entries[:per_model]]
    return cases


def run_benchmark(
    *,
    out_dir: str | Path = "stembench-output",
    preset: str = "standard",
    models: Sequence[str] = BUILTIN_MODELS,
    workers: int = 2,
    open_browser: bool = False,
    progress: bool = True,
    image_timeout_s: float | None = DEFAULT_IMAGE_TIMEOUT_S,
) -> RunSummary:
    """Evaluate ``models`` on the embedded default dataset and write the report.

    The dataset is loaded from (or built into) the local cache first, in this process,
    so that workers never race to build it. Each model's results go to
    ``out_dir/results/<model>.jsonl`` as shards finish; running again resumes.

    Parameters
    ----------
    out_dir : path-like
        Output folder (results, records, report).
    preset : {"standard", "mini"}
        Dataset preset.
    models : sequence of str
        Model specs to evaluate.
    workers : int
        Local worker processes.
    open_browser : bool
        Open the HTML report when done.
    progress : bool
        Show progress bars.
    image_timeout_s : float or None
        Seconds a model may take on one image before that image is failed.
    """
    from stembench.client.analysis import write_records
    from stembench.client.analysis.report import write_report
    from stembench.dataset_publish.loading import load

    out = Path(out_dir)
    results_dir = out / "results"
    dataset = load("atom-locating-benchmark", preset=preset)
    reference = DatasetRef(preset=preset)
    target = Target("local", local_executor(workers), factory=lambda: local_executor(workers),
                    max_in_flight=2 * workers)
    try:
        evaluations = evaluate_models(
            {model: results_dir / f"{model}.jsonl" for model in models}, dataset=reference,
            targets=[target], image_ids=dataset.ids, progress=progress,
            image_timeout_s=image_timeout_s)
        if any(evaluation.interrupted for evaluation in evaluations.values()):
            raise KeyboardInterrupt
    finally:
        stop_executor(target.executor)
    current = {m: ResultsFile(e.results_path) for m, e in evaluations.items()}
    counts = {m: image_counts(e) for m, e in evaluations.items()}
    records = [r for m, e in evaluations.items() for r in current[m].records(e.shard_ids)]
    if not records:
        raise StembenchError(f"no image was evaluated; see the failed shards in {results_dir}")
    write_records(records, out / "records.jsonl")
    provenance = {
        **records_provenance(records),
        "dataset_preset": preset,
        "evaluations": {m: {"shards": e.n_shards, "finished": e.n_finished,
                            "resumed": e.n_skipped, "failed": e.failed_shards,
                            "images": counts[m][0], "images_failed": counts[m][1],
                            "identity": e.identity, "results": str(e.results_path)}
                        for m, e in evaluations.items()},
        "image_errors": [err for m, e in evaluations.items()
                         for err in current[m].image_errors(e.shard_ids)],
    }
    report = write_report(records, out_dir=out, provenance=provenance,
                          failure_images=collect_failure_cases(list(evaluations.values()),
                                                               dataset))
    if open_browser:
        webbrowser.open(report.resolve().as_uri())
    return RunSummary(out, report, evaluations)
