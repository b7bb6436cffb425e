"""Find a published dataset on MDF and download its files over HTTPS, verified and atomic.

1. :func:`find_published` asks Globus Search (MDF index, anonymous HTTPS GET) for the
   dataset record of an MDF source name and dataset version, and returns its
   ``source_id``, DataCite and Foundry blocks and the HTTPS folder of its files.
2. :func:`list_files` names the files: with a Globus Transfer authorizer, by listing the
   folder on the MDF endpoint; without one, from the Foundry splits (each split file plus
   its ``.manifest.json``).
3. :func:`download_verified` streams the manifest and the HDF5 file into temporary files
   beside the destination, checks the size, checks every array against the manifest's
   SHA-256 (and the manifest against the file's own), then renames both into place. On
   any failure the temporary files are removed and nothing appears at the destination.

Network failures raise :class:`MDFUnavailableError`; content failures raise
:class:`~stembench.errors.IntegrityError`.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.manifest import (
    Manifest,
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.errors import DatasetError, IntegrityError

__all__ = [
    "MDF_ENDPOINT_ID",
    "MDF_HTTPS_BASE",
    "MDF_SEARCH_INDEX",
    "MDFUnavailableError",
    "PublishedRecord",
    "download_verified",
    "find_published",
    "list_files",
]

logger = logging.getLogger(__name__)

MDF_SEARCH_INDEX = "1a57bbe5-5272-477f-9d31-343b8258b7a5"
"""Globus Search index of MDF (the one foundry-ml queries)."""
MDF_ENDPOINT_ID = "82f1b5c6-6e9b-11e5-ba47-22000b92c6ec"
"""Globus collection (NCSA) that stores MDF data."""
MDF_HTTPS_BASE = "https://data.materialsdatafacility.org"
"""HTTPS server of that collection; public data needs no token."""
SEARCH_API = "https://search.api.globus.org"
CHUNK_BYTES = 1 << 20


class MDFUnavailableError(DatasetError):
    """MDF, Globus Search or Transfer could not be reached or answered with an error."""


@dataclass(frozen=True)
class PublishedRecord:
    """A dataset record found in MDF's search index.

    Attributes
    ----------
    source_id : str
        MDF source id (``<source_name>_v<n>.<m>``); Foundry caches under this name.
    version : str
        The dataset version (DataCite ``version``).
    folder : str
        Path of the files on the MDF collection, e.g. ``/foundry/<source_id>/``.
    dc, foundry : dict
        The record's DataCite and Foundry blocks.
    """

    source_id: str
    version: str
    folder: str
    dc: dict[str, Any] = field(repr=False)
    foundry: dict[str, Any] = field(repr=False)

    def url(self, name: str) -> str:
        """Return the HTTPS URL of a file of this dataset (``name`` relative to its folder)."""
        return f"{MDF_HTTPS_BASE}{self.folder}{name.lstrip('/')}"


def _folder(content: dict[str, Any], source_id: str) -> str:
    endpoint_path = str(content.get("data", {}).get("endpoint_path", ""))
    prefix = f"globus://{MDF_ENDPOINT_ID}"
    path = endpoint_path[len(prefix):] if endpoint_path.startswith(prefix) else ""
    path = path or f"/foundry/{source_id}/"
    return path if path.endswith("/") else path + "/"


def _mdf_version(content: dict[str, Any]) -> tuple[int, ...]:
    raw = str(content.get("mdf", {}).get("version", "0"))
    return tuple(int(p) for p in raw.split(".") if p.isdigit()) or (0,)


def find_published(source_name: str, *, version: str, index: str = MDF_SEARCH_INDEX,
                   timeout: float = 10.0) -> PublishedRecord | None:
    """Find the newest MDF record of a dataset version.

    Parameters
    ----------
    source_name : str
        MDF source name, e.g. ``atom_locating_benchmark_mini``.
    version : str
        Dataset version (matched against the record's DataCite ``version``).
    index : str
        Globus Search index id.
    timeout : float
        Seconds to wait for Globus Search (public records need no login).

    Returns
    -------
    PublishedRecord or None
        ``None`` when no record of that source name and version exists.

    Raises
    ------
    MDFUnavailableError
        If Globus Search cannot be reached or answers with an error.
    """
    requests = require("requests", extra="foundry", purpose="Downloading from MDF")
    query = f'mdf.source_name:"{source_name}" AND mdf.resource_type:"dataset"'
    url = f"{SEARCH_API}/v1/index/{index}/search"
    try:  # plain GET, no retries: an offline machine gets its answer at once
        response = requests.get(url, params={"q": query, "advanced": "true", "limit": "20"},
                                timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise MDFUnavailableError(f"Globus Search (index {index}) failed for {query!r}: "
                                  f"{exc}") from exc
    candidates = []
    for result in body.get("gmeta", []):
        for entry in result.get("entries", []):
            content = entry.get("content", {})
            mdf = content.get("mdf", {})
            foundry = content.get("projects", {}).get("foundry")
            if (mdf.get("source_name") == source_name and foundry
                    and str(content.get("dc", {}).get("version")) == version):
                candidates.append(content)
    if not candidates:
        return None
    content = max(candidates, key=_mdf_version)
    source_id = str(content["mdf"]["source_id"])
    return PublishedRecord(source_id=source_id, version=version,
                           folder=_folder(content, source_id), dc=content.get("dc", {}),
                           foundry=content["projects"]["foundry"])


def list_files(record: PublishedRecord, *, authorizer: Any = None) -> dict[str, int | None]:
    """Return the dataset's files (name relative to its folder -> size in bytes or None).

    With ``authorizer`` (a Globus authorizer for Transfer), the folder on the MDF collection
    is listed (one level). Without it the names come from the Foundry splits: each split
    file and its ``.manifest.json``, sizes unknown.

    Raises
    ------
    MDFUnavailableError
        If Globus Transfer cannot be reached or refuses the listing.
    """
    if authorizer is None:
        names = [str(split["path"]).lstrip("/") for split in record.foundry.get("splits", [])]
        return {n: None for name in names for n in (name, manifest_sidecar_path(name).name)}
    globus_sdk = require("globus_sdk", extra="foundry", purpose="Listing MDF files")
    client = globus_sdk.TransferClient(authorizer=authorizer)
    try:
        listing = client.operation_ls(MDF_ENDPOINT_ID, path=record.folder)
    except globus_sdk.GlobusError as exc:
        raise MDFUnavailableError(f"listing {record.folder} on MDF failed: {exc}") from exc
    return {str(item["name"]): int(item["size"]) for item in listing.data.get("DATA", [])
            if item.get("type") == "file"}


def _stream(url: str, target: Path, *, expected_size: int | None, timeout: float) -> None:
    import requests
    from tqdm import tqdm

    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise MDFUnavailableError(f"GET {url} answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else expected_size
            written = 0
            with open(target, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                  desc=Path(url).name, disable=None) as bar:
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except (requests.RequestException, OSError) as exc:
        raise MDFUnavailableError(f"GET {url} failed: {exc}") from exc
    for label, size in (("Content-Length", total), ("listed size", expected_size)):
        if size is not None and written != size:
            raise IntegrityError(f"download of {url} is truncated or padded: got {written} "
                                 f"bytes, {label} says {size}")


def download_verified(record: PublishedRecord, name: str, destination: Path, *,
                      expected_name: str, sizes: dict[str, int | None] | None = None,
                      timeout: float = 60.0) -> Path:
    """Download one dataset file and its manifest, verify them, and move them into place.

    Parameters
    ----------
    record : PublishedRecord
        Where the files are.
    name : str
        The HDF5 file's name in the record's folder, e.g. ``mini.h5``; its manifest is
        ``<name>.manifest.json`` beside it.
    destination : Path
        Final path of the HDF5 file; its manifest goes beside it. The folder is created.
    expected_name : str
        Dataset name the manifest must carry; the version must be ``record.version``.
    sizes : dict, optional
        File sizes from :func:`list_files`, checked when known.
    timeout : float
        Seconds to wait for the server to connect or send data.

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    IntegrityError
        If the manifest is not the expected dataset, the file is truncated, or an array
        does not match its SHA-256; nothing is left at ``destination``.
    MDFUnavailableError
        If a download fails.
    """
    sizes = sizes or {}
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    sidecar_name = manifest_sidecar_path(name).name
    token = uuid.uuid4().hex
    tmp_file = destination.with_name(f".{destination.name}.{token}.part")
    tmp_sidecar = destination.with_name(f".{destination.name}.manifest.{token}.part")
    try:
        _stream(record.url(sidecar_name), tmp_sidecar, expected_size=sizes.get(sidecar_name),
                timeout=timeout)
        try:
            manifest = Manifest.from_json(tmp_sidecar.read_text(encoding="utf-8"))
        except (DatasetError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{record.url(sidecar_name)}: not a manifest: {exc}") from exc
        if (manifest.name, manifest.version) != (expected_name, record.version):
            raise IntegrityError(
                f"{record.url(sidecar_name)} describes {manifest.name!r} version "
                f"{manifest.version!r}, expected {expected_name!r} version {record.version!r}")
        _stream(record.url(name), tmp_file, expected_size=sizes.get(name), timeout=timeout)
        _verify(tmp_file, manifest, record.url(name))
        os.replace(tmp_sidecar, manifest_sidecar_path(destination))
        os.replace(tmp_file, destination)
    finally:
        tmp_file.unlink(missing_ok=True)
        tmp_sidecar.unlink(missing_ok=True)
    logger.info("downloaded and verified %s from %s", destination, record.url(name))
    return destination


def _verify(path: Path, manifest: Manifest, url: str) -> None:
    try:
        inside = read_manifest(path)
        mismatches = verify_file(path, manifest=manifest)
    except DatasetError as exc:
        raise IntegrityError(f"download of {url} is not a readable dataset (truncated or "
                             f"corrupted): {exc}") from exc
    if inside != manifest:
        raise IntegrityError(f"download of {url}: the manifest inside the file differs from "
                             "the published manifest")
    if mismatches:
        raise IntegrityError(f"download of {url}: {len(mismatches)} array(s) do not match "
                             f"their SHA-256 in the manifest, e.g. {mismatches[:3]}")
