"""Globus Auth bearer tokens, checked by token introspection and cached briefly.

A token is accepted when introspection says it is ``active``, its audience (``aud``)
contains this service's client id, its ``scope`` contains the required scope, and its
``exp`` lies in the future. The caller's identity is the introspection ``sub``.
Invalid tokens answer 401 (``invalid_token``), a token without the scope 403
(``insufficient_scope``), as RFC 6750 asks.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from stembench._optional import require
from stembench.errors import StembenchError

__all__ = ["AuthError", "Identity", "TokenVerifier", "bearer_token"]

_CACHE_SIZE = 4096


class AuthError(StembenchError):
    """A request's credentials are missing or not good enough.

    Attributes
    ----------
    status : int
        401, 403 or 503.
    code : str
        RFC 6750 error code (``invalid_request``, ``invalid_token``, ``insufficient_scope``)
        or ``temporarily_unavailable``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Identity:
    """Who made a request: the Globus identity ``sub`` and a display name."""

    sub: str
    username: str | None = None


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; :class:`AuthError` otherwise."""
    if header is None or not header.strip():
        raise AuthError(401, "invalid_request", "missing Authorization header: send "
                        "'Authorization: Bearer <Globus access token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > 4096:
        raise AuthError(401, "invalid_request", "malformed Authorization header: expected "
                        "'Bearer <token>' (one token, no spaces)")
    return token


class TokenVerifier:
    """Introspects bearer tokens with Globus Auth and caches accepted ones.

    Parameters
    ----------
    client_id, client_secret : str
        The service's confidential Globus Auth client.
    required_scope : str
        Scope string every accepted token must carry.
    cache_ttl_s : float
        Seconds an accepted token is reused without asking Globus again (never past ``exp``).
    auth_client : object, optional
        A ready ``globus_sdk.ConfidentialAppAuthClient`` (built from the id and secret when
        omitted).
    """

    def __init__(self, client_id: str, client_secret: str, *, required_scope: str,
                 cache_ttl_s: float = 60.0, auth_client: Any = None) -> None:
        self.client_id, self.required_scope, self.cache_ttl_s = (
            client_id, required_scope, cache_ttl_s)
        if auth_client is None:
            globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
            auth_client = globus_sdk.ConfidentialAppAuthClient(client_id, client_secret)
        self._client = auth_client
        self._cache: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, header: str | None) -> Identity:
        """The identity behind an ``Authorization`` header, or :class:`AuthError`."""
        token = bearer_token(header)
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(key)
                return cached[1]
            self._cache.pop(key, None)
        data = self._introspect(token)
        identity, expires = self._check(data, now)
        with self._lock:
            self._cache[key] = (min(now + self.cache_ttl_s, expires), identity)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return identity

    def _introspect(self, token: str) -> dict[str, Any]:
        globus_sdk = require("globus_sdk", extra="service", purpose="Globus Auth")
        try:
            response = self._client.oauth2_token_introspect(token)
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
        return Identity(sub=str(sub), username=data.get("username")), expires
