"""The parts of unfinished uploads on disk, and each user's running tally of them.

Parts live under ``<data_dir>/uploads/<owner key>/<sha256>/<index>.part``, each upload's
tally (its bytes and parts) beside them (``tally.json``, dated by its last part), and each
owner's totals beside their folder (``<owner key>.tally``), so that a part is checked
against the upload's size limit and the owner's quotas (bytes and parts) in constant time:
two small files read and written, no other part looked at. Tallies are written under the
owner's lock (``<owner key>.lock``, ``flock``: every thread and process of the service)
after the part; the disk stays the truth: :func:`sweep_uploads` with ``recount=True`` (the
service's start) rebuilds every tally from the files, saying where one was wrong. Uploads
that received no part for ``upload_abandon_s`` are deleted by every sweep: at start and on
the service's timer (:class:`UploadSweeper`).
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

__all__ = ["UploadLimitError", "UploadSweeper", "drop_upload", "owner_lock", "store_part",
           "sweep_uploads", "upload_folder"]

log = logging.getLogger(__name__)
_OWNER_KEY = re.compile(r"^[0-9a-f]{24}$")
#: Each upload's tally (its bytes and parts), in its folder; its date is the last part's.
_TALLY = "tally.json"


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


def _read(path: Path) -> dict[str, int] | None:
    try:
        data = json.loads(path.read_bytes())
        return {"bytes": int(data["bytes"]), "parts": int(data["parts"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, tally: dict[str, int]) -> None:
    atomic_write_bytes(path, json.dumps(tally, sort_keys=True).encode())


def _upload_tally(upload: Path) -> dict[str, int]:
    """An upload's stored tally (counted from its parts when there is none)."""
    found = _read(upload / _TALLY)
    if found is None:
        sizes = [p.stat().st_size for p in upload.glob("*.part")] if upload.is_dir() else []
        found = {"bytes": sum(sizes), "parts": len(sizes)}
    return found


def _recount(folder: Path) -> dict[str, int]:
    """An owner's totals counted from the parts on disk; each upload's tally is rewritten
    from its parts, dated by its last part (its age is what abandons it)."""
    totals = {"bytes": 0, "parts": 0}
    for upload in sorted(folder.iterdir()) if folder.is_dir() else ():
        stats = [p.stat() for p in upload.glob("*.part")]
        counted = {"bytes": sum(s.st_size for s in stats), "parts": len(stats)}
        _write(upload / _TALLY, counted)
        last = max((s.st_mtime for s in stats), default=upload.stat().st_mtime)
        os.utime(upload / _TALLY, (last, last))
        totals = {k: totals[k] + counted[k] for k in totals}
    return totals


def _owner_tally(tally: Path, folder: Path) -> dict[str, int]:
    """An owner's stored totals (recounted from the files when there are none)."""
    return _read(tally) or _recount(folder)


def _keep(tally: Path, totals: dict[str, int]) -> None:
    if totals["parts"] or totals["bytes"]:
        _write(tally, totals)
    else:
        tally.unlink(missing_ok=True)


def _dropped(upload: Path, totals: dict[str, int]) -> dict[str, int]:
    """Delete an upload's folder; the owner's totals without it."""
    mine = _upload_tally(upload)
    shutil.rmtree(upload, ignore_errors=True)
    return {k: max(totals[k] - mine[k], 0) for k in totals}


@contextmanager
def owner_lock(settings: ServiceSettings, owner: str) -> Iterator[None]:
    """Hold ``owner``'s uploads lock (every thread and process; not re-entrant: call no
    other function of this module while holding it).

    Parameters
    ----------
    settings, owner
        As in :func:`upload_folder`.
    """
    with _locked(_root(settings), _owner_key(owner)):
        yield


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
    upload = root / key / digest
    with _locked(root, key) as tally:
        totals = _owner_tally(tally, root / key)
        mine = _upload_tally(upload)
        part = upload / f"{index:05d}.part"
        replaced = part.stat().st_size if part.is_file() else 0
        added = 0 if part.is_file() else 1
        size = mine["bytes"] - replaced + len(data)
        if size > settings.max_upload_bytes:
            _keep(tally, _dropped(upload, totals))
            raise UploadLimitError(
                f"upload {digest[:12]}: its parts would hold {size} bytes, over this service's "
                f"limit of {settings.max_upload_bytes} bytes for one upload; its parts were "
                "deleted")
        held = totals["bytes"] - replaced
        if held + len(data) > settings.upload_quota_bytes:
            raise UploadLimitError(
                f"your unfinished uploads hold {held} bytes; this part of {len(data)} bytes "
                f"would pass your quota of {settings.upload_quota_bytes} bytes: complete them, "
                "or wait until unfinished ones expire")
        if totals["parts"] + added > settings.upload_quota_parts:
            raise UploadLimitError(
                f"your unfinished uploads hold {totals['parts']} parts; one more would pass "
                f"your quota of {settings.upload_quota_parts} parts: send fewer, larger "
                "parts, complete your uploads, or wait until unfinished ones expire")
        upload.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(part, data)
        _write(upload / _TALLY, {"bytes": size, "parts": mine["parts"] + added})
        _keep(tally, {"bytes": totals["bytes"] - mine["bytes"] + size,
                      "parts": totals["parts"] + added})


def drop_upload(settings: ServiceSettings, owner: str, digest: str) -> None:
    """Delete an upload's parts (completed or refused) and take them off the owner's tally.

    Parameters
    ----------
    settings, owner, digest
        As in :func:`upload_folder`.
    """
    root, key = _root(settings), _owner_key(owner)
    with _locked(root, key) as tally:
        _keep(tally, _dropped(root / key / digest, _owner_tally(tally, root / key)))


def sweep_uploads(settings: ServiceSettings, *, recount: bool = False) -> None:
    """Delete every owner's abandoned uploads; with ``recount``, first rebuild each tally
    from the files on disk (logging a tally that was wrong)."""
    root = _root(settings)
    if not root.is_dir():
        return
    keys = {p.name.split(".")[0] for p in root.iterdir()} - {"complete"}
    cutoff = time.time() - settings.upload_abandon_s
    for key in sorted(k for k in keys if _OWNER_KEY.match(k)):
        folder = root / key
        with _locked(root, key) as tally:
            if recount:
                stored, totals = _read(tally), _recount(folder)
                if stored != totals and (stored is not None or totals["parts"]):
                    log.warning("upload tally %s did not match the parts on disk (%s, counted "
                                "%s); recounted", key, stored, totals)
            else:
                totals = _owner_tally(tally, folder)
            for upload in sorted(folder.iterdir()) if folder.is_dir() else ():
                stamp = upload / _TALLY if (upload / _TALLY).is_file() else upload
                if stamp.stat().st_mtime < cutoff:
                    totals = _dropped(upload, totals)
            _keep(tally, totals)
            if not totals["parts"] and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


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
            except Exception:  # a full disk, a bug: logged; the next sweep tries again
                log.exception("sweeping abandoned uploads failed; trying again in %g s",
                              self.interval_s)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the timer and wait for a sweep in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

