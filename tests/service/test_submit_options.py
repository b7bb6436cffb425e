"""Job options are checked at submission against what builds the model: an unknown option,
a value of the wrong type or a file on the service is refused with 422 before anything is
queued, never found out when the job runs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from service_helpers import bearer, make_settings

from stembench.service.app import create_app


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_options_checked_at_submission(tmp_path, database_url, dataset_cache,
                                       globus_auth) -> None:
    settings = make_settings(tmp_path, database_url,
                             options_check="stembench.endpoints.models.options:check_options")
    refused = [
        ("log-blob", {"bogus": 1}, "model 'log-blob' has no option 'bogus'; its options: "),
        ("log-blob", {"threshold": "high"}, "option 'threshold' must be float, got 'high'"),
        ("atomap-like", {"iterations": "x"}, "option 'iterations' must be float, got 'x'"),
        ("atomnet-cubic", {"variant": "hexagonal"}, "has no option 'variant'"),
        ("atomsegnet", {"weights": "/etc/passwd"}, "option 'weights' names a file on the "
                                                   "machine that runs the model"),
    ]
    with TestClient(create_app(settings)) as client:
        for model, options, words in refused:
            answer = client.post("/api/jobs", headers=bearer("alice"), json={
                "model": model, "dataset_preset": "mini", "options": options})
            assert answer.status_code == 422 and words in answer.json()["detail"], answer.text
        assert client.get("/api/jobs", headers=bearer("alice")).json() == []
        good = client.post("/api/jobs", headers=bearer("alice"), json={
            "model": "log-blob", "dataset_preset": "mini", "options": {"threshold": 0.1}})
        assert good.status_code == 201, good.text
