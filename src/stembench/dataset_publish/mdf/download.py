"""Find a published dataset through MDF Connect v2's public API and download it, verified.

MDF v2 (the service behind ``mdf-cli`` 0.3) answers public reads without a login. The
routes used here are the ones ``mdf.core.backend_client.BackendClient`` calls, through
:class:`~stembench.dataset_publish.mdf.api.MDFApiClient` (which takes answers as
``BackendClient`` takes them, API Gateway envelopes included):

1. :func:`find_published` sends ``GET /search?q=...&type=datasets&limit=...`` and keeps the
   results whose ``title`` starts with the dataset's exact title prefix
   (``"<name> <preset> <version>:"``, see
   :func:`~stembench.dataset_publish.mdf.foundry_metadata.dataset_title`): MDF v2 assigns the
   ``source_id`` itself, so the title is what identifies a stembench dataset file. The
   newest match's card (``GET /card/{source_id}``) names its files.
2. A card's ``data_sources`` are ``globus://<collection>/<path>`` URIs (or ``https://``
   URLs); MDF v2 keeps a version's files under ``/mdf_open/<source_id>/<version>/``
   (``mdf/core/agent.py:985-990``). Files on MDF's NCSA collection are public over HTTPS
   at ``https://data.materialsdatafacility.org<path>`` (``mdf.core.agent._globus_uri_to_https``);
   a folder URI is joined with the known file names, so no Globus Transfer listing (which
   needs a login) is made.
3. :func:`download_verified` reads the manifest through the API client (so within its
   deadline: the search, the card and the manifest are the *lookup*), checks its dataset
   name and version, then streams the HDF5 file into a temporary file beside the
   destination with its own timeouts (:data:`TRANSFER_TIMEOUT`: for the connection, and
   for each wait for more data, not for the whole file, so a large file on a slow but
   working server is not cut off), checks the length and every array against the
   manifest's SHA-256, then renames both into place. On any failure the temporary files
   are removed and nothing appears at the destination.

Network and service failures raise :class:`MDFUnavailableError`; content failures raise
:class:`~stembench.errors.IntegrityError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stembench.atomic import AtomicPath
from stembench.dataset_publish.mdf.api import (
    GRACE_S,
    MDFApiClient,
    MDFUnavailableError,
    call_within,
    check_file_answer,
    one_line,
)
from stembench.dataset_publish.mdf.foundry_metadata import dataset_title
from stembench.dataset_publish.mdf.services import MDF_API_URLS
from stembench.dataset_publish.storage.manifest import (
    Manifest,
    manifest_sidecar_path,
    read_manifest,
    verify_file,
)
from stembench.errors import DatasetError, IntegrityError

__all__ = [
    "MDF_API_URLS",
    "MDF_HTTPS_BASE",
    "NCSA_MDF_COLLECTION",
    "TRANSFER_TIMEOUT",
    "MDFUnavailableError",
    "PublishedRecord",
    "download_verified",
    "find_published",
    "published_record",
]

logger = logging.getLogger(__name__)

NCSA_MDF_COLLECTION = "82f1b5c6-6e9b-11e5-ba47-22000b92c6ec"
"""Globus collection (NCSA) that stores MDF data."""
MDF_HTTPS_BASE = "https://data.materialsdatafacility.org"
"""HTTPS server of that collection; public data needs no token."""
CHUNK_BYTES = 1 << 20
TRANSFER_TIMEOUT = (10.0, 30.0)
"""Seconds the HDF5 file's download waits for the connection, and for each read (the
longest the server may send nothing; ``requests``' ``(connect, read)``)."""


@dataclass(frozen=True)
class PublishedRecord:
    """A published dataset as MDF v2's card describes it.

    Attributes
    ----------
    source_id : str
        MDF source id (assigned by MDF); Foundry caches under this name.
    service : str
        The MDF service the record was read from.
    mdf_version : str
        MDF's version of the record.
    title : str
        The record's title.
    files : dict of str to str
        File name -> HTTPS URL, for the files that were asked for and found.
    card : dict
        The card as the API returned it.
    """

    source_id: str
    service: str
    mdf_version: str
    title: str
    files: dict[str, str]
    card: dict[str, Any] = field(repr=False)

    def url(self, name: str) -> str:
        """Return the HTTPS URL of a file of this record.

        Raises
        ------
        DatasetError
            If the record's data sources do not include ``name``.
        """
        if name not in self.files:
            raise DatasetError(f"MDF record {self.source_id!r} lists no file {name!r}; its "
                               f"data sources are {self.card.get('data_sources')!r}")
        return self.files[name]


def _version_key(raw: Any) -> tuple[int, ...]:
    return tuple(int(p) for p in str(raw or "0").split(".") if p.isdigit()) or (0,)


def _source_url(source: str, wanted: list[str]) -> dict[str, str]:
    if source.startswith("https://"):
        name = Path(urlparse(source).path).name
        return {name: source} if name in wanted else {}
    prefix = f"globus://{NCSA_MDF_COLLECTION}"
    if not source.lower().startswith(prefix):
        return {}
    path = source[len(prefix):] or "/"
    if path.endswith("/"):
        return {name: f"{MDF_HTTPS_BASE}{path}{name}" for name in wanted}
    name = Path(path).name
    return {name: f"{MDF_HTTPS_BASE}{path}"} if name in wanted else {}


