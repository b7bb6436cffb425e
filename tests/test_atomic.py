"""One helper writes every file atomically: unique temporary name, fsync, replace, clean-up."""

from __future__ import annotations

import os

import pytest

from stembench import atomic
from stembench.atomic import AtomicPath, atomic_write_bytes, atomic_write_text


def test_a_committed_write_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), AtomicPath(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_concurrent_writers_of_one_file_get_their_own_temporary(tmp_path):
    first, second = AtomicPath(tmp_path / "x"), AtomicPath(tmp_path / "x")
    assert first.temporary != second.temporary
    assert first.temporary.parent == tmp_path and first.temporary.name.startswith(".x.")
    with first as one, second as two:
        one.write_bytes(b"1")
        two.write_bytes(b"2")
    assert (tmp_path / "x").read_bytes() == b"1"  # the last to finish (the outer) wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_the_data_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append("fsync")
        real_fsync(descriptor)

    def replace(source, destination):
        events.append("replace")
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic_write_bytes(tmp_path / "f", b"payload")
    assert events[:2] == ["fsync", "replace"]  # the file, then its folder after the rename
    assert events == ["fsync", "replace", "fsync"]


def test_a_failed_rename_removes_the_temporary(tmp_path):
    folder_target = tmp_path / "taken"
    folder_target.mkdir()
    (folder_target / "inside").write_text("keep")  # a non-empty folder cannot be replaced
    with pytest.raises(OSError):
        atomic_write_bytes(folder_target, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_no_module_renames_files_by_hand():
    """Every atomic write goes through stembench.atomic (none renames a temporary itself)."""
    import re
    from pathlib import Path

    import stembench

    package = Path(stembench.__file__).parent
    by_hand = re.compile(r"os\.replace\(|os\.rename\(|\.rename\(|\b(partial|temporary|tmp\w*)"
                         r"\.replace\(")
    found = [f"{path.relative_to(package)}:{number}"
             for path in sorted(package.rglob("*.py")) if path.name != "atomic.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if by_hand.search(line)]
    assert found == []
