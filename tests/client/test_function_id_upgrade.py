"""The registered function's id across stembench versions.

An endpoint's ``allowed_functions`` names one function id: after an upgrade whose
registered source is the same, the kept id goes on; one whose source changed must not
silently register a new private function (the endpoint would refuse every task, 403).
The SDK's own ``Client`` talks to ``responses`` (globus_sdk.testing's register_function).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

pytest.importorskip("globus_compute_sdk")

import globus_sdk
from globus_compute_sdk import Client
from globus_sdk.testing import load_response

from stembench.client import compute_functions
from stembench.client.compute_functions import (
    ensure_function_id,
    source_digest,
    stored_function_id,
    use_function_id,
)
from stembench.errors import InputError

OLD_ID = "9b1f9c7e-6a7d-4d0e-8a55-3c1a4f5e2d20"


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "stembench.json"
    monkeypatch.setenv("STEMBENCH_CONFIG", str(path))
    return path


@pytest.fixture
def registry() -> Iterator[tuple[responses.RequestsMock, Client]]:
    """The Compute service's function registration, and a client of it."""
    client = Client(authorizer=globus_sdk.AccessTokenAuthorizer("token"),
                    do_version_check=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        load_response(client._compute_web_client.v3.register_function, requests_mock=rsps)
        yield rsps, client


def _upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute_functions, "__version__", "99.0.0")


def test_an_upgrade_with_the_same_source_keeps_the_adopted_id(
        user_config: Path, registry: tuple[responses.RequestsMock, Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rsps, client = registry
    use_function_id(OLD_ID)  # `stembench endpoint function --use OLD_ID` before the upgrade
    kept = json.loads(user_config.read_text())["compute_functions"]
    assert list(kept.values()) == [{"function_id": OLD_ID, "source_sha256": source_digest()}]
    _upgrade(monkeypatch)
    assert stored_function_id() == OLD_ID
    assert ensure_function_id(client) == OLD_ID
    assert not rsps.calls  # nothing registered


@pytest.mark.parametrize("entry", [
    {"function_id": OLD_ID, "source_sha256": "0" * 64},  # another source
    {"function_id": OLD_ID},  # kept before sources were recorded
])
def test_an_upgrade_with_another_source_refuses_with_the_adopt_hint(
        user_config: Path, registry: tuple[responses.RequestsMock, Client],
        monkeypatch: pytest.MonkeyPatch, entry: dict[str, str]) -> None:
    rsps, client = registry
    user_config.parent.mkdir(parents=True)
    user_config.write_text(json.dumps({"compute_functions": {"0.1.0": entry}}))
    _upgrade(monkeypatch)
    assert stored_function_id() is None
    with pytest.raises(InputError) as caught:
        ensure_function_id(client)
    message = str(caught.value)
    assert "\n" not in message and f"stembench 0.1.0 ({OLD_ID})" in message
    assert "run `stembench endpoint function --use <ID>`" in message
    assert not rsps.calls  # no private function registered behind the user's back
    assert stored_function_id("0.1.0") == OLD_ID  # the old version keeps its id


def test_the_first_use_registers_and_keeps_the_source_digest(
        user_config: Path, registry: tuple[responses.RequestsMock, Client]) -> None:
    rsps, client = registry
    function_id = ensure_function_id(client)
    assert len(rsps.calls) == 1
    kept = json.loads(user_config.read_text())["compute_functions"]
    assert kept[compute_functions.__version__] == {"function_id": function_id,
                                                   "source_sha256": source_digest()}


def test_kept_versions_are_ordered_as_releases_not_as_text(
        user_config: Path, registry: tuple[responses.RequestsMock, Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """0.10.0 came after 0.9.0: the refusal names it, and of two ids kept for the same
    source the one of 0.10.0 goes on."""
    rsps, client = registry
    newer_id = "5d0c7a32-1f4e-4b7c-9d3e-2a6b8c1e0f47"
    user_config.parent.mkdir(parents=True)
    other = {"0.10.0": {"function_id": newer_id, "source_sha256": "1" * 64},
             "0.9.0": {"function_id": OLD_ID, "source_sha256": "0" * 64}}
    user_config.write_text(json.dumps({"compute_functions": other}))
    _upgrade(monkeypatch)
    with pytest.raises(InputError, match=rf"kept for stembench 0\.10\.0 \({newer_id}\)"):
        ensure_function_id(client)
    same = {version: {**entry, "source_sha256": source_digest()}
            for version, entry in other.items()}
    user_config.write_text(json.dumps({"compute_functions": same}))
    assert stored_function_id() == newer_id
    assert not rsps.calls
