"""Fill the stembench cache from Foundry/MDF, and read Foundry-style copies of the datasets.

:func:`mdf_source` is a cache source (see :mod:`stembench.dataset_publish.storage.cache`): asked for
a dataset file, it first looks for a verified copy in a local Foundry cache
(``$FOUNDRY_LOCAL_CACHE_DIR/<source_id>/<preset>.h5``), then finds the published record
through MDF v2's public API (no login) and downloads the file over HTTPS, verified against
its manifest and placed atomically.
When MDF cannot be reached, or ``$STEMBENCH_OFFLINE`` is set, it logs why and returns
``False`` so :func:`stembench.load` builds the dataset locally instead.
:func:`install_mdf_source` registers it.

The original published benchmark (Wei et al. 2023, DOI 10.18126/e73h-3w6n, ``wei_atom.h5``)
is opened through the same reader by :func:`load_published_benchmark`.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.mdf.download import (
    MDFUnavailableError,
    download_verified,
    find_published,
)
from stembench.dataset_publish.storage.cache import (
    CacheRequest,
    default_cache_dir,
    register_source,
)
from stembench.dataset_publish.storage.manifest import (
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.dataset_publish.storage.published import H5ImageSet
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import DatasetError, MissingExtraError

__all__ = [
    "OFFLINE_ENV",
    "PUBLISHED_BENCHMARK_FILE",
    "PUBLISHED_BENCHMARK_NAME",
    "as_foundry_dataset",
    "find_published_benchmark",
    "foundry_cache_dir",
    "install_mdf_source",
    "load_published_benchmark",
    "mdf_source",
    "offline",
]

logger = logging.getLogger(__name__)

OFFLINE_ENV = "STEMBENCH_OFFLINE"
"""Set this environment variable (to anything but ``""`` or ``0``) to never ask MDF."""
PUBLISHED_BENCHMARK_NAME = "wei-atom-locating-benchmark-v1.1"
"""Cache name of the original published benchmark (DOI 10.18126/e73h-3w6n)."""
PUBLISHED_BENCHMARK_FILE = "wei_atom.h5"


def foundry_cache_dir() -> Path:
    """Return foundry-ml's cache folder: ``$FOUNDRY_LOCAL_CACHE_DIR``, else ``./data``."""
    return Path(os.environ.get("FOUNDRY_LOCAL_CACHE_DIR", "data")).expanduser()


def offline() -> bool:
    """Return whether ``$STEMBENCH_OFFLINE`` forbids asking MDF."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def _copy_from_foundry_cache(request: CacheRequest) -> bool:
    root = foundry_cache_dir()
    candidates = sorted(root.glob(f"*/{request.preset}.h5"), reverse=True)
    for candidate in candidates:
        try:
            manifest = read_manifest(candidate)
            if (manifest.name, manifest.version) != (request.name, request.version):
                continue
            if verify_file(candidate, manifest=manifest):
                logger.warning("foundry cache copy %s does not match its manifest; skipped",
                               candidate)
                continue
        except DatasetError as exc:
            logger.warning("foundry cache copy %s is unreadable (%s); skipped", candidate, exc)
            continue
        request.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = request.path.with_name(f".{request.path.name}.{uuid.uuid4().hex}.part")
        try:
            shutil.copyfile(candidate, tmp)
            manifest_sidecar_path(request.path).write_text(manifest.to_json() + "\n",
                                                           encoding="utf-8")
            os.replace(tmp, request.path)
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("copied %s from the foundry cache %s", request.path, candidate)
        return True
    return False


def mdf_source(request: CacheRequest) -> bool:
    """Place the requested dataset file from a local Foundry cache or from MDF.

    Parameters
    ----------
    request : CacheRequest
        Which dataset name, version and preset, and where to put it.

    Returns
    -------
    bool
        ``True`` when a verified file was placed at ``request.path``; ``False`` when no
        copy exists or MDF cannot be reached (the reason is logged), never an exception,
        so offline use goes on to build the dataset.
    """
    label = f"{request.name} {request.preset} {request.version}"
    if _copy_from_foundry_cache(request):
        return True
    if offline():
        logger.info("%s is set: not asking MDF for %s", OFFLINE_ENV, label)
        return False
    try:
        record = find_published(request.name, preset=request.preset, version=request.version)
        if record is None:
            logger.info("MDF has no published %s", label)
            return False
        download_verified(record, f"{request.preset}.h5", request.path,
                          expected_name=request.name, expected_version=request.version)
    except (MDFUnavailableError, MissingExtraError) as exc:
        logger.warning("MDF unavailable, %s not downloaded: %s", label, exc)
        return False
    except DatasetError as exc:
        logger.warning("download of %s refused: %s", label, exc)
        return False
    return True


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
    """
    foundry_ml = require("foundry", extra="foundry", purpose="Loading through foundry-ml")
    cache_module = require("foundry.foundry_cache", extra="foundry",
                           purpose="Loading through foundry-ml")
    cache = cache_module.FoundryCache(forge_client=None, transfer_client=None,
                                      use_globus=False, interval=10, parallel_https=1,
                                      verbose=False, local_cache_dir=str(local_cache_dir))
    return foundry_ml.FoundryDataset(dataset_name=source_id, datacite_entry=dc,
                                     foundry_schema=foundry, foundry_cache=cache)
