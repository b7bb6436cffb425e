"""Publish a dataset file through MDF Connect v2 with ``mdf-cli``'s own code.

:func:`mdf_manifest` writes what ``mdf-cli`` calls the manifest (the ``mdf.yaml``
document, ``mdf.models.config.ManifestConfig``): title, authors, description, licence,
related works (the published benchmark DOI 10.18126/e73h-3w6n and the paper), keywords, the
``ml`` block (the Foundry description of the split and its keys), the files (the dataset
file, its Foundry array file and both SHA-256 manifests), the DataCite block ``dc`` (which
``mdf-cli`` sends as it is, ``mdf/models/config.py:257-258``) and, under ``custom`` (which
``mdf-cli`` sends as ``extensions``, ``mdf/models/config.py:246-255``), the SHA-256 and size
of every file and the Foundry block foundry-ml reads. ``mdf-cli`` drops a
``projects.foundry`` block on purpose (same lines), so the Foundry block travels as
``extensions.foundry``: foundry-ml 1.2.2 looks for it at ``projects.foundry`` of a legacy
Globus Search record (``foundry/foundry.py:296``), so it cannot find a v2 record by itself.

Everything after that is ``mdf-cli``'s: ``mdf.core.validation.validate_manifest`` checks
the manifest, ``MDFAgent.publish`` builds the v2 payload
(``mdf.core.submission.build_submission``), logs in with ``mdf-cli``'s Globus login
(scope ``.../4d5f8e8b-a61d-40d8-bb58-5a3f5d1d200a/connect``; dev ``0e0a9538-...``),
uploads local files to MDF's staging collection over HTTPS and POSTs ``/submit``;
``BackendClient.status`` reads ``GET /status/{source_id}``. ``mdf-cli`` needs globus-sdk 3,
so this module runs in the Foundry environment (the ``foundry`` extra).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.mdf.api import one_line
from stembench.dataset_publish.mdf.foundry_metadata import (
    LICENCE,
    PAPER_DOI,
    PUBLISHED_BENCHMARK_DOI,
    DatasetMetadata,
)
from stembench.dataset_publish.mdf.services import resolve_service
from stembench.errors import InputError, StembenchError

__all__ = [
    "LICENCE_SPDX",
    "TERMINAL_STATUSES",
    "MDFSubmissionError",
    "build_payload",
    "file_digests",
    "follow_status",
    "mdf_manifest",
    "ml_block",
    "submission_status",
    "submit",
]

LICENCE_SPDX = "CC-BY-4.0"
TERMINAL_STATUSES = frozenset({"published", "publish_failed", "rejected", "failed", "deleted",
                               "withdrawn"})
"""Statuses after which a submission no longer changes (``mdf-cli``'s ``_watch_submission``)."""
_EXTRA = "foundry"
_NOT_A_SUBMITTER = ("the identity you logged in with is not in the MDF submitters group: see "
                    "which one it is with `mdf whoami`, then ask MDF "
                    "(materialsdatafacility.org) to add it, or log in with one that is in it "
                    "(`mdf logout`, then publish again); retrying as it is will not help")
_PURPOSE = ("Publishing through MDF Connect v2 (mdf-cli needs globus-sdk 3: use the Foundry "
            "environment, .ci/foundry-env.sh)")


class MDFSubmissionError(StembenchError):
    """MDF Connect v2 refused a submission or a status request, or could not be reached.

    Attributes
    ----------
    status : int or None
        The HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def ml_block(foundry: dict[str, Any]) -> dict[str, Any]:
    """Return the MDF v2 ``ml`` block of a Foundry block (``data_format`` is required)."""
    n_items = int(foundry["n_items"])
    return {
        "data_format": foundry["data_type"],
        "short_name": foundry["short_name"],
        "task_type": list(foundry["task_type"]),
        "domain": list(foundry["domain"]),
        "n_items": n_items,
        "splits": [{**split, "n_items": n_items} for split in foundry["splits"]],
        "keys": [{"name": entry["key"][0], "role": entry["type"],
                  "description": entry["description"], "units": entry["units"]}
                 for entry in foundry["keys"]],
    }


def file_digests(paths: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    """Return ``{file name: {"bytes": size, "sha256": hex digest}}`` of the files."""
    digests = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[path.name] = {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
    return digests


def _author(creator: dict[str, Any]) -> dict[str, Any]:
    author = {"name": creator["creatorName"]}
    for ours, theirs in (("givenName", "given_name"), ("familyName", "family_name")):
        if creator.get(ours):
            author[theirs] = creator[ours]
    return author


def mdf_manifest(metadata: DatasetMetadata, *, data_sources: list[str] | None = None,
                 organization: str | None = None) -> dict[str, Any]:
    """Return the ``mdf-cli`` manifest (``mdf.yaml`` content) of a dataset file.

    Parameters
    ----------
    metadata : DatasetMetadata
        From :func:`~stembench.dataset_publish.mdf.foundry_metadata.dataset_metadata`.
    data_sources : list of str, optional
        Where the four files are staged (``globus://<collection>/<folder>/`` or
        ``https://`` URLs); by default the local files, which ``mdf-cli`` uploads.
    organization : str, optional
        MDF organisation, sent only when given: mdf-cli's guide sets ``organization`` only
        if the user names one, as it is an MDF-side concept
        (``mdf/skills/mdf-publish/references/metadata-checklist.md:174``). foundry-ml 1.2.2
        searches ``mdf.organizations:"foundry"`` of the legacy index, which a v2 record is
        not in anyway; whether staging accepts ``"Foundry"`` is untested (no live service).
    """
    if data_sources is not None and (not data_sources
                                     or any(not s.strip() for s in data_sources)):
        raise InputError(f"data_sources must name where the files are staged, got "
                         f"{data_sources!r}")
    dc = metadata.dc
    descriptions = {d["descriptionType"]: d["description"] for d in dc["descriptions"]}
    return {
        "title": dc["titles"][0]["title"],
        "authors": [_author(c) for c in dc["creators"]],
        "description": f"{descriptions['Abstract']}\n\n{descriptions['TechnicalInfo']}",
        "publisher": dc["publisher"],
        "publication_year": int(dc["publicationYear"]),
        "resource_type": "Dataset",
        "subjects": [s["subject"] for s in dc["subjects"]],
        "license": {"name": LICENCE["rights"], "identifier": LICENCE_SPDX,
                    "url": LICENCE["rightsURI"]},
        "related_works": [
            {"identifier": PUBLISHED_BENCHMARK_DOI, "identifier_type": "DOI",
             "relation_type": "IsDerivedFrom"},
            {"identifier": PAPER_DOI, "identifier_type": "DOI", "relation_type": "References"}],
        "methods": [descriptions["Methods"]],
        "domains": list(metadata.foundry["domain"]),
        "data_type": "image",
        "formats": list(dc["formats"]),
        "ml": ml_block(metadata.foundry),
        "data_sources": list(data_sources) if data_sources is not None
        else [str(path.resolve()) for path in metadata.files],
        **({"organization": organization} if organization else {}),
        "dc": dc,
        "custom": {"stembench": {
            "dataset": metadata.manifest.name, "version": metadata.manifest.version,
            "preset": metadata.path.stem, "files": file_digests(metadata.files)},
            "foundry": metadata.foundry},
    }


def _agent(manifest: dict[str, Any], *, source_id: str | None) -> Any:
    config = require("mdf.models.config", extra=_EXTRA, purpose=_PURPOSE)
    validation = require("mdf.core.validation", extra=_EXTRA, purpose=_PURPOSE)
    agent_module = require("mdf.core.agent", extra=_EXTRA, purpose=_PURPOSE)
    model = config.ManifestConfig.model_validate({**manifest, "source_id": source_id})
    errors, warnings = validation.validate_manifest(model)
    if errors or warnings:
        raise InputError(f"mdf-cli rejects the manifest: errors {errors}, warnings {warnings}")
    return agent_module.MDFAgent(manifest=model)


def build_payload(manifest: dict[str, Any], *, test: bool = False, update: bool = False,
                  source_id: str | None = None) -> dict[str, Any]:
    """Return the exact MDF v2 submission ``mdf-cli`` builds (no login, no network).

    Parameters
    ----------
    manifest : dict
        From :func:`mdf_manifest`.
    test : bool
        Submit to MDF's test resources (a test DOI).
    update : bool
        A new version of the dataset ``source_id``.
    source_id : str, optional
        Required with ``update``.

    Raises
    ------
    InputError
        If ``mdf-cli``'s validation reports an error or a warning, or ``update`` lacks a
        ``source_id``.
    """
    if update and not source_id:
        raise InputError("an update names the published dataset: pass its source_id")
    agent = _agent(manifest, source_id=source_id)
    result = agent.publish(dry_run=True, test=test, update=update)
    return dict(result["payload"])


def _status_of(result: Any) -> int | None:
    code = getattr(result, "status_code", None)
    return int(code) if code is not None else None


def _rejection(result: Any, *, what: str) -> MDFSubmissionError:
    errors = require("mdf.core.errors", extra=_EXTRA, purpose=_PURPOSE)
    status = _status_of(result)
    answer = result if isinstance(result, dict) else {"error": result}
    message = str(answer.get("error") or answer.get("detail") or answer.get("message")
                  or dict(answer))
    hints = {401: "log in again (mdf-cli keeps its tokens in ~/.config/mdf/tokens.json; "
                  "delete it or run `mdf login`)",
             403: "the identity is not allowed to do this: it must belong to the MDF "
                  "submitters group",
             400: "MDF v2 says the submission is invalid",
             404: "MDF v2 has no such submission",
             409: "MDF v2 already has this dataset; pass --update SOURCE_ID for a new version"}
    if status is not None:
        hint = hints.get(status, "the service may be down, retry later" if status >= 500
                         else "")
    elif errors.classify_api_error(answer)["kind"] == "network":  # no HTTP answer came
        hint = "MDF could not be reached (the service may be down): retry later"
    elif "submitters group" in message:  # mdf-cli's own pre-check (agent.py:965-970)
        hint = _NOT_A_SUBMITTER
    else:
        hint = ""
    return MDFSubmissionError(f"MDF Connect v2 {what} failed (HTTP {status}): {message}"
                              + (f"; {hint}" if hint else ""), status=status)


def _unanswered(exc: Any, *, sent: bool, service: str,
                source_id: str | None) -> MDFSubmissionError:
    """The one line for an ``httpx`` error that ``MDFAgent.publish`` did not turn into an answer.

    A request to ``/submit`` that was sent but got no answer (a read timeout, a dropped
    connection) may have been accepted, so it must not simply be sent again.
    """
    request = getattr(exc, "_request", None)  # httpx.RequestError.request raises when unset
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    where = f"{request.method} {request.url}" if request is not None else "a request"
    text = f"MDF Connect v2 submission failed: {where}: {type(exc).__name__}: {one_line(exc)}"
    if sent and request is not None and request.url.path.endswith("/submit") and status is None:
        check = (f"`stembench dataset publish-status {source_id} --service {service}`"
                 if source_id else f"`mdf list --service {service}` (mdf-cli)")
        text += (f"; the submission was sent and may have been accepted: check {check} "
                 "before submitting again")
    elif status in (401, 403):
        text += ("; the login may not write there: log in again (`mdf login`), or stage the "
                 "files yourself and pass --data-source")
    return MDFSubmissionError(text, status=status)


@contextmanager
def _no_browser(enabled: bool) -> Iterator[None]:
    """Set mdf-cli's ``MDF_NO_BROWSER`` switch for the duration of a call."""
    previous = os.environ.get("MDF_NO_BROWSER")
    if enabled:
        os.environ["MDF_NO_BROWSER"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MDF_NO_BROWSER", None)
        else:
            os.environ["MDF_NO_BROWSER"] = previous


def submit(manifest: dict[str, Any], *, service: str | None = None, test: bool = False,
           update: bool = False, source_id: str | None = None, token: str | None = None,
           no_browser: bool = False) -> dict[str, Any]:
    """Submit through ``mdf-cli`` (``MDFAgent.publish``); return MDF's answer.

    Parameters
    ----------
    manifest : dict
        From :func:`mdf_manifest`.
    service : {"prod", "staging", "dev"}, optional
        Which MDF Connect v2; by default ``$MDF_SERVICE``, else mdf-cli's default
        (:func:`~stembench.dataset_publish.mdf.services.resolve_service`).
    test, update, source_id
        As in :func:`build_payload`.
    token : str, optional
        A bearer token for the API (else ``$MDF_CONNECT_TOKEN``, else ``mdf-cli``'s
        Globus login, which is needed to upload local files).
    no_browser : bool
        Never open a browser for the login: print the URL and read the code.

    Returns
    -------
    dict
        At least ``source_id`` and ``version``.

    Raises
    ------
    MDFSubmissionError
        On any refusal (with the HTTP status and what to do) or an upload failure.
    """
    if update and not source_id:
        raise InputError("an update names the published dataset: pass its source_id")
    errors = require("mdf.core.errors", extra=_EXTRA, purpose=_PURPOSE)
    exceptions = require("mdf.core.exceptions", extra=_EXTRA, purpose=_PURPOSE)
    httpx = require("httpx", extra=_EXTRA, purpose=_PURPOSE)
    service = resolve_service(service)
    agent = _agent(manifest, source_id=source_id)
    try:
        with _no_browser(no_browser):
            result = agent.publish(dry_run=False, test=test, update=update, token=token,
                                   service_instance=service)
    except (RuntimeError, exceptions.MDFError) as exc:
        raise MDFSubmissionError(f"MDF Connect v2 submission failed before it was sent: "
                                 f"{one_line(exc)}") from exc
    except httpx.HTTPError as exc:  # mdf-cli lets these through (agent.py:231-249, 495-522)
        sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout,
                                    httpx.PoolTimeout))
        raise _unanswered(exc, sent=sent, service=service, source_id=source_id) from exc
    if not errors.is_success(result) or not result.get("source_id"):
        raise _rejection(result, what="submission")
    return dict(result)


def submission_status(source_id: str, *, service: str | None = None,
                      token: str | None = None) -> dict[str, Any]:
    """Return a submission's status (``GET /status/{source_id}`` through ``mdf-cli``).

    ``service`` is as in :func:`submit`.

    Parameters
    ----------
    source_id : str
        The submission's MDF source id.
    service : {"prod", "staging", "dev"}, optional
        Which MDF Connect v2, as in :func:`submit`.
    token : str, optional
        A bearer token for the API, as in :func:`submit`.

    Returns
    -------
    dict
        ``source_id``, ``version``, ``status`` (e.g. ``pending_curation``, ``published``)
        and ``doi`` (``None`` until minted).
    """
    backend = require("mdf.core.backend_client", extra=_EXTRA, purpose=_PURPOSE)
    errors = require("mdf.core.errors", extra=_EXTRA, purpose=_PURPOSE)
    client = backend.BackendClient.authenticated(token=token,
                                                 service_instance=resolve_service(service),
                                                 interactive=token is None)
    try:
        result = client.status(source_id)
    finally:
        client.close()
    if not errors.is_success(result):
        raise _rejection(result, what="status request")
    submission = result.get("submission") or result
    return {"source_id": submission.get("source_id", source_id),
            "version": submission.get("version"), "status": submission.get("status"),
            "doi": submission.get("dataset_doi") or submission.get("doi")}


def follow_status(source_id: str, *, wait_s: float, interval_s: float = 30.0,
                  service: str | None = None, token: str | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll :func:`submission_status` until a terminal status or ``wait_s`` seconds pass.

    Parameters
    ----------
    source_id : str
        The submission's MDF source id.
    wait_s : float
        Seconds to keep polling at most.
    interval_s : float, optional
        Seconds between two polls; default 30.
    service : {"prod", "staging", "dev"}, optional
        Which MDF Connect v2, as in :func:`submit`.
    token : str, optional
        A bearer token for the API, as in :func:`submit`.
    sleep : callable, optional
        Waits a number of seconds; default :func:`time.sleep`.
    clock : callable, optional
        Monotonic seconds; default :func:`time.monotonic`.

    Returns
    -------
    dict
        The last status read (its ``status`` is in :data:`TERMINAL_STATUSES` unless the
        wait ran out first).
    """
    deadline = clock() + wait_s
    while True:
        status = submission_status(source_id, service=service, token=token)
        if status["status"] in TERMINAL_STATUSES or clock() + interval_s > deadline:
            return status
        sleep(interval_s)
