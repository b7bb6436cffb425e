"""Made-up tokens cannot block sign-ins: one address may start only a few token checks at
once, and room is kept for addresses whose tokens passed before. Globus Auth is the
mocked introspection route; its answers to made-up tokens hang until the test ends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from service_helpers import CLIENT_ID, INTROSPECT_URL, SCOPE

from stembench.service.auth import AuthError, TokenVerifier
from stembench.service.token_budget import PER_ADDRESS, RESERVED, TOTAL

#: A guard against a hang only: the hanging answers are released when each test ends.
HANG_GUARD_S = 60


@pytest.fixture
def hanging_auth() -> Iterator[threading.Event]:
    """Globus Auth accepts ``good-*`` tokens at once and hangs on any other until set."""
    release = threading.Event()

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        token = parse_qs(request.body)["token"][0]
        if not token.startswith("good-"):
            release.wait(HANG_GUARD_S)
            return 200, {}, json.dumps({"active": False})
        return 200, {}, json.dumps({"active": True, "sub": token, "scope": SCOPE,
                                    "aud": [CLIENT_ID], "exp": int(time.time()) + 3600})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, INTROSPECT_URL, callback=answer,
                          content_type="application/json")
        try:
            yield release
        finally:
            release.set()


async def _while_junk_hangs(verifier: TokenVerifier, junk_hosts: list[str],
                            release: threading.Event,
                            checks: list[tuple[str, str]]) -> tuple[list[Any], list[Any]]:
    """Start a made-up token's check from each of ``junk_hosts``, then run ``checks``
    (token, host) one by one; the outcomes of both (an identity or an AuthError)."""
    junk = [asyncio.create_task(verifier.verify_async(f"Bearer junk-{i}", client_host=host))
            for i, host in enumerate(junk_hosts)]
    await asyncio.sleep(0)  # every junk check has started (or been refused) by now
    done = [task.exception() if task.done() else None for task in junk]
    outcomes = []
    for token, host in checks:
        try:
            outcomes.append(await verifier.verify_async(f"Bearer {token}", client_host=host))
        except AuthError as exc:
            outcomes.append(exc)
    release.set()
    await asyncio.gather(*junk, return_exceptions=True)
    return done, outcomes


def _verifier() -> TokenVerifier:
    return TokenVerifier(CLIENT_ID, "secret", required_scope=SCOPE, timeout_s=HANG_GUARD_S)


def test_one_address_cannot_take_every_token_check(hanging_auth) -> None:
    junk_hosts = ["203.0.113.7"] * TOTAL
    refused, (other,) = asyncio.run(_while_junk_hangs(
        _verifier(), junk_hosts, hanging_auth, [("good-carol", "198.51.100.2")]))
    assert [e is None for e in refused] == [True] * PER_ADDRESS + [False] * (TOTAL - PER_ADDRESS)
    assert {(e.status, "from your address" in e.message) for e in refused[PER_ADDRESS:]} == {
        (429, True)}
    assert other.sub == "good-carol"  # another address is checked while the junk hangs


def test_addresses_that_passed_before_keep_room_for_their_checks(hanging_auth) -> None:
    verifier = _verifier()
    known, fresh = "2001:db8:1:2::5", "198.51.100.9"
    asyncio.run(verifier.verify_async("Bearer good-dave", client_host=known))
    # made-up tokens from many addresses, each within its own budget, fill the rest
    junk_hosts = [f"203.0.113.{n // PER_ADDRESS}" for n in range(TOTAL - RESERVED)]
    refused, (newcomer, returning) = asyncio.run(_while_junk_hangs(
        verifier, junk_hosts, hanging_auth,
        [("good-erin", fresh), ("good-dave-again", "2001:db8:1:2::77")]))
    assert refused == [None] * len(junk_hosts)
    assert newcomer.status == 503 and "too many token checks" in newcomer.message
    assert returning.sub == "good-dave-again"  # same /64 network: known, not starved
