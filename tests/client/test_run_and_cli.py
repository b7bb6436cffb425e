"""The main job and the evaluate command, end to end on the mini preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stembench.cli import app
from stembench.client.results_file import ResultsFile
from stembench.dataset_publish.storage.stembench_layout import open_dataset


def test_run_writes_report_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.client.run import run_benchmark

    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "cache"))
    first = run_benchmark(out_dir=tmp_path / "out", preset="mini", models=["log-blob"],
                          workers=1, progress=False)
    assert first.complete and first.report is not None
    html = first.report.read_text()
    assert "log-blob" in html and "data:image/png;base64" in html
    report = json.loads(first.report.with_suffix(".json").read_text())
    records = ResultsFile(tmp_path / "out" / "results" / "log-blob.jsonl").records()
    with open_dataset(next((tmp_path / "cache").rglob("mini.h5"))) as dataset:
        assert len(records) == len(dataset.ids)
    assert report["provenance"]["dataset_sha256"] == records[0]["dataset_manifest_sha256"]
    counts = report["provenance"]["evaluations"]["log-blob"]
    assert (counts["images"], counts["images_failed"]) == (len(records), 0)
    assert counts["identity"]["dataset_sha256"] == report["provenance"]["dataset_sha256"]
    # running again redoes nothing
    again = run_benchmark(out_dir=tmp_path / "out", preset="mini", models=["log-blob"],
                          workers=1, progress=False)
    outcome = again.evaluations["log-blob"]
    assert outcome.n_finished == 0 and outcome.n_skipped == outcome.n_shards


def test_evaluate_command_on_a_dataset_file(tmp_path: Path, mini_dataset_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    answer = CliRunner().invoke(app, ["evaluate", "--model", "atomap-like", "--dataset",
                                      str(mini_dataset_path), "--results", str(results),
                                      "--workers", "1"])
    assert answer.exit_code == 0, answer.output
    assert "0 failed" in answer.output
    assert (tmp_path / "report.html").is_file()
    with open_dataset(mini_dataset_path) as dataset:
        assert len(ResultsFile(results).records()) == len(dataset.ids)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from stembench.cli import main; main()", "endpoint", "config",
         "kubernetes", "--out", str(tmp_path / "c.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "stembench: error: unknown endpoint template 'kubernetes'; known: "
        "['pbs-gpu', 'slurm-gpu', 'workstation-gpu']"
    ]


def test_results_of_another_model_version_are_redone(tmp_path: Path,
                                                     mini_dataset_path: Path) -> None:
    """A results file written by other weights of the model is not taken as done."""
    from stembench.client.orchestrate import evaluate
    from stembench.endpoints.requests import DatasetRef

    results = tmp_path / "r.jsonl"
    dataset = DatasetRef(source="path", path=str(mini_dataset_path))
    with open_dataset(mini_dataset_path) as opened:
        ids = opened.ids[:6]
    first = evaluate("log-blob", results_path=results, dataset=dataset, image_ids=ids,
                     shard_size=3, progress=False)
    assert first.complete and first.n_finished == 2
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    for shard in lines:  # pretend an earlier release produced them
        shard["model"]["version"] = shard["identity"]["model"]["version"] = "0.9"
    results.write_text("".join(json.dumps(shard) + "\n" for shard in lines))
    with pytest.warns(UserWarning, match="2 shard"):
        again = evaluate("log-blob", results_path=results, dataset=dataset, image_ids=ids,
                         shard_size=3, progress=False)
    assert again.n_finished == 2 and again.n_skipped == 0
    records = ResultsFile(results).records()
    assert len(records) == 6 and {r["model_version"] for r in records} == {"1.0"}
