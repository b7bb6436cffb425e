"""``stembench.load``: a benchmark dataset by name, or a dataset file.

A named dataset comes from the local cache (:mod:`stembench.dataset_publish.storage.cache`),
which is filled on first use from the Materials Data Facility
(:func:`stembench.dataset_publish.mdf.source.mdf_source`) or, failing that, built locally.
The original published benchmark is read from its own cache place
(:func:`stembench.dataset_publish.mdf.source.load_published_benchmark`). This module joins the
two sub-packages, so that the cache itself knows nothing of MDF.
"""

from __future__ import annotations

import os
from pathlib import Path

from stembench.dataset_publish.mdf.source import (
    PUBLISHED_BENCHMARK_NAME,
    install_mdf_source,
    load_published_benchmark,
)
from stembench.dataset_publish.storage.cache import BUILDER_MODULES, load_cached
from stembench.dataset_publish.storage.published import H5ImageSet
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import DatasetError

__all__ = ["load"]


def load(
    name: str = "atom-locating-benchmark",
    *,
    preset: str = "standard",
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    service: str | None = None,
) -> H5ImageSet:
    """Return a benchmark dataset from the local cache, building it on first use.

    Parameters
    ----------
    name : str
        A known dataset name (``"atom-locating-benchmark"``), or the path of an ``.h5``
        file (stembench or published ``wei_atom.h5`` layout), which is opened directly.
    preset : str
        Generator preset, e.g. ``"mini"`` or ``"standard"``.
    version : str, optional
        Dataset version; by default the version this stembench generates.
    cache_dir : str or path-like, optional
        Cache root (``~`` is expanded); by default
        :func:`~stembench.dataset_publish.storage.cache.default_cache_dir`.
    rebuild : bool
        Delete the cached file first and fill the cache again.
    service : str, optional
        MDF service asked for a published copy on a cache miss: ``"prod"``, ``"staging"``
        or ``"dev"``; by default ``$MDF_SERVICE``, else mdf-cli's default
        (:func:`~stembench.dataset_publish.mdf.services.resolve_service`).

    Returns
    -------
    Dataset or PublishedDataset
        Opened with ``verify=True``. Close it (or use it as a context manager) when done.
        Its ``provenance`` says where the cached file came from: the MDF service and
        record, or a local build and why MDF was not used (``mdf_not_used``) or which
        published copy was refused for integrity (``mdf_refused``).

    Raises
    ------
    DatasetError
        If the name is unknown (the message lists the known names) or the version can be
        neither fetched nor built.
    IntegrityError
        If the cached file is truncated or does not match its manifest; the message says
        to pass ``rebuild=True`` or delete the file.

    Examples
    --------
    >>> import tempfile
    >>> import stembench
    >>> with stembench.load(preset="mini", cache_dir=Path(tempfile.mkdtemp())) as dataset:
    ...     image = dataset[dataset.ids[0]]
    >>> image.coords.shape[1], image.pixel_size > 0
    (2, True)
    """
    if cache_dir is not None:
        cache_dir = Path(cache_dir).expanduser()
    as_path = Path(name).expanduser()
    if name.endswith((".h5", ".hdf5")) or as_path.is_file():
        return open_dataset(as_path, verify=True)
    if name == PUBLISHED_BENCHMARK_NAME:
        return load_published_benchmark(cache_dir=cache_dir)
    if name not in BUILDER_MODULES:
        raise DatasetError(
            f"unknown dataset {name!r}; known datasets: "
            f"{sorted([*BUILDER_MODULES, PUBLISHED_BENCHMARK_NAME])} "
            "(or pass the path of an .h5 file)"
        )
    install_mdf_source()
    return load_cached(name, preset=preset, version=version, cache_dir=cache_dir,
                       rebuild=rebuild, service=service)
