"""The results file: one JSON line per shard result, appended as each shard finishes.

A shard that failed as a whole has a line too, with every image failed (``shard_failed``).

An interrupted run leaves every finished shard on disk; a new run with the same file
skips them. A line cut short by a crash is ignored (and reported), never half-read.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from stembench.client.results_lock import open_owned
from stembench.schemas import check_message

__all__ = ["ResultsFile", "records_from_shard"]

#: The score of a failed image that could not be scored as finding nothing either.
_UNSCORED = {"recall": 0.0, "precision": None, "f1": 0.0, "rms_angstrom": None,
             "tp": 0, "fp": 0, "fn": 0}
_MODEL_FIELDS = {"name": "model", "version": "model_version", "framework": "framework",
                 "weights_sha256": "weights_sha256"}


class ResultsFile:
    """Append-only JSON-lines file of shard results.

    Parameters
    ----------
    path : path-like
        The file; created with its parent folders on first append.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def shards(self) -> Iterator[dict[str, Any]]:
        """Yield every complete shard result in the file, in order.

        Each line is checked against the shard result's JSON Schema (its score records
        too, ``score-record.json``).

        Raises
        ------
        InputError
            A complete line that is not a shard result (one line naming the file, the line
            and the field): a damaged file is refused, never half-read.
        """
        if not self.path.exists():
            return
        broken: list[int] = []
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    shard = json.loads(line)
                except json.JSONDecodeError:
                    broken.append(number)
                    continue
                _check_line(line, shard, what=f"{self.path}: line {number} is not a shard result")
                yield shard
        if broken:  # one warning per read, however many lines
            warnings.warn(
                f"{self.path}: {len(broken)} line(s) incomplete (interrupted write), first "
                f"line {broken[0]}; their shards will be evaluated again",
                stacklevel=2,
            )

    def finished_shard_ids(self, identity: dict[str, Any] | None = None) -> set[str]:
        """Ids of shards that finished successfully (with ``identity``, if given).

        ``identity`` is :func:`stembench.identity.shard_identity`'s dict: shards of
        another dataset content, scorer version or model identity do not count as done.
        """
        return {s["shard_id"] for s in self.shards()
                if s.get("ok") and (identity is None or s.get("identity") == identity)}

    def stale_shards(self, identity: dict[str, Any]) -> int:
        """How many finished shards of ``identity``'s model name have another identity."""
        name = (identity.get("model") or {}).get("name")
        return sum(1 for s in self.shards() if s.get("ok")
                   and (s.get("model") or {}).get("name") == name
                   and s.get("identity") != identity)

    def append(self, shard_result: dict[str, Any]) -> None:
        """Append one shard result and flush it to disk before returning.

        The file is opened without following a symbolic link and must be ours
        (:func:`~stembench.client.results_lock.open_owned`).

        Raises
        ------
        InputError
            If the path is a symbolic link, not a regular file, or another user's file.
        OSError
            If the line cannot be written (a full disk); a partial line is ignored on reading.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(shard_result, separators=(",", ":")) + "\n"
        descriptor = open_owned(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT,
                                what="results file")
        try:
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = "\n" + line  # a line cut short by a crash: start a fresh one
            data = memoryview(line.encode("utf-8"))
            while data:
                data = data[os.write(descriptor, data):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def current_shards(self, shard_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Shards of the current identity with a result, one per shard id (the last written).

        A shard that failed as a whole has a result too (``shard_failed``: every image failed,
        scored as finding nothing); it is not finished (:meth:`finished_shard_ids`), so a
        resumed run tries it again and its new result replaces this one.

        Parameters
        ----------
        shard_ids : collection of str, optional
            The shards of the current plan (:attr:`Evaluation.shard_ids`); only they count.
            Without it, each model name keeps only the identity of its last written shard:
            earlier shards of another dataset, scorer or model version are history, not
            results of the model as it is now.
        """
        finished = {s["shard_id"]: s for s in self.shards()
                    if s.get("ok") or s.get("shard_failed")}
        if shard_ids is not None:
            wanted = set(shard_ids)
            return [s for shard_id, s in finished.items() if shard_id in wanted]
        newest = {(s.get("model") or {}).get("name"): _identity(s) for s in finished.values()}
        return [s for s in finished.values()
                if _identity(s) == newest[(s.get("model") or {}).get("name")]]

    def records(self, shard_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Score records of every image of the current shards (no coordinates).

        Images a model failed on are included, scored as finding nothing, with
        ``failed`` true and their ``error`` (see :func:`records_from_shard`). ``shard_ids``
        selects the current shards as in :meth:`current_shards`.
        """
        return [r for shard in self.current_shards(shard_ids) for r in records_from_shard(shard)]

    def image_errors(self, shard_ids: Collection[str] | None = None) -> list[dict[str, str]]:
        """``{"image_id", "model", "error"}`` for every image a model failed on.

        Only the current shards count (``shard_ids`` as in :meth:`current_shards`).
        """
        errors = []
        for shard in self.current_shards(shard_ids):
            model = shard.get("model", {}).get("name", "?")
            for entry in shard.get("images", []):
                if entry.get("error"):
                    errors.append({"image_id": entry["image_id"], "model": model,
                                   "error": entry["error"]})
        return errors


def _check_line(line: str, shard: Any, *, what: str) -> None:
    """Check a line against the shard result's schema, once per process per content.

    A results file is read several times per run and checking takes about 1 ms per image,
    so the digests of lines already checked are kept (forgotten past :data:`_REMEMBERED`).
    """
    digest = hashlib.blake2b(line.encode("utf-8"), digest_size=16).digest()
    if digest in _CHECKED:
        return
    check_message("shard-result", shard, what=what)
    if len(_CHECKED) >= _REMEMBERED:
        _CHECKED.clear()
    _CHECKED.add(digest)


#: Digests of the results-file lines that passed the schema in this process (at most
#: ``_REMEMBERED``).
_CHECKED: set[bytes] = set()
_REMEMBERED = 200_000


def _identity(shard: dict[str, Any]) -> str:
    """The identity a shard was produced with (its model's alone for older results)."""
    model = shard.get("model") or {}
    legacy = [model.get("name"), model.get("version"), model.get("weights_sha256") or None]
    return json.dumps(shard.get("identity") or legacy, sort_keys=True)


def records_from_shard(shard: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a shard result into score records (scores + conditions + provenance).

    Every image with conditions gives a record: ``failed`` says whether the model failed
    on it and ``error`` why. A failed image carries the score of an empty prediction
    (recall 0 on its columns); one that could not be scored even so (``unscored`` true)
    gets recall and F1 0, precision and RMS NaN, and counts 0.
    """
    model = {_MODEL_FIELDS[k]: v for k, v in shard.get("model", {}).items() if k in _MODEL_FIELDS}
    model["weights_sha256"] = model.get("weights_sha256") or ""  # "" = a model without weights
    dataset = shard.get("dataset", {})
    runtime = shard.get("runtime", {})
    common = {
        **model,
        "dataset_name": dataset.get("name"),
        "dataset_version": dataset.get("version"),
        "dataset_manifest_sha256": dataset.get("manifest_sha256"),
        "host": runtime.get("host"),
        "device": runtime.get("device"),
        "stembench_version": runtime.get("stembench_version"),
    }
    records = []
    for entry in shard.get("images", []):
        if entry.get("score") is None and not (entry.get("error") and entry.get("conditions")):
            continue  # an image that could not even be read: listed in the image errors
        score = entry.get("score") or {**_UNSCORED, "image_id": entry["image_id"]}
        records.append({**score, **entry.get("conditions", {}), **common,
                        "image_id": entry["image_id"], "seconds": entry.get("seconds"),
                        "failed": bool(entry.get("error")), "error": entry.get("error"),
                        "unscored": entry.get("score") is None})
    return records
