"""The Globus Compute credentials the service holds for its users, and only while needed.

A job on a Globus Compute endpoint runs as its submitter, with a Compute token obtained for
them through the dependent-token grant (:meth:`stembench.service.auth.TokenVerifier.
grant_compute`). Its refresh token lets whoever holds it (with this service's client
secret) act as the user on Globus Compute: register functions and run them on **every**
endpoint the user may use, not only the ones this service's operator allowed, until it is
revoked. So the service:

* keeps at most one per user: one file per identity, reused by the user's next job;
* keeps it only while one of the user's jobs is queued or running: when the last one ends
  (done, failed or cancelled) the job worker revokes it with Globus Auth (one attempt per
  token, bounded by the introspection timeout) and deletes its file, never a request thread;
* stores it encrypted (Fernet, with the ``credentials_key`` of the service's settings) in an
  owner-only file, written through a temporary file of its own, so concurrent writers never
  share a name;
* never logs it, and uses it only for the endpoints the operator allowed (the worker
  refuses any other).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.atomic import AtomicPath
from stembench.client.globus_transport import bounded_transport
from stembench.service.auth import COMPUTE_RESOURCE_SERVER, AuthError

__all__ = ["CredentialStore", "bounded_compute_client", "compute_client_for",
           "release_credentials"]

log = logging.getLogger(__name__)
_KEPT = ("access_token", "refresh_token", "expires_at_seconds")


class CredentialStore:
    """Users' delegated Globus Compute tokens, encrypted at rest, one file per user.

    Parameters
    ----------
    folder : Path
        Where the files live (created owner-only).
    key : str
        A Fernet key (the service's ``credentials_key`` setting).
    """

    def __init__(self, folder: Path, key: str) -> None:
        fernet = require("cryptography.fernet", extra="service", purpose="Stored credentials")
        self.folder = folder
        self._fernet = fernet.Fernet(key.encode())

    def _stem(self, owner: str) -> Path:
        return self.folder / hashlib.sha256(owner.encode()).hexdigest()

    def path(self, owner: str) -> Path:
        """The encrypted token file of ``owner``."""
        return self._stem(owner).with_suffix(".token")

    @contextmanager
    def locked(self, owner: str) -> Iterator[None]:
        """Hold ``owner``'s lock (across processes): deciding to keep or drop is atomic."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self._stem(owner).with_suffix(".lock"),
                             os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def holds(self, owner: str) -> bool:
        """True when a token is kept for ``owner``."""
        return self.path(owner).is_file()

    def save(self, owner: str, tokens: dict[str, Any]) -> None:
        """Keep ``tokens`` (a ``by_resource_server`` entry) for ``owner``, encrypted."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        kept = {"owner": owner, **{k: tokens[k] for k in _KEPT}}
        secret = self._fernet.encrypt(json.dumps(kept).encode())
        with AtomicPath(self.path(owner)) as partial:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secret)

    def load(self, owner: str) -> dict[str, Any]:
        """The tokens kept for ``owner``; :class:`AuthError` when none can be read."""
        crypto = require("cryptography.fernet", extra="service", purpose="Stored credentials")
        try:
            data = json.loads(self._fernet.decrypt(self.path(owner).read_bytes()))
        except (OSError, ValueError, crypto.InvalidToken):
            raise AuthError(403, "invalid_token", f"no usable Globus Compute token kept for "
                            f"{owner}; submit the job again") from None
        return dict(data)

    def owners(self) -> list[str]:
        """The owners whose tokens are kept (files that cannot be read are skipped)."""
        crypto = require("cryptography.fernet", extra="service", purpose="Stored credentials")
        found = []
        for path in sorted(self.folder.glob("*.token")):
            try:
                found.append(str(json.loads(self._fernet.decrypt(path.read_bytes()))["owner"]))
            except (OSError, ValueError, KeyError, crypto.InvalidToken):
                continue
        return found

    def forget(self, owner: str) -> None:
        """Delete ``owner``'s kept tokens without revoking them (the caller revokes them)."""
        self.path(owner).unlink(missing_ok=True)

    def discard(self, owner: str, revoke: Callable[[str], object]) -> bool:
        """Revoke ``owner``'s tokens with Globus Auth and delete them; False if none kept.

        ``revoke`` is the service client's ``oauth2_revoke_token`` (globus_sdk's
        ``ConfidentialAppAuthClient``, POST /v2/oauth2/token/revoke).

        A revocation Globus Auth does not confirm is logged (without the token) and the
        file is deleted all the same: the service never keeps a token past its jobs.
        """
        try:
            kept = self.load(owner)
        except AuthError:
            self.forget(owner)
            return False
        globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
        for name in ("refresh_token", "access_token"):
            try:
                revoke(kept[name])
            except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
                log.warning("revoking the %s kept for %s failed (%s); deleted anyway",
                            name.replace("_", " "), owner, type(exc).__name__)
        self.forget(owner)
        return True


def release_credentials(settings: Any, session: Any, owner: str,
                        revoke: Callable[[str], object]) -> bool:
    """Revoke and delete ``owner``'s kept token unless a job of theirs still needs it.

    Called by the worker whenever one of ``owner``'s jobs ends and, for every kept token,
    while it waits for work (a job cancelled while queued never reaches it otherwise): no
    request thread waits on Globus Auth. True when a token was discarded.

    Parameters
    ----------
    settings : ServiceSettings
        The service settings (their credential store).
    session : sqlalchemy.orm.Session
        A database session, to see whether ``owner`` still has live jobs.
    owner : str
        The user (Globus identity ``sub``) whose token may be released.
    revoke : callable
        Revokes a token at Globus Auth, given the token.
    """
    from stembench.service.store import has_live_jobs

    credentials = settings.credential_store()
    with credentials.locked(owner):
        session.expire_all()  # see jobs other sessions ended or created meanwhile
        if has_live_jobs(session, owner):
            return False
        return credentials.discard(owner, revoke)


def compute_client_for(client_id: str, client_secret: str, store: CredentialStore, owner: str,
                       *, timeout_s: float, max_retries: int = 0) -> Any:
    """A ``globus_compute_sdk.Client`` acting as ``owner``, from their kept tokens.

    Parameters
    ----------
    client_id, client_secret : str
        The service's confidential client (from configuration), which refreshes the token.
    store : CredentialStore
        Where :meth:`~stembench.service.auth.TokenVerifier.grant_compute` kept the tokens;
        a refreshed token is kept there again, encrypted, under ``owner``'s lock and only
        while the token kept for them is still the one refreshed (one released meanwhile
        is not recreated, a newer one kept meanwhile is not overwritten).
    owner : str
        The job's submitter (identity id).
    timeout_s : float
        Seconds one call to the Globus Compute web service may take.
    max_retries : int, optional
        Attempts after the first of a call that fails; default 0.

    Raises
    ------
    AuthError
        No tokens were kept for ``owner`` (the job must be submitted again).
    """
    globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
    kept = store.load(owner)

    used = {"refresh_token": kept["refresh_token"]}  # what this client refreshes with

    def keep(response: Any) -> None:  # under the lock the worker releases tokens with
        tokens = response.by_resource_server[COMPUTE_RESOURCE_SERVER]
        with store.locked(owner):  # not recreated once released, nor over a newer grant
            if store.holds(owner) and (
                    store.load(owner).get("refresh_token") == used["refresh_token"]):
                store.save(owner, tokens)
        used["refresh_token"] = tokens.get("refresh_token") or used["refresh_token"]

    authorizer = globus_sdk.RefreshTokenAuthorizer(
        kept["refresh_token"], globus_sdk.ConfidentialAppAuthClient(client_id, client_secret),
        access_token=kept["access_token"], expires_at=kept["expires_at_seconds"],
        on_refresh=keep)
    return bounded_compute_client(authorizer, timeout_s=timeout_s, max_retries=max_retries)


def bounded_compute_client(authorizer: Any, *, timeout_s: float, max_retries: int = 0) -> Any:
    """A ``globus_compute_sdk.Client`` whose calls to the Compute web service make
    ``max_retries + 1`` attempts at most, each bounded by ``timeout_s``.

    globus_compute_sdk builds its web clients (``_ComputeWebClient``: globus_sdk's
    ``ComputeClientV2`` and ``V3``) with globus_sdk's default transport, 60 s a request and
    up to 5 retries, and takes no transport of its own; the client is built here without
    its version check, and its web clients are built again with a bounded transport.

    Parameters
    ----------
    authorizer : globus_sdk.authorizers.GlobusAuthorizer
        Whose Compute token the calls carry.
    timeout_s : float
        Seconds one request may take.
    max_retries : int, optional
        Attempts after the first of a request that fails; default 0.
    """
    sdk = require("globus_compute_sdk", extra="compute", purpose="Jobs on Compute endpoints")
    from globus_compute_sdk.sdk import client as sdk_client

    client = sdk.Client(authorizer=authorizer, do_version_check=False)
    if not hasattr(client, "_compute_web_client"):  # a globus_compute_sdk this was not read for
        raise RuntimeError("globus_compute_sdk.Client keeps no _compute_web_client: this "
                           "version cannot be given a bounded transport")
    client._compute_web_client = sdk_client._ComputeWebClient(
        base_url=client.web_service_address, authorizer=authorizer,
        **bounded_transport(timeout_s=timeout_s, max_retries=max_retries))
    return client
