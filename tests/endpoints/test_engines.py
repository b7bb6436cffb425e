"""Shards run through globus-compute-endpoint's real engines, in process.

The tasks are serialized by the real ``ComputeSerializer`` and executed by
``ProcessPoolEngine`` and by ``GlobusComputeEngine`` with a Parsl ``LocalProvider``,
exactly as on an endpoint, without the Globus web service.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import stembench_faults as faults

pytest.importorskip("globus_compute_endpoint")

from stembench.client.executors import EngineExecutor, RemoteTaskError
from stembench.client.orchestrate import RetryPolicy, Target, evaluate
from stembench.client.results_file import ResultsFile
from stembench.endpoints.requests import DatasetRef, ModelSpec, ShardRequest

IDS = [f"img-{i}" for i in range(6)]


def _request(tmp_path: Path, ids: list[str]) -> dict:
    return ShardRequest(dataset=DatasetRef(cache_dir=str(tmp_path)), model=ModelSpec("echo"),
                        image_ids=tuple(ids)).to_dict()


@pytest.fixture(scope="module")
def process_engine():
    executor = EngineExecutor(max_workers=2)
    yield executor
    executor.shutdown()


def test_process_pool_engine_runs_a_shard(process_engine, tmp_path: Path) -> None:
    result = process_engine.submit(faults.echo_shard, _request(tmp_path, IDS[:2])).result(60)
    assert result["ok"] and [e["image_id"] for e in result["images"]] == IDS[:2]


def test_remote_exception_is_its_tracebacks_last_line(process_engine, tmp_path: Path) -> None:
    future = process_engine.submit(faults.raise_once, _request(tmp_path, IDS[:1]))
    with pytest.raises(RemoteTaskError, match="injected failure") as info:
        future.result(60)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_result_over_limit_is_rejected_by_the_engine(process_engine, tmp_path: Path) -> None:
    future = process_engine.submit(faults.oversized, _request(tmp_path, IDS[:1]))
    with pytest.raises(RemoteTaskError, match=r"(?i)size"):
        future.result(60)


def test_orchestrator_over_engine_retries_and_reports(process_engine, tmp_path: Path) -> None:
    target = Target("engine", process_engine, max_in_flight=2)
    outcome = evaluate("echo", results_path=tmp_path / "r.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)), targets=[target],
                       image_ids=IDS, shard_size=2, progress=False,
                       retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
                       shard_function=faults.raise_once, identify=None)
    assert outcome.complete and outcome.n_finished == 3
    assert sorted(r["image_id"] for r in ResultsFile(tmp_path / "r.jsonl").records()) == IDS

    oversized = evaluate("echo", results_path=tmp_path / "o.jsonl",
                         dataset=DatasetRef(cache_dir=str(tmp_path)), targets=[target],
                         image_ids=IDS[:2], shard_size=2, progress=False,
                         retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
                         shard_function=faults.oversized, identify=None)
    assert next(iter(oversized.failed_shards.values())).startswith("engine: RemoteTaskError")


def test_globus_compute_engine_with_local_provider(tmp_path: Path) -> None:
    from globus_compute_endpoint.engines import GlobusComputeEngine
    from parsl.providers import LocalProvider

    # the engine launches its workers with `globus-compute-endpoint`, found on PATH
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    engine = GlobusComputeEngine(
        provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1),
        max_workers_per_node=2, address="127.0.0.1", encrypted=False,
    )
    executor = EngineExecutor(engine, run_dir=str(tmp_path / "run"))
    try:
        target = Target("gce", executor, max_in_flight=2)
        outcome = evaluate("echo", results_path=tmp_path / "r.jsonl",
                           dataset=DatasetRef(cache_dir=str(tmp_path)), targets=[target],
                           image_ids=IDS, shard_size=3, progress=False,
                           shard_function=faults.echo_shard, identify=None)
    finally:
        executor.shutdown()
    assert outcome.complete and outcome.n_finished == 2


def test_real_model_and_dataset_through_engine_into_report(
    process_engine, mini_dataset_path: Path, tmp_path: Path
) -> None:
    """log-blob over the whole mini dataset via the engine; results feed the analysis."""
    from stembench.client.analysis import compute_cutoffs
    from stembench.client.analysis.report import load_report, write_report
    from stembench.client.run import records_provenance
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    results = tmp_path / "log-blob.jsonl"
    outcome = evaluate("log-blob", results_path=results,
                       dataset=DatasetRef(source="path", path=str(mini_dataset_path)),
                       targets=[Target("engine", process_engine, max_in_flight=2)],
                       progress=False)
    assert outcome.complete
    records = ResultsFile(results).records()
    with open_dataset(mini_dataset_path) as dataset:
        assert sorted(r["image_id"] for r in records) == sorted(dataset.ids)
    clean = [r for r in records if r["step"] == 0 and r["series"] != "generality"]
    assert clean and min(r["recall"] for r in clean) == 1.0
    # the analysis needs only the records: no images
    cutoffs = compute_cutoffs(records, bootstrap=10, methods=("pchip",), progress=False)
    assert {c.group for c in cutoffs} >= {"SrTiO3-simulated", "WS2-simulated"}
    report = write_report(records, out_dir=tmp_path / "report",
                          provenance=records_provenance(records), bootstrap=10)
    assert report.exists()
    stored = load_report(report.with_suffix(".json"))
    assert len(stored["cutoffs"]) == len(compute_cutoffs(records, bootstrap=10, progress=False))
    assert stored["provenance"]["dataset_sha256"] == records[0]["dataset_manifest_sha256"]
