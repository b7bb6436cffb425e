"""A results file that cannot be written (a full disk) fails its shards, and the run still ends
with its summary: a real ``stembench evaluate`` process whose file size limit is exceeded."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

#: Bytes any file of the run may hold: the lock file fits, a shard's result line does not.
FILE_LIMIT = 1500


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit is EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.mark.slow
def test_a_full_disk_fails_the_shard_and_the_summary_is_printed(tiny_dataset_path: Path,
                                                                tmp_path: Path) -> None:
    from stembench.dataset_publish.storage.verified import verify_dataset_file

    verify_dataset_file(tiny_dataset_path, cache_dir=tmp_path / "cache")  # no record to write
    results = tmp_path / "r.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", "from stembench.cli import main; main()", "evaluate", "--model",
         "log-blob", "--dataset", str(tiny_dataset_path), "--results", str(results),
         "--workers", "1", "--shard-size", "3", "--no-report"],
        env={**os.environ, "STEMBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "0 shard(s) finished, 0 already done, 1 failed" in done.stdout
    assert f"results file {results}: cannot append this shard's result: [Errno 27] File too " \
           "large" in done.stderr
    assert not (tmp_path / "r.jsonl.lock").exists()
