"""Stand-in for Globus Auth: identities, their tokens, and the OAuth2 routes the stack uses.

Only what the installed code calls is served (paths relative to
``GLOBUS_SDK_SERVICE_URL_AUTH``, which globus_sdk reads in
``globus_sdk/config/environments.py:77-84``):

* ``GET /v2/oauth2/userinfo``: ``AuthClient.userinfo`` (globus_sdk/services/auth/client/
  service_client.py), which the core endpoint calls to learn whose start requests it
  honours (globus_compute_endpoint/endpoint/core_endpoint.py:574-597): ``sub``,
  ``preferred_username`` and ``identity_set`` (a list of ``{"sub", "username"}``).
* ``POST /v2/oauth2/token`` with ``grant_type=refresh_token``: what
  ``RefreshTokenAuthorizer`` sends when an access token expires
  (globus_sdk/services/auth/client/base_login_client.py, ``oauth2_refresh_token``);
  the answer has the fields of ``OAuthTokenResponse`` (``access_token``, ``expires_in``,
  ``resource_server``, ``scope``, ``token_type``, ``refresh_token``, ``other_tokens``).
* ``POST /v2/oauth2/token/revoke``: ``oauth2_revoke_token`` (same module).
* ``POST /v2/oauth2/token/introspect``: ``ConfidentialAppAuthClient.oauth2_token_introspect``
  (the service's token check): the fields of ``globus_sdk.testing``'s auth
  ``oauth2_token_introspect`` response, ``aud`` the token's resource server (a service's
  client id), and ``identity_set`` when asked for; ``{"active": false}`` for any other token.
* ``POST /v2/oauth2/token`` with ``grant_type=urn:globus:auth:grant_type:dependent_token``:
  ``oauth2_get_dependent_tokens`` (the service's Compute token): one token document per
  scope :attr:`AuthState.dependent_scopes` declares for the token's resource server, with a
  refresh token when ``access_type=offline``, as in ``globus_sdk.testing``'s
  ``oauth2_get_dependent_tokens`` responses.

Tokens are opaque random strings; :class:`AuthState` maps each to its identity, and
the web-service stand-in asks it who sent a request (401 for an unknown or revoked
token, as Globus services answer).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["AuthState", "Identity", "TokenGrant"]

#: ``grant_type`` of the dependent-token grant (globus_sdk's ``oauth2_get_dependent_tokens``).
DEPENDENT_GRANT = "urn:globus:auth:grant_type:dependent_token"
#: How long an access token lives (seconds), like Globus Auth's 48 hours.
ACCESS_TOKEN_LIFETIME_S = 172800


@dataclass(frozen=True)
class Identity:
    """A Globus identity: ``sub`` (UUID) and ``username`` (``name@domain``)."""

    sub: str
    username: str

    def userinfo(self) -> dict[str, Any]:
        """The identity as ``/v2/oauth2/userinfo`` describes it."""
        return {"sub": self.sub, "preferred_username": self.username,
                "name": self.username.split("@")[0], "email": None,
                "identity_provider": str(uuid.uuid5(uuid.NAMESPACE_DNS,
                                                    self.username.split("@")[-1])),
                "identity_set": [{"sub": self.sub, "username": self.username,
                                  "name": self.username.split("@")[0]}]}

    def resource(self) -> dict[str, Any]:
        """The identity as Globus Auth's identity resource describes it.

        The fields of ``globus_sdk.testing``'s auth ``get_identities`` documents (``id``,
        ``username``, ``status`` "used"...) and ``sub``: the web service sends these as a
        start command's ``globus_identity_set``; a single-user endpoint reads ``sub``, an
        identity-mapping one maps ``username`` of records whose ``status`` is "used"
        (globus_identity_mapping/mappers/expression.py, ``map_identities``).
        """
        info = self.userinfo()
        return {"id": self.sub, "sub": self.sub, "username": self.username,
                "name": info["name"], "email": info["email"],
                "identity_provider": info["identity_provider"], "organization": None,
                "status": "used"}


@dataclass
class TokenGrant:
    """One access token and the refresh token that renews it, for one resource server."""

    identity: Identity
    resource_server: str
    scope: str
    access_token: str
    refresh_token: str
    expires_at: int


@dataclass
class AuthState:
    """Identities and the tokens issued to them; thread-safe."""

    identities: dict[str, Identity] = field(default_factory=dict)
    _access: dict[str, TokenGrant] = field(default_factory=dict)
    _refresh: dict[str, TokenGrant] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    #: resource server -> the (resource server, scope) pairs its scope depends on
    dependent_scopes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def identity(self, username: str) -> Identity:
        """The identity named ``username`` (created on first use)."""
        with self._lock:
            if username not in self.identities:
                self.identities[username] = Identity(str(uuid.uuid4()), username)
            return self.identities[username]

    def grant(self, identity: Identity, resource_server: str, scope: str) -> TokenGrant:
        """Issue a new access and refresh token for ``identity`` (as a login would)."""
        token = TokenGrant(identity, resource_server, scope, os.urandom(16).hex(),
                           os.urandom(16).hex(), int(time.time()) + ACCESS_TOKEN_LIFETIME_S)
        with self._lock:
            self._access[token.access_token] = token
            self._refresh[token.refresh_token] = token
        return token

    def who(self, access_token: str, *, resource_server: str | None = None) -> Identity | None:
        """The identity an unexpired, unrevoked access token belongs to, else ``None``.

        With ``resource_server``, a token issued for another resource server is ``None``
        too (a service accepts only tokens issued for it).
        """
        with self._lock:
            token = self._access.get(access_token)
        if token is None or token.expires_at < time.time():
            return None
        if resource_server is not None and token.resource_server != resource_server:
            return None
        return token.identity

    def live_refresh_tokens(self, identity: Identity | None = None) -> list[str]:
        """Refresh tokens not revoked (of ``identity``, or of everyone)."""
        with self._lock:
            return [t for t, g in self._refresh.items()
                    if identity is None or g.identity == identity]

    # routes -------------------------------------------------------------------------

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes
              ) -> tuple[int, Any]:
        """Answer one request: ``(HTTP status, JSON document)``."""
        if method == "GET" and path == "/v2/oauth2/userinfo":
            identity = self.who(_bearer(headers))
            if identity is None:
                return 401, _error(401, "UNAUTHORIZED", "invalid or expired token")
            return 200, identity.userinfo()
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if method == "POST" and path == "/v2/oauth2/token/introspect":
            return 200, self._introspect(form)
        if method == "POST" and path == "/v2/oauth2/token" and form.get(
                "grant_type") == DEPENDENT_GRANT:
            return self._dependent_grant(form)
        if method == "POST" and path == "/v2/oauth2/token":
            return self._refresh_grant(form)
        if method == "POST" and path == "/v2/oauth2/token/revoke":
            self._revoke(form.get("token", ""))
            return 200, {"active": False}
        return 404, _error(404, "NOT_FOUND", f"no route {method} {path}")

    def _live(self, access_token: str) -> TokenGrant | None:
        with self._lock:
            grant = self._access.get(access_token)
        return grant if grant is not None and grant.expires_at >= time.time() else None

    def _introspect(self, form: dict[str, str]) -> dict[str, Any]:
        grant = self._live(form.get("token", ""))
        if grant is None:
            return {"active": False}
        doc = {"active": True, "token_type": "Bearer", "scope": grant.scope,
               "client_id": grant.resource_server, "username": grant.identity.username,
               "email": grant.identity.username, "exp": grant.expires_at,
               "iat": grant.expires_at - ACCESS_TOKEN_LIFETIME_S,
               "nbf": grant.expires_at - ACCESS_TOKEN_LIFETIME_S, "sub": grant.identity.sub,
               "aud": [grant.resource_server], "iss": "https://auth.globus.org"}
        if "identity_set" in form.get("include", ""):
            doc["identity_set"] = [grant.identity.sub]
        return doc

    def _dependent_grant(self, form: dict[str, str]) -> tuple[int, Any]:
        grant = self._live(form.get("token", ""))
        if grant is None:
            return 401, {"error": "invalid_grant"}
        offline = form.get("access_type") == "offline"
        docs = []
        for resource_server, scope in self.dependent_scopes.get(grant.resource_server, []):
            new = self.grant(grant.identity, resource_server, scope)
            doc = {"scope": scope, "access_token": new.access_token, "token_type": "bearer",
                   "expires_in": ACCESS_TOKEN_LIFETIME_S, "resource_server": resource_server}
            if offline:
                doc["refresh_token"] = new.refresh_token
            else:
                with self._lock:
                    self._refresh.pop(new.refresh_token, None)
            docs.append(doc)
        return 200, docs

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            old = self._refresh.get(form.get("refresh_token", ""))
        if old is None:
            return 401, {"error": "invalid_grant"}
        new = TokenGrant(old.identity, old.resource_server, old.scope, os.urandom(16).hex(),
                         old.refresh_token, int(time.time()) + ACCESS_TOKEN_LIFETIME_S)
        with self._lock:
            self._access[new.access_token] = new
        return 200, {"access_token": new.access_token, "expires_in": ACCESS_TOKEN_LIFETIME_S,
                     "resource_server": new.resource_server, "scope": new.scope,
                     "token_type": "Bearer", "refresh_token": new.refresh_token,
                     "other_tokens": []}

    def _revoke(self, token: str) -> None:
        """Revoke an access token alone, or a refresh token and the access tokens it issued.

        RFC 7009, section 2.1; revoking an access token leaves its refresh token usable.
        """
        with self._lock:
            grant = self._refresh.pop(token, None)
            if grant is None:
                if self._access.pop(token, None) is not None:
                    self.revoked.append(token)
                return
            self.revoked.append(token)
            for access, other in list(self._access.items()):
                if other.refresh_token == grant.refresh_token:
                    del self._access[access]


def _bearer(headers: dict[str, str]) -> str:
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    """A Globus API error document (``GlobusAPIError`` reads ``code`` and ``message``)."""
    return {"code": code, "message": message, "http_status": status}
