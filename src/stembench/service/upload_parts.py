"""The parts of unfinished uploads on disk, and each user's running tally of them.

Parts live under ``<data_dir>/uploads/<owner key>/<sha256>/<index>.part``. Each owner has a
tally file beside their folder (``<owner key>.tally``: bytes and parts held, per upload and
in all, and when each upload last received a part), so that a part is checked against the
upload's size limit and the owner's quotas (bytes and parts) in constant time, without
reading the other parts. The tally is written under the owner's lock (``<owner key>.lock``,
``flock``: every thread and process of the service) after the part; the disk stays the
truth: :func:`sweep_uploads` with ``recount=True`` (the service's start) rebuilds every
tally from the files, saying where one was wrong. Uploads that received no part for
``upload_abandon_s`` are deleted by every sweep: at start, on the service's timer
(:class:`UploadSweeper`) and before each part of their owner.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stembench.atomic import atomic_write_bytes
from stembench.service.settings import ServiceSettings

__all__ = ["UploadLimitError", "UploadSweeper", "drop_upload", "store_part", "sweep_uploads",
           "upload_folder"]

log = logging.getLogger(__name__)
_OWNER_KEY = re.compile(r"^[0-9a-f]{24}$")


class UploadLimitError(Exception):
    """A part would pass the upload's size limit or its owner's quota (message says which)."""


def _root(settings: ServiceSettings) -> Path:
    return settings.data_dir / "uploads"


def _owner_key(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:24]


def upload_folder(settings: ServiceSettings, owner: str, digest: str) -> Path:
    """Folder of the parts of ``owner``'s upload ``digest``.

    Parameters
    ----------
    settings : ServiceSettings
        The service settings (``data_dir``).
    owner : str
        The uploading user (Globus identity ``sub``).
    digest : str
        SHA-256 (hex) of the whole upload.
    """
    return _root(settings) / _owner_key(owner) / digest


@contextmanager
def _locked(root: Path, key: str) -> Iterator[Path]:
    """Hold an owner's lock (threads and processes); yields their tally file's path."""
    root.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield root / f"{key}.tally"
    finally:
        os.close(descriptor)  # releases the lock


def _counted(folder: Path) -> dict[str, dict[str, float]]:
    """An owner's tally counted from the files: per upload its bytes, parts and last part."""
    uploads: dict[str, dict[str, float]] = {}
    for upload in (folder.iterdir() if folder.is_dir() else ()):
        stats = [p.stat() for p in upload.glob("*.part")] if upload.is_dir() else []
        uploads[upload.name] = {"bytes": sum(s.st_size for s in stats), "parts": len(stats),
                                "touched": max((s.st_mtime for s in stats),
                                               default=upload.stat().st_mtime)}
    return uploads


def _load(tally: Path, folder: Path) -> dict[str, dict[str, float]]:
    """An owner's stored tally (counted from the files when there is none)."""
    try:
        return dict(json.loads(tally.read_bytes()))
    except (OSError, ValueError):
        return _counted(folder)


def _save(tally: Path, uploads: dict[str, dict[str, float]]) -> None:
    if uploads:
        atomic_write_bytes(tally, json.dumps(uploads, sort_keys=True).encode())
    else:
        tally.unlink(missing_ok=True)


def _drop_abandoned(folder: Path, uploads: dict[str, dict[str, float]],
                    max_age_s: float) -> None:
    cutoff = time.time() - max_age_s
    for digest in [d for d, u in uploads.items() if u["touched"] < cutoff]:
        shutil.rmtree(folder / digest, ignore_errors=True)
        del uploads[digest]


