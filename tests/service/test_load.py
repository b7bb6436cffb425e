"""The service holds a bounded load: 50 concurrent mixed requests (pages, JSON, figures)
all answered 200, /api/health answered within a second throughout, each figure rendered
once (latency figures: bench/bench_service_load.py)."""

from __future__ import annotations

import pytest
import service_fakes as fakes
from service_helpers import LiveServer, bearer, make_settings
from service_load import hammer, mixed_paths

from stembench.service.app import create_app
from stembench.service.figures import figure_cache
from stembench.service.worker import Worker


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_fifty_concurrent_mixed_requests(tmp_path, database_url, dataset_cache,
                                         globus_auth) -> None:
    import httpx

    settings = make_settings(tmp_path, database_url)
    app = create_app(settings)
    with LiveServer(app) as server:
        job_ids = []
        for quality in (0.97, 0.9, 0.85):
            answer = httpx.post(f"{server.url}/api/jobs", headers=bearer("alice"), json={
                "model": "log-blob", "dataset_preset": "mini", "options": {"quality": quality}})
            assert answer.status_code == 201, answer.text
            job_ids.append(answer.json()["job"]["id"])
        worker = Worker(settings, app.state.sessions)
        while worker.run_once():
            pass
        cache = figure_cache(settings)
        rendered = cache.renders  # the worker rendered the group's radars when jobs finished
        paths = mixed_paths(fakes.GROUP, job_ids)
        result = hammer(server.url, paths, concurrency=50)
    app.state.engine.dispose()
    assert result.statuses == [200] * 50, result.statuses
    assert result.health and set(result.health) == {200}, result.health
    # the worker made every group's radar as jobs finished; the one figure it had not made
    # (the first and last models overlaid) was rendered once, though five requests asked
    # for it at the same time
    assert cache.renders == rendered + 1
