"""Runs end, always, with what they did: real ``stembench evaluate`` processes and models
that hang, exit, kill their worker, or whose client is stopped (fault models live in
``tests/support/stembench_faults.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stembench.client.results_lock import ResultsLock

#: Liveness bounds (seconds) for waits on other processes; never a timing assertion.
PATIENCE_S = 180


def _start(model: str, dataset: Path, results: Path, fault_dir: Path,
           *extra: str) -> subprocess.Popen[str]:
    fault_dir.mkdir(exist_ok=True)
    env = {**os.environ, "STEMBENCH_FAULT_DIR": str(fault_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from stembench.cli import main; main()", "evaluate", "--model",
         f"stembench_faults:{model}", "--dataset", str(dataset), "--results", str(results),
         "--no-report", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Undo an inherited 'ignore SIGINT' (a shell's background job), as a terminal has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=PATIENCE_S)
    return process.returncode, out, err


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent's reaping is left


def _worker_pids(fault_dir: Path) -> list[int]:
    return [int(p.name.removeprefix("pid-")) for p in fault_dir.glob("pid-*")]


def _wait_for(condition: object, what: str) -> None:
    end = time.monotonic() + PATIENCE_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def _images(results: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    return {entry["image_id"]: entry for shard in lines for entry in shard["images"]}


@pytest.mark.slow
@pytest.mark.parametrize(("model", "expected"), [
    ("hang_once", "ran past the 2 s deadline per image"),
    ("spin_once", "ran past the 2 s deadline per image"),
    ("exit_once", "raised SystemExit: 0 (it tried to end the process"),
    ("interrupt_once", "raised KeyboardInterrupt: raised by the model (not a Ctrl-C"),
    ("stubborn_once", "ran past the 2 s deadline per image and did not stop; its worker "
                      "process was killed"),
])
def test_a_hung_or_exiting_model_fails_one_image(model: str, expected: str, tmp_path: Path,
                                                 tiny_dataset_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    code, out, err = _finish(_start(model, tiny_dataset_path, results, tmp_path / "faults",
                                    "--image-timeout", "2", "--workers", "1",
                                    "--shard-size", "3"))
    assert code == 0, err
    assert "1 shard(s) finished, 0 already done, 0 failed" in out
    images = _images(results)
    errors = [entry["error"] for entry in images.values() if entry["error"]]
    assert len(images) == 3 and len(errors) == 1, images
    assert expected in str(errors[0])
    assert "3 image(s) evaluated, 1 failed" in out
    failed = next(entry for entry in images.values() if entry["error"])
    assert failed["score"]["recall"] == 0.0 and failed["coordinates"] == []  # found nothing


@pytest.mark.slow
@pytest.mark.parametrize("model", ["hard_exit_always", "sigkill_always"])
def test_a_model_that_kills_its_worker_fails_the_shard_not_the_run(
        model: str, tmp_path: Path, tiny_dataset_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    code, out, err = _finish(_start(model, tiny_dataset_path, results, tmp_path / "faults",
                                    "--workers", "1", "--shard-size", "3"))
    assert code == 1
    assert "0 shard(s) finished, 0 already done, 1 failed" in out  # the summary is printed
    assert "worker lost" in err
    assert "Exit status 1: every image failed (3 of 3)" in err
    assert len(_worker_pids(tmp_path / "faults")) == 3  # three attempts, three workers
    assert not (results.parent / "r.jsonl.lock").exists()
    images = _images(results)  # every image is in the results, failed, scored as nothing
    assert sorted(images) == _ids(tiny_dataset_path)
    for entry in images.values():
        assert "its shard failed as a whole" in entry["error"] and "worker lost" in entry["error"]
        assert entry["score"]["recall"] == 0.0 and entry["score"]["fn"] > 0


def _ids(dataset: Path) -> list[str]:
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    with open_dataset(dataset) as opened:
        return sorted(opened.ids)


def _mark_second_image(dataset_path: Path, faults: Path) -> tuple[str, dict[str, str]]:
    """Mark the dataset's second image for the ``*_on_marked`` models; its id, every hash."""
    from stembench_faults import image_hash

    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    faults.mkdir()
    with open_dataset(dataset_path) as dataset:
        hashes = {i: image_hash(dataset[i].image) for i in dataset.ids}
        marked = dataset.ids[1]
    (faults / "marked").write_text(hashes[marked])
    return marked, hashes


