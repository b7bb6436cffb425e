"""Per-image progress of a shard in a local worker, so that a worker killed from outside (a
model that does not stop at its image deadline) costs only the image it was stuck on.

A local worker (the client sets ``$STEMBENCH_PROGRESS_DIR`` in it) appends one JSON line to
``<dir>/<shard id>.jsonl`` when a model call starts (its images, the worker's process id and
the time after which the worker is to be killed) and one when an image is finished (its
entry). The client's watchdog finds calls past that time (:func:`overdue_calls`), records
them (:func:`record_kill`, ``<shard id>.killed``) and kills the worker. The shard's next
attempt reads both (:class:`ShardProgress`): it keeps the finished images, fails the image
its worker was killed on, and runs the others one image at a time (after a killed batch,
the image at fault is found by running them alone).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["KILL_GRACE_S", "PROGRESS_DIR_ENV", "ShardProgress", "overdue_calls", "record_kill"]

#: Environment variable naming the progress folder of a local worker.
PROGRESS_DIR_ENV = "STEMBENCH_PROGRESS_DIR"
#: Seconds past a call's deadline (plus 10 %) before its worker is killed from outside.
KILL_GRACE_S = 2.0


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the kill
    return lines


def _marker(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.with_suffix(".killed").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class ShardProgress:
    """The progress log of one shard in this worker (inactive outside a local worker).

    Attributes
    ----------
    done : dict of str to dict
        Entries of the images a killed attempt finished, by image id.
    killed : list of str
        The images of the call a worker was killed in (empty if none was).
    """

    def __init__(self, shard_id: str) -> None:
        folder = os.environ.get(PROGRESS_DIR_ENV)
        self.path = Path(folder) / f"{shard_id}.jsonl" if folder else None
        self.done: dict[str, dict[str, Any]] = {}
        self.killed: list[str] = []
        if self.path is None:
            return
        for line in _lines(self.path):
            if line.get("event") == "done":
                self.done[line["entry"]["image_id"]] = line["entry"]
        self.killed = list(_marker(self.path).get("image_ids", []))

    def _append(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")
        except OSError:  # a full disk: the shard goes on without a log (a kill costs it all)
            self.path.unlink(missing_ok=True)
            self.path = None

    def started(self, image_ids: Sequence[str], timeout_s: float | None) -> None:
        """Record a model call on ``image_ids`` with a deadline of ``timeout_s`` per image."""
        if timeout_s is not None:
            limit = 1.1 * timeout_s * len(image_ids) + KILL_GRACE_S
            self._append({"event": "start", "pid": os.getpid(), "image_ids": list(image_ids),
                          "kill_after": time.time() + limit})

    def finished(self, entry: dict[str, Any]) -> None:
        """Record an image's finished entry."""
        self._append({"event": "done", "entry": entry})

    def close(self) -> None:
        """Remove the log and its kill record (the shard has its result)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path.with_suffix(".killed").unlink(missing_ok=True)


def overdue_calls(folder: Path) -> list[tuple[int, str, list[str]]]:
    """``(pid, shard id, image ids)`` of every model call in ``folder`` past its kill time.

    A call already recorded as killed (:func:`record_kill`) is not listed again.
    """
    now, found = time.time(), []
    for path in Path(folder).glob("*.jsonl"):
        lines = _lines(path)
        done = {line["entry"]["image_id"] for line in lines if line.get("event") == "done"}
        starts = [line for line in lines if line.get("event") == "start"]
        if not starts:
            continue
        last = starts[-1]
        unfinished = [i for i in last["image_ids"] if i not in done]
        if unfinished and last["kill_after"] < now and _marker(path).get("pid") != last["pid"]:
            found.append((int(last["pid"]), path.stem, list(last["image_ids"])))
    return found


def record_kill(folder: Path, shard_id: str, pid: int, image_ids: Sequence[str]) -> None:
    """Record that the worker ``pid`` is killed in a call on ``image_ids`` of ``shard_id``.

    Parameters
    ----------
    folder : pathlib.Path
        The shards' progress folder (the marker ``<shard_id>.killed`` is written there).
    shard_id : str
        The shard whose call is killed.
    pid : int
        Process id of the worker killed.
    image_ids : sequence of str
        The images of the call it was killed in.
    """
    marker = Path(folder) / f"{shard_id}.killed"
    marker.write_text(json.dumps({"pid": pid, "image_ids": list(image_ids)}), encoding="utf-8")
