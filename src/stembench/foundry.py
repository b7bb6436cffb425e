"""The benchmark for Foundry users: foundry-ml 1.2.2's own calls, and a one-line form.

foundry-ml 1.2.2 has no ``foundry.load``; its users write::

    from foundry import Foundry
    f = Foundry(no_browser=True, no_local_server=True)      # Globus login
    results = f.search("atom-locating-benchmark")             # a DataFrame
    dataset = f.get_dataset(results.iloc[0]["DOI"])           # a FoundryDataset
    data = dataset.get_as_dict()                              # {split: {"input", "target"}}

``Foundry()`` logs in at construction unless it is given ``authorizers``;
:func:`public_authorizers` gives it clients that need no login (enough to search MDF's
public Globus Search index). foundry-ml 1.2.2 finds only records of that legacy index
carrying ``projects.foundry`` (``foundry/foundry.py:296``), which an MDF v2 submission does
not write (``mdf/models/config.py:246-253``), and it downloads from
``/foundry/<source_id>/`` (``foundry/foundry_cache.py:110``), while MDF v2 keeps files under
``/mdf_open/<source_id>/<version>/`` (``mdf/core/agent.py:985-990``).
:func:`prefetch` puts a dataset's files into the cache the ``FoundryDataset`` reads from,
from MDF v2 over HTTPS, each verified against its SHA-256 manifest, so that
``get_as_dict()`` reads them without foundry-ml's own download. :func:`load` needs no
search at all: it finds the dataset through MDF v2's API, and builds it locally when MDF
has no published copy or cannot be reached. Everything here needs the ``foundry`` extra
(foundry-ml needs globus-sdk 3: the Foundry environment).
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.mdf.api import MDFApiClient
from stembench.dataset_publish.mdf.download import (
    PublishedRecord,
    download_verified,
    find_published,
    published_record,
)
from stembench.dataset_publish.mdf.foundry_arrays import (
    foundry_arrays_path,
    made_from,
    write_foundry_arrays,
)
from stembench.dataset_publish.mdf.foundry_metadata import (
    datacite_block,
    foundry_block,
    source_name_for,
)
from stembench.dataset_publish.mdf.source import (
    as_foundry_dataset,
    foundry_cache_dir,
    try_published,
)
from stembench.dataset_publish.storage.cache import BUILDER_MODULES, provenance_path
from stembench.dataset_publish.storage.manifest import (
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.errors import DatasetError

__all__ = ["dataset", "load", "prefetch", "public_authorizers"]

logger = logging.getLogger(__name__)


def public_authorizers() -> dict[str, Any]:
    """Return the ``authorizers`` that ``Foundry(authorizers=...)`` needs, with no login.

    foundry-ml 1.2.2's ``Foundry.__init__`` reads the keys ``search`` (a
    ``globus_sdk.SearchClient``), ``transfer`` (a ``TransferClient``), ``data_mdf``,
    ``petrel``, ``openid`` and ``mdf_connect`` (authorizers). All are anonymous here:
    searching MDF's public index works; anything that needs an identity (publishing,
    Globus Transfer listings) is refused by the service.
    """
    globus_sdk = require("globus_sdk", extra="foundry", purpose="Searching Foundry")
    anonymous = globus_sdk.NullAuthorizer()
    return {"search": globus_sdk.SearchClient(authorizer=anonymous),
            "transfer": globus_sdk.TransferClient(authorizer=anonymous),
            "data_mdf": anonymous, "petrel": anonymous, "openid": anonymous,
            "mdf_connect": anonymous}


def _title_parts(title: str) -> tuple[str, str]:
    parts = title.split(":", 1)[0].split()
    if len(parts) != 3:
        raise DatasetError(f"not a stembench dataset title (expected '<name> <preset> "
                           f"<version>: ...'): {title!r}")
    return parts[0], parts[2]


def _place(record: PublishedRecord, name: str, folder: Path, *, expected: tuple[str, str],
           client: MDFApiClient | None = None) -> Path:
    target = folder / name
    if target.is_file() and manifest_sidecar_path(target).is_file():
        try:
            manifest = read_manifest(target)
            if (manifest.name, manifest.version) == expected and not verify_file(target):
                return target
        except DatasetError as exc:
            logger.warning("cached %s is unreadable (%s); downloading it again", target, exc)
    return download_verified(record, name, target, expected_name=expected[0],
                             expected_version=expected[1], client=client)


def _cache_of(owner: Any, attribute: str) -> Path:
    """The ``local_cache_dir`` of ``owner.<attribute>`` (a ``FoundryCache``), else the default."""
    folder = getattr(getattr(owner, attribute, None), "local_cache_dir", None)
    return Path(folder) if folder else foundry_cache_dir()


def prefetch(dataset: Any, *, service: str | None = None,
             client: MDFApiClient | None = None) -> Path:
    """Put a stembench ``FoundryDataset``'s split files where its ``get_as_dict()`` reads.

    Parameters
    ----------
    dataset : foundry.FoundryDataset
        From ``Foundry(...).search(...)`` or ``Foundry(...).get_dataset(doi)``; its files go
        to ``<local_cache_dir>/<source_id>/`` of the ``Foundry`` it came from (foundry-ml's
        ``FoundryCache.local_cache_dir``: ``Foundry(local_cache_dir=...)``, else
        ``$FOUNDRY_LOCAL_CACHE_DIR``, else ``./data/``).
    service : str, optional
        MDF service that holds the record: ``"prod"``, ``"staging"`` or ``"dev"``; by
        default ``$MDF_SERVICE``, else mdf-cli's default.
    client : MDFApiClient, optional
        The MDF v2 API client (overrides ``service``).

    Returns
    -------
    Path
        ``<cache>/<source_id>/``, holding each split file and its ``.manifest.json``.

    Raises
    ------
    DatasetError
        If MDF has no such record, or its title is not a stembench dataset's.
    IntegrityError
        If a file does not match its manifest (nothing is left in the cache).
    """
    source_id = str(dataset.dataset_name)
    expected = _title_parts(str(dataset.dc.titles[0].title))
    names = [str(split.path).lstrip("/") for split in dataset.foundry_schema.splits]
    wanted = [n for name in names for n in (name, manifest_sidecar_path(name).name)]
    client = client or MDFApiClient(service=service)
    record = published_record(source_id, names=wanted, client=client)
    if record is None:
        raise DatasetError(f"MDF {client.service} ({client.base_url}) has no record "
                           f"{source_id!r}")
    folder = _cache_of(dataset, "_foundry_cache") / source_id
    for name in names:
        _place(record, name, folder, expected=expected, client=client)
    return folder


def _default_version(name: str) -> str:
    if name not in BUILDER_MODULES:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {sorted(BUILDER_MODULES)}")
    return str(importlib.import_module(BUILDER_MODULES[name]).DATASET_VERSION)


def _published_copy(name: str, preset: str, version: str, cache: Path,
                    service: str | None, provenance: dict[str, Any]) -> Path | None:
    arrays = foundry_arrays_path(f"{preset}.h5").name

    def fetch(client: MDFApiClient) -> tuple[Path, PublishedRecord] | None:
        record = find_published(name, preset=preset, version=version, client=client,
                                names=[arrays, manifest_sidecar_path(arrays).name])
        if record is None:
            return None
        return _place(record, arrays, cache / record.source_id, expected=(name, version),
                      client=client), record

    return try_published(f"{name} {preset} {version}", fetch, service=service,
                         provenance=provenance)


def _local_copy(name: str, preset: str, version: str, cache: Path, service: str | None,
                provenance: dict[str, Any]) -> Path:
    from stembench.dataset_publish.loading import load as stembench_load

    with stembench_load(name, preset=preset, version=version, service=service) as dataset:
        source = dataset.path
        provenance.update(origin="local", made_from=str(source),
                          made_from_provenance=dataset.provenance)
    target = cache / f"{source_name_for(name, preset)}_local" / foundry_arrays_path(source).name
    if made_from(target, source) and not verify_file(target):
        return target
    return write_foundry_arrays(source, destination=target)


def dataset(name: str = "atom-locating-benchmark", *, preset: str = "standard",
            version: str | None = None, service: str | None = None,
            foundry: Any = None) -> Any:
    """Return the benchmark as foundry-ml's ``FoundryDataset``, without foundry-ml's search.

    The published copy is found through MDF v2's API and downloaded, verified, into the
    cache of ``foundry`` (``Foundry(local_cache_dir=...)``), else foundry-ml's default
    cache (``$FOUNDRY_LOCAL_CACHE_DIR``, else ``./data``); when the service has no copy or
    cannot be reached within a few seconds (one line says why), the dataset is built
    locally and its Foundry array file written there instead.

    Parameters
    ----------
    name : str
        Dataset name.
    preset : str
        Build preset, e.g. ``"mini"`` or ``"standard"``.
    version : str, optional
        Dataset version; by default the one this stembench builds.
    service : str, optional
        MDF service to read the published copy from: ``"prod"``, ``"staging"`` or
        ``"dev"``; by default ``$MDF_SERVICE``, else mdf-cli's default.
    foundry : foundry.Foundry, optional
        Whose cache to use.

    Returns
    -------
    foundry.FoundryDataset
        With one split named after the preset; ``get_as_dict()`` reads the cached Foundry
        array file. It is the only reader that works in foundry-ml 1.2.2:
        ``get_as_torch()`` and ``get_as_tensorflow()`` raise ``TypeError``, as
        ``FoundryDataset`` calls ``FoundryCache.load_as_torch``/``load_as_tensorflow``
        without their required ``as_hdf5`` argument (``foundry/foundry_dataset.py:114-141``,
        ``foundry/foundry_cache.py:227,255``), and ``FoundryDataset`` has no
        ``load_as_torch``. Where that file came from (the
        MDF service and record, or a local build and why MDF was not used) is written
        beside it, in ``<file>.provenance.json``.
    """
    require("foundry", extra="foundry", purpose="Loading through foundry-ml")
    version = version or _default_version(name)
    cache = _cache_of(foundry, "foundry_cache")
    provenance: dict[str, Any] = {}
    arrays = (_published_copy(name, preset, version, cache, service, provenance)
              or _local_copy(name, preset, version, cache, service, provenance))
    provenance_path(arrays).write_text(json.dumps(provenance, indent=1) + "\n",
                                       encoding="utf-8")
    manifest = read_manifest(arrays)
    block = foundry_block(arrays)
    dc = datacite_block(manifest, preset=preset, n_images=int(block["n_items"]))
    return as_foundry_dataset(arrays.parent.name, dc, block, local_cache_dir=cache)


def load(name: str = "atom-locating-benchmark", *, preset: str = "standard",
         version: str | None = None, service: str | None = None) -> dict[str, Any]:
    """Return the benchmark exactly as foundry-ml's ``FoundryDataset.get_as_dict()`` does.

    Parameters
    ----------
    name, preset, version, service
        As in :func:`dataset`.

    Returns
    -------
    dict
        ``{preset: {"input": {...}, "target": {...}}}``: inputs ``image_ids``, ``imgs``,
        ``image_shapes``, ``metadata``; targets ``raw``, ``coords``, ``n_columns``,
        ``column_types``, ``column_elements``, each one numpy array over all images (see
        :mod:`stembench.dataset_publish.mdf.foundry_arrays`).

    Examples
    --------
    >>> import stembench.foundry
    >>> data = stembench.foundry.load("atom-locating-benchmark", preset="mini")  # doctest: +SKIP
    >>> coords = data["mini"]["target"]["coords"]  # doctest: +SKIP

    ``coords`` is then ``(n_images, max_columns, 2)`` x, y pixels.
    """
    data: dict[str, Any] = dataset(name, preset=preset, version=version,
                                   service=service).get_as_dict()
    return data
