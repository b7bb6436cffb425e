"""Globus Auth bearer tokens, checked by token introspection and cached.

A token is accepted when introspection says it is ``active``, its audience (``aud``)
contains this service's client id, its ``scope`` contains the required scope, and its
``exp`` lies in the future. The caller's identity is the introspection ``sub``, with the
linked identities of ``identity_set``: a job belongs to whoever holds its owner in their
identity set. Invalid tokens answer 401 (``invalid_token``), a token without the scope 403
(``insufficient_scope``), as RFC 6750 asks.

No caller can stall the service with tokens: Globus Auth is asked about a token once in
its lifetime (an accepted token's introspection is kept until its ``exp``, a refused one for
as long as its refusal holds: a token never becomes active again); an accepted token is
looked up in the service's logout record again every ``cache_ttl_s`` (a database query on
the verifier's threads, no call to Globus), and a token the service revokes or its holder
logs out of (``POST /api/logout``) is dropped from the caches and refused; the
request path (:meth:`TokenVerifier.verify_async`) introspects on a few threads of the
verifier's own, never the request threads, one introspection per token however many
requests carry it, and answers 503 when Globus Auth has not answered within ``timeout_s``
or too many checks are in flight; one client address may start only a few checks at once
(429 beyond), and room is kept for addresses whose tokens passed before
(:mod:`stembench.service.token_budget`).

Jobs on a Globus Compute endpoint run as their submitter: :meth:`TokenVerifier.grant_compute`
exchanges the caller's token for a Globus Compute token (the dependent-token grant; the
service's scope must declare Globus Compute's scope as a dependent scope; a request makes
it through :meth:`TokenVerifier.call`, on the verifier's own threads) and keeps it for
the worker, encrypted, only while the caller has a live job
(:mod:`stembench.service.credentials`, which also builds the worker's Compute client from
it and the service's configured client credentials, never an interactive login).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from stembench._optional import require
from stembench.client.globus_transport import bounded_transport
from stembench.service.bearer import AuthError, Identity, bearer_token
from stembench.service.token_budget import IntrospectionBudget, client_network

__all__ = ["COMPUTE_RESOURCE_SERVER", "COMPUTE_SCOPE", "AuthError", "Identity",
           "TokenVerifier", "bearer_token", "bounded_auth_client"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_CACHE_SIZE = 4096
_LOGGED_OUT = "token was logged out of this service; log in again"
#: Threads that introspect tokens for unknown addresses (more than one address may hold)
#: and for addresses whose tokens passed before.
_INTROSPECTION_THREADS = 8
_KNOWN_THREADS = 4
#: Other calls to Globus that may be in flight before 503 at once.
_MAX_IN_FLIGHT = 64
#: Threads that make the other calls of requests (dependent-token grants, Compute checks,
#: revocations), so that none runs on a request thread.
_CALL_THREADS = 4
#: Globus Compute's scope and resource server (``globus_sdk.scopes.ComputeScopes``).
COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
COMPUTE_RESOURCE_SERVER = "funcx_service"


def bounded_auth_client(client_id: str, client_secret: str, *, timeout_s: float) -> Any:
    """The service's ``globus_sdk.ConfidentialAppAuthClient``, one attempt per call bounded
    by ``timeout_s``.

    globus_sdk's defaults (60 s per request, up to 5 retries on network errors, 429 and
    5xx; globus_sdk/config/env_vars.py, transport/retry_config.py) would keep a thread busy
    for minutes while Globus Auth hangs. The Retry-After of a 429 is not waited for either.

    Parameters
    ----------
    client_id, client_secret : str
        The service's confidential Globus Auth client.
    timeout_s : float
        Seconds one call may take (the service's introspection timeout).
    """
    globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
    return globus_sdk.ConfidentialAppAuthClient(
        client_id, client_secret, **bounded_transport(timeout_s=timeout_s))


class TokenVerifier:
    """Introspects bearer tokens with Globus Auth and caches the answers.

    Parameters
    ----------
    client_id, client_secret : str
        The service's confidential Globus Auth client.
    required_scope : str
        Scope string every accepted token must carry.
    cache_ttl_s : float
        Seconds an accepted token is reused before it is looked up in the logout record
        again (:attr:`logged_out`); Globus Auth is asked once per token, until its ``exp``.
    timeout_s : float
        Seconds a request waits for an introspection before it is answered 503.
    auth_client : object, optional
        A ready ``globus_sdk.ConfidentialAppAuthClient`` (built from the id and secret when
        omitted).
    """

    def __init__(self, client_id: str, client_secret: str, *, required_scope: str,
                 cache_ttl_s: float = 60.0, timeout_s: float = 5.0,
                 auth_client: Any = None) -> None:
        self.client_id, self.required_scope, self.cache_ttl_s = (
            client_id, required_scope, cache_ttl_s)
        self.timeout_s = timeout_s
        self._client = auth_client or bounded_auth_client(client_id, client_secret,
                                                          timeout_s=timeout_s)
        self._cache: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        #: accepted introspections, kept until the token's exp: (exp, identity)
        self._introspected: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._refused: OrderedDict[str, AuthError] = OrderedDict()
        self._in_flight: dict[str, cf.Future[Identity]] = {}
        self._pool = cf.ThreadPoolExecutor(_INTROSPECTION_THREADS,
                                           thread_name_prefix="introspection")
        self._known_pool = cf.ThreadPoolExecutor(_KNOWN_THREADS,
                                                 thread_name_prefix="introspection-known")
        self._budget = IntrospectionBudget()
        self._calls = cf.ThreadPoolExecutor(_CALL_THREADS, thread_name_prefix="globus-call")
        # revocations nobody waits for get threads of their own: they never delay a request
        self._revocations = cf.ThreadPoolExecutor(2, thread_name_prefix="globus-revoke")
        self._calls_out = 0
        self._lock = threading.Lock()
        #: Whether a token (its SHA-256) was logged out, asked before each introspection
        #: (:class:`~stembench.service.logouts.LogoutRecord`); None: never.
        self.logged_out: Callable[[str], bool] | None = None

    def _cached(self, key: str, now: float) -> Identity | None:
        """The cached identity of a token, or None; raises a cached refusal."""
        with self._lock:
            refused = self._refused.get(key)
            if refused is not None:
                self._refused.move_to_end(key)
                raise refused
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(key)
                return cached[1]
            self._cache.pop(key, None)
        return None

    def _resolve(self, key: str, token: str) -> Identity:
        """Introspect a token and cache the answer (a refusal too, but not an outage); a
        token that :attr:`logged_out` names is refused without asking Globus Auth."""
        now = time.time()
        try:
            if self.logged_out is not None and self.logged_out(key):
                raise AuthError(401, "invalid_token", _LOGGED_OUT)
            with self._lock:
                known = self._introspected.get(key)
            if known is not None and known[0] > now:  # asked in its lifetime already
                expires, identity = known
            else:
                identity, expires = self._check(self._introspect(token), now)
        except AuthError as exc:
            if exc.status in (401, 403):
                with self._lock:
                    self._refused[key] = exc
                    while len(self._refused) > _CACHE_SIZE:
                        self._refused.popitem(last=False)
            raise
        with self._lock:
            if key in self._refused:  # revoked or logged out while it was being checked
                raise self._refused[key]
            self._cache[key] = (min(now + self.cache_ttl_s, expires), identity)
            self._introspected[key] = (expires, identity)
            for cache in (self._cache, self._introspected):
                cache.move_to_end(key)
                while len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
        return identity

    def _flight(self, key: str, token: str, network: str) -> cf.Future[Identity]:
        """The introspection of a token in flight, started now if none is and ``network``
        (the caller's address) is within its budget (:mod:`~stembench.service.token_budget`)."""
        with self._lock:
            running = self._in_flight.get(key)
            if running is not None:
                return running
            known = self._budget.known(network)
            refusal = self._budget.take(network)
            if refusal is not None:
                raise AuthError(refusal[0], "temporarily_unavailable", refusal[1])
            pool = self._known_pool if known else self._pool
            future = pool.submit(self._resolve, key, token)
            self._in_flight[key] = future

        def landed(done: cf.Future[Identity]) -> None:
            with self._lock:
                self._in_flight.pop(key, None)
            self._budget.give(network)
            if not done.cancelled() and done.exception() is None:
                self._budget.passed(network)

        future.add_done_callback(landed)
        return future

    async def verify_async(self, header: str | None, *, client_host: str | None = None) -> Identity:
        """The identity behind an ``Authorization`` header, or :class:`AuthError`; the
        request waits on the event loop, at most ``timeout_s``, while one of the verifier's
        threads asks Globus Auth (``client_host``, the request's client address, counts
        the check against that address's budget: 429 beyond it)."""
        token = bearer_token(header)
        key = hashlib.sha256(token.encode()).hexdigest()
        network = client_network(client_host)
        cached = self._cached(key, time.time())
        if cached is not None:
            self._budget.passed(network)
            return cached
        waiting = asyncio.shield(asyncio.wrap_future(self._flight(key, token, network)))
        try:
            return await asyncio.wait_for(waiting, self.timeout_s)
        except TimeoutError as exc:
            raise AuthError(503, "temporarily_unavailable", "Globus Auth did not answer the "
                            f"token check within {self.timeout_s:g} s; try again later") from exc

    def _introspect(self, token: str) -> dict[str, Any]:
        globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
        try:
            response = self._client.oauth2_token_introspect(token, include="identity_set")
        except globus_sdk.GlobusAPIError as exc:
            raise AuthError(503, "temporarily_unavailable", "Globus Auth refused the token "
                            f"introspection (HTTP {exc.http_status}); try again later") from exc
        except globus_sdk.NetworkError as exc:
            raise AuthError(503, "temporarily_unavailable", "Globus Auth cannot be reached "
                            "to check the token; try again later") from exc
        return dict(response.data) if hasattr(response, "data") else dict(response)

    def _check(self, data: dict[str, Any], now: float) -> tuple[Identity, float]:
        if not data.get("active"):
            raise AuthError(401, "invalid_token", "token is not active: it expired or was "
                            "revoked; log in again")
        expires = float(data.get("exp") or 0)
        if expires <= now:
            raise AuthError(401, "invalid_token", "token expired; log in again")
        audience = data.get("aud") or []
        audience = [audience] if isinstance(audience, str) else list(audience)
        if self.client_id not in audience:
            raise AuthError(401, "invalid_token", "token was not issued for this service: its "
                            f"audience {sorted(audience)} lacks client id {self.client_id}")
        scopes = str(data.get("scope") or "").split()
        if self.required_scope not in scopes:
            raise AuthError(403, "insufficient_scope", "token lacks the required scope "
                            f"{self.required_scope!r}; log in again requesting it")
        sub = data.get("sub")
        if not sub:
            raise AuthError(401, "invalid_token", "token introspection returned no identity")
        linked = tuple(str(i) for i in data.get("identity_set") or ())
        return Identity(sub=str(sub), username=data.get("username"), identity_set=linked,
                        expires_at=expires), expires

    def grant_compute(self, header: str | None, caller: Identity) -> dict[str, Any]:
        """A new Globus Compute token for ``caller`` (dependent-token grant): the
        ``access_token``, ``refresh_token`` and ``expires_at_seconds`` globus_sdk returns.
        The caller keeps it (:mod:`stembench.service.credentials`) or revokes it.

        Raises
        ------
        AuthError
            403 when Globus Auth gives no Compute token (the service's scope lacks the
            dependency, or the user has not consented), 503 when it cannot be reached.
        """
        globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
        try:
            response = self._client.oauth2_get_dependent_tokens(
                bearer_token(header), scope=COMPUTE_SCOPE, refresh_tokens=True)
        except globus_sdk.GlobusAPIError as exc:
            status = 403 if exc.http_status in (400, 401, 403) else 503
            raise AuthError(status, "insufficient_scope" if status == 403 else
                            "temporarily_unavailable", "Globus Auth refused a Globus Compute "
                            f"token for you (HTTP {exc.http_status}); log in again consenting "
                            "to this service") from exc
        except globus_sdk.NetworkError as exc:
            raise AuthError(503, "temporarily_unavailable", "Globus Auth cannot be reached "
                            "to obtain your Globus Compute token; try again later") from exc
        tokens = response.by_resource_server.get(COMPUTE_RESOURCE_SERVER)
        if not tokens or not tokens.get("refresh_token"):
            raise AuthError(403, "insufficient_scope", "no Globus Compute token could be "
                            "obtained for you: this service's scope must declare Globus "
                            f"Compute's scope {COMPUTE_SCOPE} as a dependent scope")
        return dict(tokens)

    async def call(self, service: str, function: Callable[..., T], *args: Any,
                   late_result: Callable[[T], object] | None = None) -> T:
        """``function(*args)`` (a call to ``service``) on the verifier's own threads while the
        request waits on the event loop, at most ``timeout_s``.

        Parameters
        ----------
        service : str
            What is called, for the message ("Globus Auth").
        function : callable
            The blocking call (one attempt, bounded by ``timeout_s`` itself).
        *args
            Its arguments.
        late_result : callable, optional
            Given the result when it lands after the request gave up (to revoke tokens that
            nobody will keep).

        Raises
        ------
        AuthError
            503 when ``function`` has not answered within ``timeout_s`` or too many calls are
            out; what ``function`` raises otherwise.
        """
        with self._lock:
            if self._calls_out >= _MAX_IN_FLIGHT:
                raise AuthError(503, "temporarily_unavailable", "too many calls are waiting "
                                "for Globus; try again later")
            self._calls_out += 1
        future = self._calls.submit(function, *args)

        def landed(_: cf.Future[T]) -> None:
            with self._lock:
                self._calls_out -= 1

        future.add_done_callback(landed)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                          self.timeout_s)
        except TimeoutError as exc:
            if late_result is not None:
                future.add_done_callback(lambda done: late_result(done.result()) if not
                                         done.cancelled() and done.exception() is None
                                         else None)
            raise AuthError(503, "temporarily_unavailable", f"{service} did not answer within "
                            f"{self.timeout_s:g} s; try again later") from exc

    def revoke_later(self, tokens: dict[str, Any]) -> None:
        """Revoke a grant's refresh and access tokens on the verifier's threads (one attempt
        each, bounded by ``timeout_s``; a failure is logged without the token)."""
        def revoke_both() -> None:
            globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
            for name in ("refresh_token", "access_token"):
                try:
                    self.revoke(tokens[name])
                except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
                    log.warning("revoking a Globus Compute %s failed (%s)",
                                name.replace("_", " "), type(exc).__name__)

        self._revocations.submit(revoke_both)

    def forget(self, token: str, reason: str) -> None:
        """Accept ``token`` no more: its cached acceptance is dropped and a refusal (401,
        ``reason``) cached instead, as a revoked token never becomes active again."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            self._cache.pop(key, None)
            self._introspected.pop(key, None)
            self._refused[key] = AuthError(401, "invalid_token", reason)
            while len(self._refused) > _CACHE_SIZE:
                self._refused.popitem(last=False)

    def revoke(self, token: str) -> None:
        """Revoke ``token`` with Globus Auth (the service's own client made it) and
        :meth:`forget` it."""
        try:
            self._client.oauth2_revoke_token(token)
        finally:
            self.forget(token, "token was revoked; log in again")