@pytest.mark.slow
def test_images_of_a_shard_that_killed_its_worker_are_in_the_report(
        tmp_path: Path, tiny_dataset_path: Path) -> None:
    faults, results = tmp_path / "faults", tmp_path / "r.jsonl"
    hard, _ = _mark_second_image(tiny_dataset_path, faults)
    code, out, err = _finish(_start("hard_exit_on_marked", tiny_dataset_path, results, faults,
                                    "--workers", "1", "--shard-size", "1", "--report"))
    assert code == 0, err  # every image has a result: a failure is a result
    assert "2 shard(s) finished, 0 already done, 1 failed" in out
    assert "3 image(s) evaluated, 1 failed" in out
    report = json.loads((tmp_path / "report.json").read_text())
    records = {r["image_id"]: r for r in report["scores"]}
    assert report["models"]["stembench_faults:hard_exit_on_marked"]["n_failed"] == 1
    assert sorted(records) == _ids(tiny_dataset_path)
    assert [i for i, r in records.items() if r["failed"]] == [hard]
    assert "its shard failed as a whole" in records[hard]["error"]
    assert "worker lost" in records[hard]["error"] and records[hard]["f1"] == 0.0
    page = (tmp_path / "report.html").read_text()
    failed_section = page.split("<h2>Failed images</h2>")[1].split("</table>")[0]
    assert hard in failed_section and "its shard failed as a whole" in failed_section


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["ctrl-c", "sigterm", "kill-9"])
def test_stopping_the_client_leaves_no_worker(stop: signal.Signals, tmp_path: Path,
                                              tiny_dataset_path: Path) -> None:
    faults, results = tmp_path / "faults", tmp_path / "r.jsonl"
    process = _start("hang_always", tiny_dataset_path, results, faults, "--workers", "2",
                     "--shard-size", "1")
    _wait_for(lambda: len(_worker_pids(faults)) == 2, "two workers running the model")
    workers = _worker_pids(faults)
    if stop == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
        os.killpg(process.pid, stop)
    else:
        process.send_signal(stop)
    code, out, _ = _finish(process)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), f"workers {workers} to end")
    if stop == signal.SIGKILL:
        assert code == -signal.SIGKILL
        with ResultsLock(results):  # the kernel released the dead run's lock
            pass
    else:
        assert code == 130
        assert "0 shard(s) finished, 0 already done, 0 failed" in out
        assert "Interrupted: finished shards are kept" in out
        assert not (tmp_path / "r.jsonl.lock").exists()


@pytest.mark.slow
def test_a_worker_killed_past_the_deadline_keeps_the_shards_finished_images(
        tmp_path: Path, tiny_dataset_path: Path) -> None:
    faults, results = tmp_path / "faults", tmp_path / "r.jsonl"
    stuck, hashes = _mark_second_image(tiny_dataset_path, faults)
    code, out, err = _finish(_start("stubborn_on_marked", tiny_dataset_path, results, faults,
                                    "--image-timeout", "2", "--workers", "1",
                                    "--shard-size", "3"))
    assert code == 0, err
    assert "3 image(s) evaluated, 1 failed" in out
    assert len(_worker_pids(faults)) == 2  # the stuck worker was killed and replaced
    calls = (faults / "calls").read_text().split()
    assert sorted(calls) == sorted(hashes.values())  # no image ran twice: the first was kept
    images = _images(results)
    assert [i for i, e in images.items() if e["error"]] == [stuck]
    assert "its worker process was killed" in images[stuck]["error"]
