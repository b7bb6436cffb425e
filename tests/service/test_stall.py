"""No caller can stall reading: token checks wait off the request threads (a slow Globus Auth
and a flood of made-up tokens leave GET /api/leaderboard answering), every token is
introspected once however many requests carry it, and refusals are cached."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import responses
from service_helpers import INTROSPECT_URL, LiveServer, make_settings

from stembench.service.app import create_app

#: A guard against a hang only: the stand-in is released after the checks.
HANG_GUARD_S = 60


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_made_up_tokens_and_slow_auth_do_not_stall_reading(tmp_path, database_url) -> None:
    release, asked = threading.Event(), []

    def slow_auth(request: Any) -> tuple[int, dict[str, str], str]:
        asked.append(parse_qs(request.body)["token"][0])
        release.wait(HANG_GUARD_S)  # Globus Auth hangs until the test lets it answer
        return 200, {}, json.dumps({"active": False})

    settings = make_settings(tmp_path, database_url, introspection_timeout_s=1.0)
    app = create_app(settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, INTROSPECT_URL, callback=slow_auth)
        mock.add_passthru("http://127.0.0.1")
        with LiveServer(app) as server, httpx.Client(base_url=server.url,
                                                     timeout=HANG_GUARD_S) as http:
            tokens = [f"made-up-{i}" for i in range(24)] + ["made-up-0"] * 8

            def mine(token: str) -> int:
                return http.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}
                                ).status_code

            try:
                with cf.ThreadPoolExecutor(32) as pool:
                    flood = [pool.submit(mine, token) for token in tokens]
                    board = http.get("/api/leaderboard")
                    assert board.status_code == 200  # while Globus Auth still hangs
                    assert not release.is_set()
                    statuses = [future.result() for future in flood]
                # no answer in time, or over this address's checks in flight: try again later
                assert set(statuses) <= {503, 429}, statuses
                assert asked.count("made-up-0") <= 1  # one check per token in flight
            finally:
                release.set()
            refused = [mine("made-up-0") for _ in range(3)]
            while 401 not in refused and len(refused) < 50:  # its check lands meanwhile
                refused.append(mine("made-up-0"))
            assert refused[-1] == 401
            assert mine("made-up-0") == 401
            assert asked.count("made-up-0") == 1  # the refusal is cached
    app.state.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_radar_overlays_cannot_stall_reading(tmp_path, database_url, dataset_cache,
                                             globus_auth, monkeypatch) -> None:
    from collections import Counter
    from itertools import combinations

    import service_fakes as fakes

    from stembench.service import analysis
    from stembench.service.figures import group_radar

    settings = make_settings(tmp_path, database_url, figure_overlays_per_minute=1)
    app = create_app(settings)
    _entries(app, (0.97, 0.9, 0.85))
    figures = set((settings.data_dir / "figures").glob("*.png"))
    release, drawn = threading.Event(), []
    real = analysis.radar_png

    def slow_radar(*args: Any, **kwargs: Any) -> bytes:
        drawn.append(kwargs.get("group"))
        release.wait(HANG_GUARD_S)  # matplotlib takes forever
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "radar_png", slow_radar)
    with LiveServer(app) as server, httpx.Client(base_url=server.url,
                                                 timeout=HANG_GUARD_S) as http:
        with app.state.sessions() as session:
            known = group_radar(session, fakes.GROUP)
        assert len(known) == 3, known
        pairs = [",".join(p) for p in combinations(known, 2)]
        try:
            with cf.ThreadPoolExecutor(12) as pool:
                asked = [pool.submit(http.get, f"/api/leaderboard/{fakes.GROUP}/radar.png",
                                     params={"jobs": pair}) for pair in pairs * 4]
                board = http.get("/api/leaderboard")
                assert board.status_code == 200 and not release.is_set()  # while drawing
                release.set()
                statuses = Counter(future.result().status_code for future in asked)
        finally:
            release.set()
    # the worker drew the first two jobs' pair as the group's radar before the third ended;
    # of the two new pairs one is drawn (once, however many asked), the other refused
    assert statuses == Counter({200: 8, 429: 4}), statuses
    assert len(drawn) == 1
    assert set((settings.data_dir / "figures").glob("*.png")) == figures  # memory only
    app.state.engine.dispose()


def _entries(app: Any, qualities: tuple[float, ...]) -> None:
    """One finished entry per quality; each finished job has its group and own radars drawn."""
    from stembench.dataset_publish.build import DATASET_VERSION
    from stembench.service import store
    from stembench.service.worker import Worker

    with app.state.sessions() as session:
        for quality in qualities:
            store.create_job(session, owner="alice", owner_name="alice", model="log-blob",
                             options={"quality": quality}, dataset_name="atom-locating-benchmark",
                             dataset_preset="mini", dataset_version=str(DATASET_VERSION),
                             endpoint_id=None)
    worker = Worker(app.state.settings, app.state.sessions)
    while worker.run_once():
        pass


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_overlay_limit_is_per_caller(tmp_path, database_url, dataset_cache, globus_auth) -> None:
    """One caller spending their overlays leaves every other caller theirs: an identity, an
    address, an IPv6 /64 network each count on their own."""
    from itertools import combinations

    import service_fakes as fakes
    from fastapi.testclient import TestClient
    from service_helpers import bearer

    from stembench.service.figures import FigureCache, group_radar

    app = create_app(make_settings(tmp_path, database_url, figure_overlays_per_minute=1))
    _entries(app, (0.97, 0.9, 0.85, 0.8))
    with app.state.sessions() as session:
        known = group_radar(session, fakes.GROUP)
    drawn = app.state.settings.data_dir / "figures"  # the first jobs' sets, as group radars
    overlays = iter(",".join(p) for n in (2, 3) for p in combinations(known, n)
                    if not (drawn / f"{FigureCache.key(fakes.GROUP, p)}.png").is_file())

    def ask(address: str, **headers: str) -> int:
        caller = TestClient(app, client=(address, 50000))
        return caller.get(f"/api/leaderboard/{fakes.GROUP}/radar.png", headers=headers,
                          params={"jobs": next(overlays)}).status_code

    assert ask("10.0.0.1") == 200
    assert ask("10.0.0.1") == 429  # that address's overlay of this minute is spent
    assert ask("10.0.0.2") == 200  # another address still has its own
    assert ask("10.0.0.1", **bearer("alice")) == 200  # a signed-in caller counts as themself
    assert ask("10.0.0.1", **bearer("alice")) == 429
    assert ask("2001:db8::1") == 200
    assert ask("2001:db8::2") == 429  # the same /64 network: one machine
    app.state.engine.dispose()


def test_all_callers_together_get_ten_shares_of_overlays(tmp_path) -> None:
    """Many callers (addresses) cannot together keep the render thread busy either."""
    from stembench.service.figures import FigureBusyError, FigureCache

    cache = FigureCache(tmp_path, overlays_per_minute=2)
    for caller in range(10):
        cache._count_overlay(f"address 10.0.0.{caller}")
        cache._count_overlay(f"address 10.0.0.{caller}")
    with pytest.raises(FigureBusyError, match="as many new radar overlays as it draws"):
        cache._count_overlay("address 10.0.1.1")  # a new caller, but the minute's are spent


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_uploads_cannot_stall_reading(tmp_path, database_url, globus_auth) -> None:
    from service_helpers import bearer

    from stembench.service.upload_parts import owner_lock
    from stembench.service.uploads import OWNER_UPLOADS

    settings = make_settings(tmp_path, database_url)
    app = create_app(settings)
    digest, tried = "ab" * 32, 8
    with LiveServer(app) as server, httpx.Client(base_url=server.url,
                                                 timeout=HANG_GUARD_S) as http:
        def part(index: int) -> httpx.Response:
            return http.put(f"/api/uploads/{digest}/parts/{index}", content=b"x" * 100,
                            headers={**bearer("alice"),
                                     "Content-Type": "application/octet-stream"})

        with cf.ThreadPoolExecutor(tried) as pool:
            with owner_lock(settings, "alice"):  # alice's parts wait on her lock meanwhile
                sent = [pool.submit(part, i) for i in range(tried)]
                answered = cf.as_completed(sent, timeout=HANG_GUARD_S)
                refused = [next(answered).result() for _ in range(tried - OWNER_UPLOADS)]
                assert {r.status_code for r in refused} == {429}
                assert "upload requests in flight" in refused[0].json()["detail"]
                assert http.get("/api/leaderboard").status_code == 200  # reading goes on
                assert http.get("/api/jobs", headers=bearer("bob")).status_code == 200
            stored = [f.result() for f in sent if f.result().status_code != 429]
        assert [r.status_code for r in stored] == [200] * OWNER_UPLOADS
    app.state.engine.dispose()
