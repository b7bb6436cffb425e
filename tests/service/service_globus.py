"""Globus Auth as the service's delegation uses it, mocked with ``responses`` in the shapes
``globus_sdk`` parses (introspection with identity sets, the dependent-token grant,
revocation), and a service app that runs jobs on Globus Compute (service tests)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import responses
from service_helpers import CLIENT_ID, INTROSPECT_URL, SCOPE, make_settings

from stembench.service.auth import COMPUTE_SCOPE

TOKEN_URL = "https://auth.globus.org/v2/oauth2/token"
REVOKE_URL = "https://auth.globus.org/v2/oauth2/token/revoke"
KEY = "9h7-mJZ0t1lU4bVh0Xw0sD2o1gqZ3mQ8a6E5rB4yC2k="  # a Fernet key (32 bytes, base64)
ALLOWED = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e001"
OTHER = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e002"
FUNCTION = "6c7f6a46-92e2-4e4e-b0a6-7a56e2d1e0f0"
ALICE, ALICE_ORCID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "alice")), str(
    uuid.uuid5(uuid.NAMESPACE_DNS, "alice-orcid"))


def _introspection(token: str) -> dict[str, Any]:
    subject = {"alice-token": ALICE, "orcid-token": ALICE_ORCID}.get(token)
    if subject is None:
        return {"active": False}
    return {"active": True, "sub": subject, "username": f"{token}@example.org",
            "scope": f"openid {SCOPE}", "aud": [CLIENT_ID], "exp": int(time.time()) + 3600,
            "identity_set": [ALICE, ALICE_ORCID]}


def dependent_tokens(compute: bool, serial: int = 1) -> list[dict[str, Any]]:
    tokens = [{"scope": "urn:globus:auth:scope:groups.api.globus.org:all",
               "access_token": "groupsToken", "token_type": "bearer", "expires_in": 3600,
               "resource_server": "groups.api.globus.org", "refresh_token": "groupsRefresh"}]
    if compute:
        tokens.append({"scope": COMPUTE_SCOPE, "access_token": f"aliceComputeToken-{serial}",
                       "refresh_token": f"aliceComputeRefresh-{serial}", "token_type": "bearer",
                       "expires_in": 3600, "resource_server": "funcx_service"})
    return tokens


class FakeAuth:
    """Globus Auth: introspection with identity sets, the dependent-token grant, revocation.

    Each grant mints new tokens (``aliceComputeRefresh-1``, ``-2``...), as Globus Auth does.
    """

    def __init__(self, rsps: responses.RequestsMock, *, compute: bool = True) -> None:
        self.grants: list[dict[str, list[str]]] = []
        self.introspections: list[dict[str, list[str]]] = []
        self.revoked: list[str] = []
        self.compute = compute
        rsps.add_callback(responses.POST, INTROSPECT_URL, callback=self._introspect)
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self._token)
        rsps.add_callback(responses.POST, REVOKE_URL, callback=self._revoke)

    def _revoke(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.revoked.append(parse_qs(request.body)["token"][0])
        return 200, {}, json.dumps({"active": False})

    def _introspect(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body)
        self.introspections.append(form)
        return 200, {}, json.dumps(_introspection(form["token"][0]))

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body)
        self.grants.append(form)
        return 200, {}, json.dumps(dependent_tokens(self.compute, len(self.grants)))


def globus_app(tmp_path: Path, database_url: str | None = None, **changes: Any) -> Any:
    """A TestClient of a service running jobs on Globus Compute (SQLite unless given)."""
    from fastapi.testclient import TestClient

    from stembench.service.app import create_app

    values: dict[str, Any] = {"executor": "globus", "allowed_endpoint_ids": (ALLOWED,),
                              "compute_function_id": FUNCTION, "credentials_key": KEY}
    values.update(changes)
    database_url = database_url or f"sqlite:///{tmp_path / 'db.sqlite'}"
    app = create_app(make_settings(tmp_path, database_url, **values))
    return TestClient(app)
