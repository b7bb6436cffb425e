"""Malformed, oversized and concurrent requests: 4xx with a message, and no row lost."""

from __future__ import annotations

import concurrent.futures as cf
import json

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from service_helpers import LiveServer, bearer, make_settings
from sqlalchemy import func, select

from stembench.endpoints.models.registry import available_models
from stembench.service.app import create_app
from stembench.service.models import Job

SCALARS = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
REGISTERED = {entry.name for entry in available_models()}
FIELDS = st.sampled_from(["model", "options", "dataset_name", "dataset_preset",
                          "dataset_version", "endpoint_id", "extra"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(body=st.dictionaries(FIELDS, JSON, max_size=5) | JSON)
@example(body={"model": "no-such-model"})  # well formed but unknown: refused, not queued
@example(body={"model": "log-blob"})  # queued (the text strategy never names a registered model)
@example(body={"model": "log-blob"})  # the same again: a duplicate
@example(body={"model": "log-blob", "options": {"no_such_option": 1}})  # a bad field
def _fuzz_submit(client, body) -> None:
    answer = client.post("/api/jobs", json=body, headers=bearer("alice"))
    if not (isinstance(body, dict) and isinstance(body.get("model"), str)
            and body["model"] in REGISTERED):
        # no registered model named: refused, with a message, whatever else the body holds
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"].startswith("invalid request") or "model" in answer.text
    elif answer.status_code == 422:  # a registered model with a bad field: a message says so
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"], body
    else:  # a registered model: queued as that model, 201 new or 200 for a duplicate
        assert answer.status_code in (200, 201), (body, answer.text)
        assert answer.json()["job"]["model"] == body["model"]
        assert answer.json()["duplicate"] is (answer.status_code == 200)


def test_fuzzed_submissions_never_break_the_api(client) -> None:
    _fuzz_submit(client)


def test_malformed_and_oversized_payloads(client) -> None:
    broken = client.post("/api/jobs", content=b'{"model": ', headers={
        **bearer("alice"), "Content-Type": "application/json"})
    assert broken.status_code == 422 and "invalid request" in broken.json()["detail"]
    big = {"model": "log-blob", "options": {"x": "y" * 100_000}}
    too_big = client.post("/api/jobs", json=big, headers=bearer("alice"))
    assert too_big.status_code == 413 and "too large" in too_big.json()["detail"]
    unknown = client.post("/api/jobs", json={"model": "os:system"}, headers=bearer("alice"))
    assert unknown.status_code == 422
    model = client.post("/api/jobs", json={"model": "no-such-model"}, headers=bearer("alice"))
    assert model.status_code == 422 and "registered models only" in model.json()["detail"]
    endpoint = client.post("/api/jobs", json={"model": "log-blob", "endpoint_id": "nope"},
                           headers=bearer("alice"))
    assert endpoint.status_code == 422 and "UUID" in endpoint.json()["detail"]
    bad_id = client.get("/api/jobs/../../etc/passwd/scores")
    assert bad_id.status_code == 404
    assert client.get("/api/jobs/zz/scores").status_code == 422
    assert client.get("/api/leaderboard?axis=bogus").status_code == 422


def test_fifty_concurrent_submissions_lose_no_row(tmp_path, database_url, globus_auth) -> None:
    app = create_app(make_settings(tmp_path, database_url))
    bodies = [{"model": "log-blob", "options": {"quality": i / 100}} for i in range(50)]
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        def post(body):
            return http.post("/api/jobs", content=json.dumps(body), headers={
                **bearer("alice"), "Content-Type": "application/json"}).status_code

        with cf.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(post, bodies + bodies[:10]))
    # each of the 10 repeated bodies raced its original: exactly one of the pair created it
    assert statuses[10:50] == [201] * 40
    assert all(sorted((statuses[i], statuses[50 + i])) == [200, 201] for i in range(10))
    with app.state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 50
    app.state.engine.dispose()
