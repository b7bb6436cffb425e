"""Fill the stembench cache from MDF, and read Foundry-style copies of the datasets.

:func:`mdf_source` is a cache source (see :mod:`stembench.dataset_publish.storage.cache`): asked for
a dataset file, it finds the published record through MDF v2's public API (no login) on
the requested service and downloads the file over HTTPS, verified against its manifest
and placed atomically. (A Foundry cache holds no such file: :mod:`stembench.foundry`
writes only the Foundry array files ``<preset>.foundry.h5`` there, and foundry-ml 1.2.2
cannot download an MDF v2 record, so the cache source does not look there.)
The lookup (search, card, manifest) takes at most :data:`LOOKUP_BUDGET_S` seconds, host
name lookups included (:func:`try_published`); the HDF5 file then downloads with its own
per-read timeout (:data:`~stembench.dataset_publish.mdf.download.TRANSFER_TIMEOUT`).
When MDF cannot be reached, its host does not resolve, it hangs, it has no copy, the
service named by ``$MDF_SERVICE`` or mdf-cli's configuration is not one stembench reads
(mdf-cli's developer ``local``, say), or ``$STEMBENCH_OFFLINE`` is set, one line says why
and the source returns ``False`` so :func:`stembench.load` builds the dataset locally
instead. A published copy refused for integrity is a :class:`PublishedCopyRefusedWarning`.
Both reasons go into the dataset's provenance. :func:`install_mdf_source` registers the
source.

The original published benchmark (Wei et al. 2023, DOI 10.18126/e73h-3w6n, ``wei_atom.h5``)
is opened through the same reader by :func:`load_published_benchmark`.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.mdf.api import MDFApiClient, MDFUnavailableError, one_line
from stembench.dataset_publish.mdf.download import (
    PublishedRecord,
    download_verified,
    find_published,
)
from stembench.dataset_publish.storage.cache import (
    CacheRequest,
    default_cache_dir,
    register_source,
)
from stembench.dataset_publish.storage.published import H5ImageSet
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import DatasetError, InputError, IntegrityError

__all__ = [
    "LOOKUP_BUDGET_S",
    "OFFLINE_ENV",
    "PUBLISHED_BENCHMARK_FILE",
    "PUBLISHED_BENCHMARK_NAME",
    "PublishedCopyRefusedWarning",
    "as_foundry_dataset",
    "find_published_benchmark",
    "foundry_cache_dir",
    "install_mdf_source",
    "load_published_benchmark",
    "mdf_source",
    "offline",
    "try_published",
]

logger = logging.getLogger(__name__)

OFFLINE_ENV = "STEMBENCH_OFFLINE"
"""Set this environment variable (to anything but ``""`` or ``0``) to never ask MDF."""
PUBLISHED_BENCHMARK_NAME = "wei-atom-locating-benchmark-v1.1"
"""Cache name of the original published benchmark (DOI 10.18126/e73h-3w6n)."""
PUBLISHED_BENCHMARK_FILE = "wei_atom.h5"
LOOKUP_BUDGET_S = 8.0
"""Seconds a cache miss may wait on MDF's lookup (the search, the card and the manifest,
retries and host name lookups included) before the local build; the HDF5 file's own
download is bounded per read instead (``TRANSFER_TIMEOUT``)."""


REMEMBER_FAILURE_S = 300.0
"""Seconds after MDF failed to answer during which it is not asked again (so one load
that needs two files, or several loads in a row, wait on a dead service only once)."""
_FAILED: dict[str, tuple[float, str]] = {}
"""API URL -> (time.monotonic() of the failure, the reason)."""


class PublishedCopyRefusedWarning(UserWarning):
    """A copy published on MDF did not match its manifest and was not used."""


def foundry_cache_dir() -> Path:
    """Return foundry-ml's cache folder: ``$FOUNDRY_LOCAL_CACHE_DIR``, else ``./data``."""
    return Path(os.environ.get("FOUNDRY_LOCAL_CACHE_DIR", "data")).expanduser()