def published_record(source_id: str, *, names: list[str], client: MDFApiClient | None = None,
                     version: str | None = None, service: str | None = None
                     ) -> PublishedRecord | None:
    """Read one record's card and locate the named files.

    Parameters
    ----------
    source_id : str
        MDF source id.
    names : list of str
        File names wanted (e.g. ``["mini.h5", "mini.h5.manifest.json"]``).
    client : MDFApiClient, optional
        The API client; by default one for ``service``.
    version : str, optional
        MDF version of the record; the latest by default.
    service : str, optional
        ``"prod"``, ``"staging"`` or ``"dev"`` when no client is given; by default
        mdf-cli's choice (:func:`~stembench.dataset_publish.mdf.services.resolve_service`).

    Returns
    -------
    PublishedRecord or None
        ``None`` when MDF has no such record (HTTP 404 or a card without ``source_id``).
    """
    client = client or MDFApiClient(service=service)
    body = client.get(f"/card/{source_id}", {"version": version} if version else None)
    card = body.get("card", body) if body else None
    if not isinstance(card, dict) or not card.get("source_id"):
        return None
    files: dict[str, str] = {}
    for source in card.get("data_sources") or []:
        files.update(_source_url(str(source), names))
    return PublishedRecord(source_id=str(card["source_id"]), service=client.service,
                           mdf_version=str(card.get("version") or ""),
                           title=str(card.get("title") or ""), files=files, card=card)


def find_published(name: str, *, preset: str, version: str, names: list[str] | None = None,
                   client: MDFApiClient | None = None, service: str | None = None,
                   limit: int = 20) -> PublishedRecord | None:
    """Find the newest MDF record of one dataset file (name, preset, dataset version).

    Parameters
    ----------
    name, preset, version : str
        Which dataset file, e.g. ``"atom-locating-benchmark"``, ``"mini"``, ``"1.0.0"``.
    names : list of str, optional
        File names to locate; by default ``<preset>.h5`` and its manifest.
    client : MDFApiClient, optional
        The API client; by default one for ``service``.
    service : str, optional
        As in :func:`published_record`.
    limit : int
        Search results to look through.

    Returns
    -------
    PublishedRecord or None
        ``None`` when no published record has the dataset's title.

    Raises
    ------
    MDFUnavailableError
        If the API cannot be reached or answers with an error (after the client's retries).
    """
    client = client or MDFApiClient(service=service)
    prefix = dataset_title(name, preset, version).split(":")[0] + ":"
    body = client.get("/search", {"q": f"{name} {preset} {version}", "type": "datasets",
                                    "limit": str(limit)}) or {}
    matches = [r for r in body.get("results") or [] if isinstance(r, dict)
               and str(r.get("title", "")).startswith(prefix) and r.get("source_id")]
    if not matches:
        return None
    best = max(matches, key=lambda r: _version_key(r.get("version")))
    wanted = names or [f"{preset}.h5", manifest_sidecar_path(f"{preset}.h5").name]
    return published_record(str(best["source_id"]), names=wanted, client=client)


def _stream(url: str, target: Path, *, timeout: tuple[float, float]) -> None:
    import requests
    from tqdm import tqdm

    def start() -> requests.Response:
        return requests.get(url, stream=True, timeout=timeout)

    try:
        response = call_within(sum(timeout) + GRACE_S, start, what=f"GET {url}",
                               discard=requests.Response.close)
        with response:
            check_file_answer(url, response.status_code)
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            with open(target, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                  desc=Path(url).name, disable=None) as bar:
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.exceptions.ChunkedEncodingError as exc:  # fewer bytes than announced
        raise IntegrityError(f"download of {url} is truncated: {one_line(exc)}") from exc
    except (requests.RequestException, OSError) as exc:
        raise MDFUnavailableError(f"GET {url} failed: {one_line(exc)}") from exc


def download_verified(record: PublishedRecord, name: str, destination: Path, *,
                      expected_name: str, expected_version: str,
                      client: MDFApiClient | None = None,
                      transfer_timeout: tuple[float, float] = TRANSFER_TIMEOUT) -> Path:
    """Download one dataset file and its manifest, verify them, and move them into place.

    Parameters
    ----------
    record : PublishedRecord
        Where the files are.
    name : str
        The HDF5 file's name, e.g. ``mini.h5``; its manifest ``<name>.manifest.json``
        must be among the record's files too.
    destination : Path
        Final path of the HDF5 file; its manifest goes beside it. The folder is created.
    expected_name, expected_version : str
        Dataset name and version the manifest must carry.
    client : MDFApiClient, optional
        Reads the manifest, within the client's deadline (part of the lookup); by default
        a client of ``record.service`` without a deadline.
    transfer_timeout : tuple of float
        ``(connect, read)`` seconds for the HDF5 file: the wait for the connection, and
        for each read; the whole transfer has no deadline, so a slow server that keeps
        sending is not cut off.

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
    destination = Path(destination)
    sidecar_url = record.url(manifest_sidecar_path(name).name)
    file_url = record.url(name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    client = client or MDFApiClient(service=record.service)
    with AtomicPath(destination) as tmp_file, \
            AtomicPath(manifest_sidecar_path(destination)) as tmp_sidecar:
        tmp_sidecar.write_bytes(client.get_file(sidecar_url))
        try:
            manifest = Manifest.from_json(tmp_sidecar.read_text(encoding="utf-8"))
        except (DatasetError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{sidecar_url}: not a manifest: {one_line(exc)}") from exc
        if (manifest.name, manifest.version) != (expected_name, expected_version):
            raise IntegrityError(
                f"{sidecar_url} describes {manifest.name!r} version {manifest.version!r}, "
                f"expected {expected_name!r} version {expected_version!r}")
        _stream(file_url, tmp_file, timeout=transfer_timeout)
        _verify(tmp_file, manifest, file_url)
    logger.info("downloaded and verified %s from %s", destination, file_url)
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