def store_part(settings: ServiceSettings, owner: str, digest: str, index: int,
               data: bytes) -> None:
    """Keep one part if the upload and the owner's unfinished uploads stay within limits.

    Parameters
    ----------
    settings : ServiceSettings
        The service settings (``data_dir`` and the upload limits).
    owner : str
        The uploading user (Globus identity ``sub``).
    digest : str
        SHA-256 (hex) of the whole upload.
    index : int
        The part's number (from 0).
    data : bytes
        The part's content.

    Raises
    ------
    UploadLimitError
        The upload would pass ``max_upload_bytes`` (its parts are deleted), or the owner's
        uploads ``upload_quota_bytes`` or ``upload_quota_parts`` (nothing is deleted).
    """
    root, key = _root(settings), _owner_key(owner)
    folder = root / key
    with _locked(root, key) as tally:
        uploads = _load(tally, folder)
        _drop_abandoned(folder, uploads, settings.upload_abandon_s)
        part = folder / digest / f"{index:05d}.part"
        replaced = part.stat().st_size if part.is_file() else 0
        added = 0 if part.is_file() else 1
        mine = uploads.get(digest, {"bytes": 0, "parts": 0})
        size = int(mine["bytes"]) - replaced + len(data)
        if size > settings.max_upload_bytes:
            shutil.rmtree(folder / digest, ignore_errors=True)
            uploads.pop(digest, None)
            _save(tally, uploads)
            raise UploadLimitError(
                f"upload {digest[:12]}: its parts would hold {size} bytes, over this service's "
                f"limit of {settings.max_upload_bytes} bytes for one upload; its parts were "
                "deleted")
        held = int(sum(u["bytes"] for u in uploads.values())) - replaced
        parts = int(sum(u["parts"] for u in uploads.values()))
        if held + len(data) > settings.upload_quota_bytes:
            raise UploadLimitError(
                f"your unfinished uploads hold {held} bytes; this part of {len(data)} bytes "
                f"would pass your quota of {settings.upload_quota_bytes} bytes: complete them, "
                "or wait until unfinished ones expire")
        if parts + added > settings.upload_quota_parts:
            raise UploadLimitError(
                f"your unfinished uploads hold {parts} parts; one more would pass your quota "
                f"of {settings.upload_quota_parts} parts: send fewer, larger parts, complete "
                "your uploads, or wait until unfinished ones expire")
        part.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(part, data)
        uploads[digest] = {"bytes": size, "parts": int(mine["parts"]) + added,
                           "touched": time.time()}
        _save(tally, uploads)


def drop_upload(settings: ServiceSettings, owner: str, digest: str) -> None:
    """Delete an upload's parts (completed or refused) and take them off the owner's tally.

    Parameters
    ----------
    settings, owner, digest
        As in :func:`upload_folder`.
    """
    root, key = _root(settings), _owner_key(owner)
    with _locked(root, key) as tally:
        uploads = _load(tally, root / key)
        shutil.rmtree(root / key / digest, ignore_errors=True)
        uploads.pop(digest, None)
        _save(tally, uploads)


def sweep_uploads(settings: ServiceSettings, *, recount: bool = False) -> None:
    """Delete every owner's abandoned uploads; with ``recount``, first rebuild each tally
    from the files on disk (logging a tally that was wrong)."""
    root = _root(settings)
    if not root.is_dir():
        return
    keys = {p.name.split(".")[0] for p in root.iterdir()} - {"complete"}
    for key in sorted(k for k in keys if _OWNER_KEY.match(k)):
        with _locked(root, key) as tally:
            uploads = _load(tally, root / key)
            if recount:
                counted = _counted(root / key)
                if {d: (u["bytes"], u["parts"]) for d, u in uploads.items()} != {
                        d: (u["bytes"], u["parts"]) for d, u in counted.items()}:
                    log.warning("upload tally %s did not match the parts on disk; recounted",
                                key)
                uploads = counted
            _drop_abandoned(root / key, uploads, settings.upload_abandon_s)
            _save(tally, uploads)
            if not uploads and (root / key).is_dir():
                shutil.rmtree(root / key, ignore_errors=True)


class UploadSweeper:
    """Sweeps abandoned uploads when started (recounting every tally) and then every
    ``interval_s`` in a daemon thread, until stopped."""

    def __init__(self, settings: ServiceSettings, *, interval_s: float | None = None) -> None:
        self.settings = settings
        self.interval_s = interval_s or min(settings.upload_abandon_s / 4.0, 600.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sweep now (recounting), then start the timer."""
        sweep_uploads(self.settings, recount=True)
        self._thread = threading.Thread(target=self._loop, name="stembench-uploads",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                sweep_uploads(self.settings)
            except OSError as exc:  # a full or unreadable disk: the next sweep tries again
                log.warning("sweeping abandoned uploads failed: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the timer and wait for a sweep in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

