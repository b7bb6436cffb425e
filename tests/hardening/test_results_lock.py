"""A results file has one writer, and only stembench results files are written to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stembench.client.results_lock import ResultsLock, check_results_path
from stembench.errors import InputError


def test_a_second_lock_on_the_same_file_is_refused_until_the_first_ends(tmp_path: Path) -> None:
    results = tmp_path / "sub" / "r.jsonl"
    first = ResultsLock(results)
    holder = json.loads(first.lock_path.read_text())
    assert holder["pid"] == os.getpid()
    with pytest.raises(InputError, match=rf"r.jsonl is being written by process {os.getpid()} "
                                         rf"on host {holder['host']} \(started "):
        ResultsLock(results)
    first.release()
    assert not first.lock_path.exists()
    with ResultsLock(results) as again:
        assert again.lock_path.exists()


def test_a_lock_held_by_another_process_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from stembench.client.results_lock import "
         "ResultsLock; lock = ResultsLock(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(results)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    try:
        with pytest.raises(InputError, match=f"being written by process {holder.pid} "):
            ResultsLock(results)
    finally:
        holder.communicate("")
    with ResultsLock(results):  # its end released the lock
        pass


def test_a_lock_file_left_by_a_dead_run_does_not_block(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.lock").write_text('{"pid": 1, "host": "gone"}')
    with ResultsLock(results) as lock:
        assert json.loads(lock.lock_path.read_text())["pid"] == os.getpid()


@pytest.mark.parametrize(("first_line", "accepted"), [
    ('{"shard_id":"abc","ok":true,"images":[]}\n', True),
    ('{"shard_id":"abc","ok":tr', True),  # cut short by a crash: still ours
    ('{"user": 1}\n', False),
    ("plain text\n", False),
    ("", True),
])
def test_only_results_files_are_appended_to(tmp_path: Path, first_line: str,
                                             accepted: bool) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(first_line)
    if accepted:
        assert check_results_path(path) == path
    else:
        with pytest.raises(InputError, match="exists and is not a stembench results file"):
            check_results_path(path)


def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    (tmp_path / "r.jsonl.lock").symlink_to(victim)
    with pytest.raises(InputError, match=r"lock file .*r.jsonl.lock is a symbolic link \(to "
                                         r"'.*precious.txt'\); refused"):
        ResultsLock(tmp_path / "r.jsonl")
    assert victim.read_text() == "keep me\n"


def test_every_name_of_a_results_file_leads_to_one_lock(tmp_path: Path) -> None:
    real = tmp_path / "real" / "r.jsonl"
    real.parent.mkdir()
    (tmp_path / "link.jsonl").symlink_to(real)
    with ResultsLock(real), pytest.raises(InputError, match="being written by process"):
        ResultsLock(tmp_path / "link.jsonl")
    with ResultsLock(tmp_path / "link.jsonl") as lock:
        assert lock.path == real.resolve()


def test_results_are_never_appended_through_a_link(tmp_path: Path) -> None:
    from stembench.client.results_file import ResultsFile

    victim = tmp_path / "precious.jsonl"
    victim.write_text("")
    (tmp_path / "r.jsonl").symlink_to(victim)
    with pytest.raises(InputError, match=r"results file .*r.jsonl is a symbolic link"):
        ResultsFile(tmp_path / "r.jsonl").append({"shard_id": "a", "ok": True, "images": []})
    assert victim.read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.lock"])
def test_a_file_of_another_user_is_refused(name: str, tmp_path: Path) -> None:
    from stembench.client.results_file import ResultsFile

    (tmp_path / name).write_text("")
    os.chown(tmp_path / name, 65534, 65534)
    refused = rf"{name} belongs to user id 65534, not to you \(0\)"
    with pytest.raises(InputError, match=refused), ResultsLock(tmp_path / "r.jsonl"):
        ResultsFile(tmp_path / "r.jsonl").append({"shard_id": "a", "ok": True})