def offline() -> bool:
    """Return whether ``$STEMBENCH_OFFLINE`` forbids asking MDF."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


Fetch = Callable[[MDFApiClient], tuple[Path, PublishedRecord] | None]
"""Finds and places a published file with the given client; ``None`` if none is published."""


def try_published(label: str, fetch: Fetch, *, service: str | None,
                  provenance: dict[str, Any]) -> Path | None:
    """Run ``fetch`` against MDF within :data:`LOOKUP_BUDGET_S`; ``None`` when it fails.

    Parameters
    ----------
    label : str
        What is fetched, for the messages (e.g. ``"atom-locating-benchmark mini 1.0.0"``).
    fetch : callable
        ``fetch(client)`` finds the record and places the file, returning
        ``(path, record)``, or ``None`` when MDF has no published copy.
    service : str, optional
        MDF service; by default ``$MDF_SERVICE``, else mdf-cli's default.
    provenance : dict
        Receives ``mdf_service`` and ``mdf_api_url``; then ``origin="mdf"``,
        ``mdf_source_id``, ``mdf_version`` and ``mdf_url`` on success, or ``mdf_not_used``
        (the reason, also logged as one line) or ``mdf_refused`` (a published copy that
        failed its integrity check, also a :class:`PublishedCopyRefusedWarning`).

    Returns
    -------
    Path or None
        The placed file, or ``None`` so the caller builds locally.

    Raises
    ------
    InputError
        If ``service`` is given and is not one stembench reads (a service named by
        ``$MDF_SERVICE`` or mdf-cli's configuration that stembench does not read means
        MDF is not used, with one line saying so).
    """
    if offline():
        provenance["mdf_not_used"] = f"{OFFLINE_ENV} is set"
        logger.info("%s is set: not asking MDF for %s", OFFLINE_ENV, label)
        return None
    try:
        client = MDFApiClient(service=service, max_retries=2, deadline_s=LOOKUP_BUDGET_S)
    except InputError as exc:
        if service:
            raise
        provenance["mdf_not_used"] = one_line(exc)
        logger.warning("MDF not used for %s: %s; building it locally", label, one_line(exc))
        return None
    provenance.update(mdf_service=client.service, mdf_api_url=client.base_url)
    when, why = _FAILED.get(client.base_url, (-REMEMBER_FAILURE_S, ""))
    if time.monotonic() - when < REMEMBER_FAILURE_S:
        provenance["mdf_not_used"] = why
        logger.info("MDF not asked for %s: it failed %.0f s ago (%s)", label,
                    time.monotonic() - when, why)
        return None
    try:
        found = fetch(client)
    except IntegrityError as exc:
        reason = (f"the copy of {label} published on MDF {client.service} was refused: "
                  f"{one_line(exc)}")
        provenance["mdf_refused"] = reason
        warnings.warn(PublishedCopyRefusedWarning(f"{reason}; building it locally instead"),
                      stacklevel=3)
        return None
    except DatasetError as exc:  # MDFUnavailableError, or a record without the file
        provenance["mdf_not_used"] = one_line(exc)
        if isinstance(exc, MDFUnavailableError):
            _FAILED[client.base_url] = (time.monotonic(), one_line(exc))
        logger.warning("MDF not used for %s: %s; building it locally", label, one_line(exc))
        return None
    if found is None:
        reason = f"MDF {client.service} ({client.base_url}) has no published {label}"
        provenance["mdf_not_used"] = reason
        logger.info("%s; building it locally", reason)
        return None
    path, record = found
    provenance.update(origin="mdf", mdf_source_id=record.source_id,
                      mdf_version=record.mdf_version, mdf_url=record.url(path.name))
    return path


def mdf_source(request: CacheRequest) -> bool:
    """Place the requested dataset file from MDF.

    Parameters
    ----------
    request : CacheRequest
        Which dataset name, version and preset, where to put it, and which MDF service to
        ask; its ``provenance`` receives where the file came from or why MDF was not used
        (see :func:`try_published`).

    Returns
    -------
    bool
        ``True`` when a verified file was placed at ``request.path``; ``False`` when no
        copy exists or MDF cannot be reached (the reason is logged), so offline use goes
        on to build the dataset.

    Raises
    ------
    InputError
        If ``request.service`` is not an MDF service stembench reads.
    """
    name = f"{request.preset}.h5"

    def fetch(client: MDFApiClient) -> tuple[Path, PublishedRecord] | None:
        record = find_published(request.name, preset=request.preset, version=request.version,
                                client=client)
        if record is None:
            return None
        return download_verified(record, name, request.path, expected_name=request.name,
                                 expected_version=request.version, client=client), record

    label = f"{request.name} {request.preset} {request.version}"
    return try_published(label, fetch, service=request.service,
                         provenance=request.provenance) is not None


def install_mdf_source() -> None:
    """Register :func:`mdf_source` with the cache (once; later calls do nothing)."""
    register_source(mdf_source)


def find_published_benchmark(path: str | Path | None = None, *,
                             cache_dir: Path | None = None) -> Path:
    """Return the path of the published ``wei_atom.h5`` (DOI 10.18126/e73h-3w6n).

    Looks at ``path`` (a file, or a folder holding ``wei_atom.h5``), then
    ``<cache>/wei-atom-locating-benchmark-v1.1/wei_atom.h5``, then a Foundry cache copy
    (``$FOUNDRY_LOCAL_CACHE_DIR/*wei_atom_locating_benchmark*/wei_atom.h5``).

    Raises
    ------
    DatasetError
        If none exists; the message names every place looked at.
    """
    places: list[Path] = []
    if path is not None:
        given = Path(path).expanduser()
        places.append(given / PUBLISHED_BENCHMARK_FILE if given.is_dir() else given)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    places.append(root / PUBLISHED_BENCHMARK_NAME / PUBLISHED_BENCHMARK_FILE)
    places.extend(sorted(foundry_cache_dir().glob(
        f"*wei_atom_locating_benchmark*/{PUBLISHED_BENCHMARK_FILE}"), reverse=True))
    for place in places:
        if place.is_file():
            return place
    raise DatasetError(
        f"the published benchmark (DOI 10.18126/e73h-3w6n, {PUBLISHED_BENCHMARK_FILE}) is not "
        f"present; looked at {[str(p) for p in places]} and "
        f"{foundry_cache_dir()}/*wei_atom_locating_benchmark*/. Download it from "
        "https://doi.org/10.18126/e73h-3w6n into one of these places")


def load_published_benchmark(path: str | Path | None = None, *,
                             cache_dir: Path | None = None) -> H5ImageSet:
    """Open the published benchmark with the same reader as :func:`stembench.load`.

    Parameters
    ----------
    path : str or Path, optional
        The file, or a folder holding it; see :func:`find_published_benchmark`.
    cache_dir : Path, optional
        stembench cache root; by default ``$STEMBENCH_CACHE`` or ``~/.cache/stembench``.

    Returns
    -------
    PublishedDataset
        Image ids, images, coordinates (x = column, y = row, pixels) and metadata with
        stembench's field names. The published file has no manifest, so it is not verified.
    """
    return open_dataset(find_published_benchmark(path, cache_dir=cache_dir), verify=True)


def as_foundry_dataset(source_id: str, dc: dict[str, Any], foundry: dict[str, Any], *,
                       local_cache_dir: Path) -> Any:
    """Return foundry-ml's ``FoundryDataset`` for a copy at ``<local_cache_dir>/<source_id>/``.

    It reads the local files with no network and no login (``FoundryCache`` without
    clients). Needs the ``foundry`` extra.

    Parameters
    ----------
    source_id : str
        The dataset's MDF source id (the folder name of the local copy).
    dc : dict
        Its DataCite metadata.
    foundry : dict
        Its Foundry metadata (keys, splits, data type).
    local_cache_dir : pathlib.Path
        Folder holding ``<source_id>/``.
    """
    foundry_ml = require("foundry", extra="foundry", purpose="Loading through foundry-ml")
    cache_module = require("foundry.foundry_cache", extra="foundry",
                           purpose="Loading through foundry-ml")
    cache = cache_module.FoundryCache(forge_client=None, transfer_client=None,
                                      use_globus=False, interval=10, parallel_https=1,
                                      verbose=False, local_cache_dir=str(local_cache_dir))
    return foundry_ml.FoundryDataset(dataset_name=source_id, datacite_entry=dc,
                                     foundry_schema=foundry, foundry_cache=cache)
