"""Leaderboard entries from results: the service's copy of a dataset, reading uploaded
results, and re-scoring a job's shards (see :mod:`stembench.service.rescore`)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stembench.errors import InputError, StembenchError
from stembench.schemas import check_message
from stembench.service.models import Job
from stembench.service.rescore import DatasetIdentity, counted, dataset_identity, rescore
from stembench.service.settings import ServiceSettings

__all__ = ["INFLATION", "held_dataset", "model_identity", "read_upload", "score_job",
           "upload_file"]

#: A results file decompresses to at most this many times the upload limit (JSON lines of
#: coordinates compress about 4x): more is refused, never inflated into memory.
INFLATION = 4


def upload_file(settings: ServiceSettings, submission_key: str) -> Path:
    """Where an uploaded result (gzip JSON lines) is kept, by its job's submission key."""
    return settings.data_dir / "uploads" / "complete" / f"{submission_key}.jsonl.gz"


def held_dataset(settings: ServiceSettings, name: str, preset: str,
                 version: str) -> DatasetIdentity:
    """Identity of the service's copy of a dataset version, verified against its manifest.

    Parameters
    ----------
    settings : ServiceSettings
        The service settings (``dataset_cache_dir``; ``None``: the default cache).
    name, preset, version : str
        The dataset version.

    Raises
    ------
    InputError
        When the service holds no copy of that dataset version, or its copy does not match
        its manifest (the message names what differs).
    """
    from stembench.dataset_publish.storage.cache import cache_path
    from stembench.dataset_publish.storage.verified import verify_dataset_file

    cache = Path(settings.dataset_cache_dir) if settings.dataset_cache_dir else None
    path = cache_path(name, preset=preset, version=version, cache_dir=cache)
    if not path.is_file():
        raise InputError(f"this service holds no copy of dataset {name!r} preset {preset!r} "
                         f"version {version!r}, so it cannot score results for it")
    try:  # the whole file against its manifest, once per content (as the cache does)
        verify_dataset_file(path, cache_dir=cache)
    except StembenchError as exc:
        raise InputError(f"this service's copy of dataset {name!r} preset {preset!r} version "
                         f"{version!r} fails its check, so it scores nothing with it: {exc}"
                         ) from exc
    return dataset_identity(path)


def read_upload(data: bytes, *, max_bytes: int) -> list[dict[str, Any]]:
    """Shard results from a gzip-compressed results file (JSON lines).

    Finished shards and shards that failed as a whole (``shard_failed``: each image failed,
    scored as finding nothing) are kept: a failure is a result. Other lines (a shard that
    could not even be recorded as failed) are left out; :func:`~stembench.service.rescore.
    check_coverage` then names their images as missing.

    Raises
    ------
    InputError
        Not gzip, larger than ``max_bytes`` once decompressed, a line that is not a JSON
        object, or no finished shard (each message names the line).
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise InputError(f"the upload is not a gzip-compressed results file: {exc}") from exc
    if len(text) > max_bytes or inflater.unconsumed_tail:
        raise InputError(f"the upload decompresses to more than {max_bytes} bytes, the "
                         "largest results file this service accepts")
    if not inflater.eof:
        raise InputError("the upload is a truncated gzip stream (a part is missing?)")
    shards = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            shard = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"results line {number} is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise InputError(f"results line {number} nests its JSON too deeply to be a shard "
                             "result") from exc
        check_message("shard-result", shard, what=f"results line {number} is not a shard result")
        if counted(shard):
            shards.append(shard)
    if not any(shard.get("ok") for shard in shards):
        raise InputError("the results file holds no finished shard")
    return shards


def model_identity(shards: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The one model (name, version, weights) the shards are of; refuse a mixture.

    A shard that failed as a whole names the model it was planned with, perhaps without
    version or weights: it must agree on the fields it names.
    """
    keys = ("name", "version", "weights_sha256")
    named = [{k: (s.get("model") or {}).get(k) for k in keys} for s in shards]
    finished = [m for m, s in zip(named, shards, strict=True) if s.get("ok")]
    identities = {json.dumps(m, sort_keys=True) for m in finished}
    if len(identities) == 1:
        known = finished[0]
        identities |= {json.dumps({**known, **{k: v for k, v in m.items() if v not in (None, "")}},
                                  sort_keys=True) for m in named}
    if len(identities) != 1:
        shown = "; ".join(sorted(identities)[:5])
        raise InputError(f"the results hold {len(identities)} models or model versions ({shown}); "
                         "submit one model's results at a time")
    identity: dict[str, Any] = json.loads(identities.pop())
    return identity


def score_job(settings: ServiceSettings, job: Job,
              shards: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-score a job's shards against the service's copy of its dataset version.

    The worker builds or fetches the dataset into its cache when it is not there yet.

    Parameters
    ----------
    settings : ServiceSettings
        The service settings (``dataset_cache_dir``; ``None``: the default cache).
    job : Job
        The job, naming its dataset version.
    shards : sequence of dict
        The job's shard results (the shard-result schema), each with its predicted coordinates
        in pixels (x = column, y = row).

    Raises
    ------
    InputError
        Another dataset version (both content hashes named), missing images, an image
        without coordinates, or coordinates the scorer refuses.
    """
    from stembench.dataset_publish.loading import load

    cache = Path(settings.dataset_cache_dir) if settings.dataset_cache_dir else None
    try:
        dataset = load(job.dataset_name, preset=job.dataset_preset,
                       version=job.dataset_version, cache_dir=cache)
    except StembenchError as exc:
        raise InputError(f"the service cannot open its copy of the dataset: {exc}") from exc
    with dataset:
        held = dataset_identity(dataset.path)
        return rescore(shards, dataset, held)
