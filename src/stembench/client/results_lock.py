"""One writer per results file: an exclusive lock, and a check that the file is ours.

A run holds ``flock(LOCK_EX)`` on ``<results>.lock`` beside the results file for as long as
it may append; the lock file says who holds it (process id, host, start time). The kernel
releases the lock when the holder ends, however it ends, so a crashed run never blocks the
next one. A second run on the same file stops at once with a message naming the holder.
Before anything is written, the path is checked: a folder, a name not ending in
``.jsonl``, or an existing file whose first line is not a shard result is refused, so a
user's unrelated file is never appended to. A results path that is a symbolic link stands
for the file it points to, so every name of one file leads to one lock. The lock file and
the results file are opened without following a symbolic link (``O_NOFOLLOW``) and must
belong to the user who runs stembench (:func:`open_owned`): a link planted at either name
never redirects a write.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from stembench.errors import InputError

__all__ = ["RESULTS_SUFFIX", "ResultsLock", "check_results_path", "open_owned"]

#: The suffix every stembench results file has.
RESULTS_SUFFIX = ".jsonl"
_SIGNATURE = '{"shard_id":'  # how every line stembench writes begins


def _first_line(path: Path) -> str:
    with open(path, "rb") as handle:
        return handle.readline().decode("utf-8", errors="replace").strip()


def check_results_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if stembench may write its results there; InputError otherwise.

    Raises
    ------
    InputError
        If ``path`` is a folder, does not end in ``.jsonl``, or is an existing non-empty
        file whose first line is not a stembench shard result.
    """
    path = Path(path)
    expected = f"a stembench results file ending in {RESULTS_SUFFIX} (JSON lines)"
    if path.is_dir():
        raise InputError(f"results file {path}: is a folder; expected {expected}, e.g. "
                         f"{path / ('results' + RESULTS_SUFFIX)}")
    if path.suffix.lower() != RESULTS_SUFFIX:
        raise InputError(f"results file {path}: expected {expected}, got a "
                         f"{path.suffix or 'suffix-less'} file name")
    if path.is_file() and path.stat().st_size > 0:
        line = _first_line(path)
        try:
            first: Any = json.loads(line)
        except json.JSONDecodeError:
            first = {"shard_id": None} if line.startswith(_SIGNATURE) else None  # cut short
        if not (isinstance(first, dict) and "shard_id" in first):
            raise InputError(f"results file {path}: exists and is not {expected} (its first "
                             "line is not a shard result); refusing to append to it: choose "
                             "another results file")
    return path


def open_owned(path: Path, flags: int, *, what: str) -> int:
    """Open ``path`` without following a symbolic link; a file descriptor of a file of ours.

    Parameters
    ----------
    path : Path
        The file (created with mode 0644 when ``flags`` has ``os.O_CREAT``).
    flags : int
        ``os.open`` flags; ``O_NOFOLLOW`` and ``O_CLOEXEC`` are added.
    what : str
        What the file is, named in the message (``"results file"``, ``"lock file"``).

    Raises
    ------
    InputError
        If ``path`` is a symbolic link, not a regular file, or belongs to another user.
    """
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{what} {path} is a symbolic link (to {os.readlink(path)!r}); "
                             "refused: stembench writes only to a file it owns, never "
                             "through a link; remove the link") from None
        raise
    info = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to user id {info.st_uid}, not to you ({os.geteuid()})"
    if problem is not None:
        os.close(descriptor)
        raise InputError(f"{what} {path} {problem}; refused: choose another results file")
    return descriptor


def _describe_holder(lock_path: Path) -> str:
    try:
        holder = json.loads(lock_path.read_text(encoding="utf-8"))
        return (f"process {holder['pid']} on host {holder['host']} (started "
                f"{holder['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class ResultsLock:
    """Exclusive lock on a results file; use as a context manager or call :meth:`release`.

    Parameters
    ----------
    path : path-like
        The results file (checked with :func:`check_results_path`).

    Raises
    ------
    InputError
        If the path is refused or another run holds the lock (the message names it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # a link stands for the file it points to: one file, one lock, whatever its name
        self.path = check_results_path(check_results_path(path).resolve())
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"results file {self.path}: cannot create its folder: "
                             f"{exc}") from exc
        self._handle: IO[str] | None = self._acquire()

    def _acquire(self) -> IO[str]:
        while True:
            descriptor = open_owned(self.lock_path, os.O_RDWR | os.O_CREAT, what="lock file")
            handle = os.fdopen(descriptor, "r+", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise InputError(
                    f"results file {self.path} is being written by "
                    f"{_describe_holder(self.lock_path)}; wait for that run to end or choose "
                    f"another results file (lock: {self.lock_path})") from None
            try:  # the holder before us may have removed the file we opened: lock it anew
                same = os.lstat(self.lock_path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        return handle

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self._handle is None:
            return
        self.lock_path.unlink(missing_ok=True)
        self._handle.close()  # closing the file releases the flock
        self._handle = None

    def __enter__(self) -> ResultsLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
