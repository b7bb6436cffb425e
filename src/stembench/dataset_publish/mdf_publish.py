"""Submit a dataset to MDF Connect with its Foundry block intact.

foundry-ml 1.2.2's ``Foundry.publish_dataset`` passes a ``FoundryDataset`` object to
``MDFConnectClient.set_project_block``, which fails to serialise it and silently drops the
Foundry block. Here the submission is built as plain JSON, exactly the document
``MDFConnectClient.get_submission()`` produces (``dc``, ``data_sources``, ``test``,
``update``, ``mdf``, ``projects.foundry``, ``update_metadata_only``), and POSTed to
MDF Connect's ``/submit`` route with a Globus bearer token. Every rejection the service can
return becomes an :class:`MDFSubmissionError` saying what to do.

Login (:func:`login`) uses globus-sdk's ``UserApp`` (present in globus-sdk 3.65 and 4.x);
``no_browser=True`` prints the URL and reads the code from the terminal. Tokens are stored
in a JSON file under ``~/.stembench`` and refreshed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.dataset_publish.foundry_metadata import DatasetMetadata
from stembench.errors import InputError, StembenchError

__all__ = [
    "MDF_CONNECT_RESOURCE_SERVER",
    "MDF_CONNECT_SCOPE",
    "MDF_CONNECT_URLS",
    "NATIVE_CLIENT_ID",
    "MDFSubmissionError",
    "build_submission",
    "login",
    "submit",
]

logger = logging.getLogger(__name__)

MDF_CONNECT_URLS: dict[str, str] = {
    "prod": "https://publish-prod.materialsdatafacility.org",
    "dev": "https://publish-dev.materialsdatafacility.org",
}
MDF_CONNECT_SCOPE = "https://auth.globus.org/scopes/4d5f8e8b-a61d-40d8-bb58-5a3f5d1d200a/connect"
MDF_CONNECT_RESOURCE_SERVER = "mdf_dataset_submission"
"""Resource server name under which Globus Auth returns the MDF Connect token."""
NATIVE_CLIENT_ID = "984464e2-90ab-433d-8145-ac0215d26c8e"
"""Globus native-app client id used by foundry-ml and mdf_toolbox (public, no secret)."""


class MDFSubmissionError(StembenchError):
    """MDF Connect refused a submission or could not be reached.

    Attributes
    ----------
    status : int or None
        The HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def build_submission(metadata: DatasetMetadata, *, data_sources: list[str],
                     test: bool = False, update: bool = False,
                     organization: str = "Foundry") -> dict[str, Any]:
    """Return the MDF Connect submission of a dataset file.

    Parameters
    ----------
    metadata : DatasetMetadata
        From :func:`~stembench.dataset_publish.foundry_metadata.dataset_metadata`.
    data_sources : list of str
        Globus locations of the staged files (the HDF5 file and its manifest), e.g.
        ``globus://<collection>/<folder>/`` or an ``https://app.globus.org/file-manager?...``
        link.
    test : bool
        Submit to MDF's test resources (test search index, test DOI).
    update : bool
        A new version of an already published source name.
    organization : str
        MDF organisation; ``"Foundry"`` makes the dataset visible to foundry-ml.

    Returns
    -------
    dict
        JSON-safe; ``projects.foundry`` is the Foundry block.
    """
    if not data_sources or any(not str(s).strip() for s in data_sources):
        raise InputError(f"data_sources must name where the files are staged, got "
                         f"{data_sources!r}")
    dc = json.loads(json.dumps(metadata.dc))
    dc["publicationYear"] = str(dc["publicationYear"])
    submission = {
        "dc": dc,
        "data_sources": [str(s) for s in data_sources],
        "test": bool(test),
        "update": bool(update),
        "mdf": {"source_name": metadata.source_name, "organization": organization},
        "projects": {"foundry": json.loads(json.dumps(metadata.foundry))},
        "update_metadata_only": False,
    }
    json.dumps(submission, allow_nan=False)
    return submission


