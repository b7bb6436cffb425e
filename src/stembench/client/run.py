"""The main job: every built-in model on the embedded default dataset, ending in a report."""

from __future__ import annotations

import webbrowser
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from stembench._version import __version__
from stembench.client.executors import local_executor
from stembench.client.orchestrate import Evaluation, Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.endpoints.requests import DatasetRef
from stembench.errors import StembenchError

__all__ = ["BUILTIN_MODELS", "RunSummary", "collect_failure_cases", "run_benchmark"]

#: The models the main job evaluates.
BUILTIN_MODELS = ("atomsegnet", "atomnet-cubic", "atomnet-hexagonal", "atomap-like", "log-blob")


class RunSummary:
    """Where a run wrote its outputs and how each model's evaluation went."""

    def __init__(self, out_dir: Path, report: Path | None,
                 evaluations: dict[str, Evaluation]) -> None:
        self.out_dir, self.report, self.evaluations = out_dir, report, evaluations

    @property
    def complete(self) -> bool:
        """True when every model finished every shard."""
        return all(e.complete for e in self.evaluations.values())


def collect_failure_cases(
    results_dir: Path, dataset: Any, *, per_model: int = 2
) -> list[dict[str, Any]]:
    """Pick each model's worst generality images (lowest F1) for failure pictures.

    Returns dicts with the image, its ground truth, the predictions (x, y pixels), the
    optimal matching at the scoring radius, and the score, ready for the report.
    """
    from stembench.matching import match_positions

    cases: list[dict[str, Any]] = []
    for path in sorted(results_dir.glob("*.jsonl")):
        entries = []
        for shard in ResultsFile(path).shards():
            for entry in shard.get("images", []):
                conditions = entry.get("conditions") or {}
                if entry.get("score") and "coordinates" in entry and \
                        conditions.get("series") == "generality":
                    entries.append((entry["score"]["f1"], shard["model"]["name"], entry))
        entries.sort(key=lambda item: item[0])
        for _, model, entry in entries[:per_model]:
            image = dataset[entry["image_id"]]
            predicted = np.asarray(entry["coordinates"], dtype=float).reshape(-1, 2)
            matching = match_positions(predicted, image.coords,
                                       max_distance_px=0.5 / image.pixel_size)
            cases.append({"model": model, "image_id": image.image_id, "image": image.image,
                          "truth": image.coords, "predicted": predicted,
                          "matched_predicted_index": matching.predicted_index,
                          "matched_truth_index": matching.truth_index,
                          "score": entry["score"], "pixel_size": image.pixel_size})
    return cases


def run_benchmark(
    *,
    out_dir: str | Path = "stembench-output",
    preset: str = "standard",
    models: Sequence[str] = BUILTIN_MODELS,
    workers: int = 2,
    open_browser: bool = False,
    progress: bool = True,
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
    """
    from stembench.client.analysis import write_records
    from stembench.client.analysis.report import write_report
    from stembench.dataset_publish.cache import load

    out = Path(out_dir)
    results_dir = out / "results"
    dataset = load("atom-locating-benchmark", preset=preset)
    reference = DatasetRef(preset=preset)
    target = Target("local", local_executor(workers), factory=lambda: local_executor(workers),
                    max_in_flight=2 * workers)
    evaluations: dict[str, Evaluation] = {}
    try:
        for model in models:
            evaluations[model] = evaluate(
                model, results_path=results_dir / f"{model}.jsonl", dataset=reference,
                targets=[target], image_ids=dataset.ids, progress=progress)
            if evaluations[model].interrupted:
                raise KeyboardInterrupt
    finally:
        target.executor.shutdown(wait=False, cancel_futures=True)
    records = [r for m in models for r in ResultsFile(results_dir / f"{m}.jsonl").records()]
    if not records:
        raise StembenchError(f"no image was scored; see the errors in {results_dir}")
    write_records(records, out / "records.jsonl")
    provenance = {
        "stembench_version": __version__,
        "dataset": {"name": dataset.name, "version": dataset.version, "preset": preset,
                    "manifest_sha256": records[0].get("dataset_manifest_sha256")},
        "models": {m: asdict(e) | {"results_path": str(e.results_path)}
                   for m, e in evaluations.items()},
    }
    report = write_report(records, out_dir=out, provenance=provenance,
                          failure_images=collect_failure_cases(results_dir, dataset))
    if open_browser:
        webbrowser.open(report.resolve().as_uri())
    return RunSummary(out, report, evaluations)
