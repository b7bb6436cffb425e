"""Submitting a job that runs on a Globus Compute endpoint as its submitter.

The caller's one kept Compute token is used, or a new one is obtained with the
dependent-token grant; the job's endpoint options are checked against the schema its
endpoint publishes, read with that token. Both calls to Globus run on the token verifier's
own threads while the request waits on the event loop, at most the introspection timeout
(503 after), so a hung Globus Auth or Compute holds no request thread. Tokens minted for a
request that is refused, gives up, or finds one kept meanwhile are revoked in the
background; a user never has more than one kept (:mod:`stembench.service.credentials`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from stembench.service.auth import AuthError, Identity
from stembench.service.credentials import CredentialStore, bounded_compute_client
from stembench.service.models import Job
from stembench.service.schemas import SubmitIn

__all__ = ["delegated_job"]


async def delegated_job(request: Request, caller: Identity, body: SubmitIn,
                        create: Callable[[], tuple[Job, bool]]) -> tuple[Job, bool]:
    """Queue a job (``create``) to run with the caller's Compute token, kept for it.

    Parameters
    ----------
    request : fastapi.Request
        The submission (its app's settings and token verifier, its bearer token).
    caller : Identity
        Who submits: the owner of the job and of the kept token.
    body : SubmitIn
        The submission, with its endpoint and endpoint options.
    create : callable
        Queues the job (``store.create_job`` for this submission): the job and whether it
        is new.

    Returns
    -------
    (Job, bool)
        As ``create`` returns them.

    Raises
    ------
    AuthError
        403 when Globus Auth gives no Compute token, 503 when Globus does not answer in time.
    HTTPException
        422 when the endpoint's published schema refuses the job's endpoint options.
    """
    settings, verifier = request.app.state.settings, request.app.state.verifier
    credentials: CredentialStore = settings.credential_store()
    kept = await run_in_threadpool(_kept, credentials, caller.sub)
    tokens = kept or await verifier.call(
        "Globus Auth", verifier.grant_compute, request.headers.get("authorization"), caller,
        late_result=verifier.revoke_later)
    minted = None if kept else tokens
    try:
        refusal = await verifier.call("Globus Compute", _endpoint_options_refusal, settings,
                                      body, tokens["access_token"]
                                      ) if body.endpoint_options else None
    except AuthError:
        if minted:
            verifier.revoke_later(minted)
        raise
    if refusal is not None:
        if minted:  # nothing is kept for a refused request
            verifier.revoke_later(minted)
        raise HTTPException(422, refusal)
    try:
        job, created, surplus = await run_in_threadpool(_keep_and_create, credentials,
                                                        caller.sub, minted, create)
    except Exception:
        if minted:  # nothing was kept for a submission that failed
            verifier.revoke_later(minted)
        raise
    if surplus:
        verifier.revoke_later(surplus)
    return job, created


def _kept(credentials: CredentialStore, owner: str) -> dict[str, Any] | None:
    with credentials.locked(owner):
        return credentials.load(owner) if credentials.holds(owner) else None


def _keep_and_create(credentials: CredentialStore, owner: str, minted: dict[str, Any] | None,
                     create: Callable[[], tuple[Job, bool]],
                     ) -> tuple[Job, bool, dict[str, Any] | None]:
    """Keep the minted token and queue the job, under the owner's lock (the worker releases
    a token under the same lock); the minted token is surplus, to be revoked, when one was
    kept meanwhile or when the submission needs none: it returned a finished job, or a
    linked identity's job, which runs with that identity's token. Saved before the job is
    queued (a worker may claim it at once), deleted again if queueing fails."""
    with credentials.locked(owner):
        held = credentials.holds(owner)
        if minted is None and not held:
            raise AuthError(503, "temporarily_unavailable", "your Globus Compute token was "
                            "released as your last job ended meanwhile; submit again")
        keeping = minted is not None and not held
        if keeping:
            credentials.save(owner, minted)  # type: ignore[arg-type]
        try:
            job, created = create()
        except BaseException:
            if keeping:
                credentials.forget(owner)
            raise
        if keeping and (job.owner != owner or job.status not in ("queued", "running")):
            credentials.forget(owner)  # no job of this identity needs it
            keeping = False
    return job, created, None if keeping else minted


def _endpoint_options_refusal(settings: Any, body: SubmitIn, access_token: str) -> str | None:
    """Why the job's endpoint options are refused by the schema its endpoint publishes.

    The schema is ``settings.compute_endpoint_schema`` where set, else the one the endpoint
    publishes, read with the caller's own Compute token (``Client.get_endpoint_metadata``,
    one attempt bounded by the introspection timeout); an endpoint that publishes no schema
    checks the options itself when the job runs.
    """
    from stembench._optional import require
    from stembench.client.remote_endpoints import endpoint_options
    from stembench.errors import InputError

    globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
    endpoint = body.endpoint_id or settings.default_endpoint_id
    client = bounded_compute_client(globus_sdk.AccessTokenAuthorizer(access_token),
                                    timeout_s=settings.introspection_timeout_s)
    try:
        endpoint_options(client, endpoint, dict(body.endpoint_options),
                         schema=settings.compute_endpoint_schema)
    except InputError as exc:
        return str(exc)
    return None