def login(*, no_browser: bool = False, token_file: Path | None = None,
          client_id: str = NATIVE_CLIENT_ID) -> Any:
    """Log in to Globus for MDF Connect and return an authorizer.

    Parameters
    ----------
    no_browser : bool
        Print the login URL and read the authorization code from the terminal (for SSH
        sessions and headless machines) instead of opening a browser.
    token_file : Path, optional
        JSON token store; default ``~/.stembench/globus-tokens.json``.
    client_id : str
        Globus native-app client id.

    Returns
    -------
    globus_sdk.authorizers.GlobusAuthorizer
        Refreshing authorizer for the MDF Connect scope.
    """
    globus_sdk = require("globus_sdk", extra="foundry", purpose="Logging in to Globus")
    try:  # globus-sdk 4 names the module token_storage, 3.x tokenstorage
        from globus_sdk.token_storage import JSONTokenStorage
    except ImportError:
        from globus_sdk.tokenstorage import (  # type: ignore[no-redef, unused-ignore]
            JSONTokenStorage,
        )
    path = token_file or Path.home() / ".stembench" / "globus-tokens.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = globus_sdk.GlobusAppConfig(
        login_flow_manager="command-line" if no_browser else "local-server",
        token_storage=JSONTokenStorage(str(path)),
        request_refresh_tokens=True,
    )
    app = globus_sdk.UserApp("stembench", client_id=client_id, config=config,
                             scope_requirements={MDF_CONNECT_RESOURCE_SERVER:
                                                 [MDF_CONNECT_SCOPE]})
    return app.get_authorizer(MDF_CONNECT_RESOURCE_SERVER)


def _service_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or "(empty body)"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(body)


def _rejection(status: int, message: str, submission: dict[str, Any], url: str) -> str:
    source_name = submission.get("mdf", {}).get("source_name")
    if status in (401, 403):
        return (f"MDF Connect refused the credentials (HTTP {status}: {message}). Delete the "
                "token file (default ~/.stembench/globus-tokens.json) and publish again to log "
                "in anew (add --no-browser on a headless machine) with an identity allowed to "
                "submit to MDF")
    if status == 400:
        return f"MDF Connect rejected the submission as invalid (HTTP 400): {message}"
    if status == 409:
        return (f"MDF Connect already has a dataset named {source_name!r} (HTTP 409: "
                f"{message}); pass --update to submit a new version of it")
    if status == 413:
        size = len(json.dumps(submission))
        return (f"MDF Connect refused the submission as too large (HTTP 413, {size} bytes "
                f"of JSON): {message}")
    if status >= 500:
        return (f"MDF Connect failed with a server error (HTTP {status}: {message}); the "
                f"service may be down, retry later ({url})")
    return f"MDF Connect answered HTTP {status}: {message}"


def submit(submission: dict[str, Any], *, authorizer: Any, service: str = "prod",
           timeout: float = 60.0) -> str:
    """POST a submission to MDF Connect and return the ``source_id`` it assigned.

    Parameters
    ----------
    submission : dict
        From :func:`build_submission`.
    authorizer : globus_sdk authorizer
        Gives the ``Authorization`` header (e.g. from :func:`login`).
    service : {"prod", "dev"}
        Which MDF Connect.
    timeout : float
        Seconds to wait for the service.

    Raises
    ------
    MDFSubmissionError
        On 401/403 (credentials), 400 (validation, with the service's message), 409
        (duplicate source name), 413 (too large), 5xx (retry later), any other error
        status, a network failure, or an answer without a ``source_id``.
    """
    import requests

    if service not in MDF_CONNECT_URLS:
        raise InputError(f"service must be one of {sorted(MDF_CONNECT_URLS)}, got {service!r}")
    url = MDF_CONNECT_URLS[service] + "/submit"
    headers = {"Authorization": authorizer.get_authorization_header()}
    try:
        response = requests.post(url, json=submission, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise MDFSubmissionError(f"cannot reach MDF Connect at {url}: {exc}; check the "
                                 "network and retry") from exc
    message = _service_message(response)
    if response.status_code >= 300:
        raise MDFSubmissionError(_rejection(response.status_code, message, submission, url),
                                 status=response.status_code)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or not body.get("success", True) or not body.get("source_id"):
        raise MDFSubmissionError(f"MDF Connect did not accept the submission (HTTP "
                                 f"{response.status_code}): {message}",
                                 status=response.status_code)
    logger.info("MDF Connect accepted %s", body["source_id"])
    return str(body["source_id"])
