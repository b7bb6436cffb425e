"""An unexpected error in a request is answered with one JSON line and a log id; the details
(which may hold secrets) go to the service's log only."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from stembench.service import pages
from stembench.service.app import create_app


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_unexpected_error_is_one_json_line_with_a_log_id(settings, globus_auth,
                                                            monkeypatch, caplog) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("password=hunter2 in a message")

    monkeypatch.setattr(pages, "list_groups", broken)
    caplog.set_level(logging.ERROR, logger="stembench.service.app")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/leaderboard")
    assert answer.status_code == 500, answer.text
    detail, log_id = answer.json()["detail"], answer.json()["log_id"]
    assert detail.startswith(f"internal error (log id {log_id})") and "hunter2" not in detail
    assert f"(log id {log_id})" in caplog.text and "hunter2" in caplog.text  # in the log only
    app.state.engine.dispose()
