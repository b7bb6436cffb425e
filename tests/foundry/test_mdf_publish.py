"""The MDF Connect submission: payload field by field, every rejection, and the dry run."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from typer.testing import CliRunner

from stembench.dataset_publish.foundry_metadata import dataset_metadata
from stembench.dataset_publish.mdf_publish import MDFSubmissionError, build_submission, submit
from stembench.dataset_publish.publish_cli import app

SUBMIT_URL = "https://publish-prod.materialsdatafacility.org/submit"
SOURCE = "globus://82f1b5c6-6e9b-11e5-ba47-22000b92c6ec/tmp/abc/"


class _Bearer:
    def get_authorization_header(self) -> str:
        return "Bearer TOKEN"


@pytest.fixture
def submission(tiny_dataset):
    meta = dataset_metadata(tiny_dataset, creators=("Wei, Jingrui",), year=2026)
    return meta, build_submission(meta, data_sources=[SOURCE], test=True)


def test_submission_fields(submission):
    meta, sub = submission
    assert sorted(sub) == ["data_sources", "dc", "mdf", "projects", "test", "update",
                           "update_metadata_only"]
    assert sub["data_sources"] == [SOURCE]
    assert sub["test"] is True and sub["update"] is False
    assert sub["update_metadata_only"] is False
    assert sub["mdf"] == {"source_name": "atom_locating_benchmark_mini",
                          "organization": "Foundry"}
    assert sub["projects"] == {"foundry": meta.foundry}
    assert sub["projects"]["foundry"]["data_type"] == "hdf5"
    assert sub["dc"]["publicationYear"] == "2026"
    assert {k: v for k, v in sub["dc"].items() if k != "publicationYear"} == {
        k: v for k, v in meta.dc.items() if k != "publicationYear"}
    json.dumps(sub, allow_nan=False)


def test_submit_posts_the_exact_payload(submission):
    _, sub = submission
    responses.add(responses.POST, SUBMIT_URL,
                  json={"success": True, "source_id": "atom_locating_benchmark_mini_v1.1"})
    assert submit(sub, authorizer=_Bearer()) == "atom_locating_benchmark_mini_v1.1"
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer TOKEN"
    assert json.loads(request.body) == sub


@pytest.mark.parametrize("status, body, words", [
    (401, {"error": "Token invalid"}, ["refused the credentials", "HTTP 401", "Token invalid",
                                       "--no-browser"]),
    (403, {"error": "Not in group"}, ["refused the credentials", "HTTP 403", "Not in group"]),
    (400, {"error": "dc.titles: field required"}, ["invalid (HTTP 400)",
                                                  "dc.titles: field required"]),
    (409, {"error": "source_name exists"}, ["already has a dataset named "
                                            "'atom_locating_benchmark_mini'", "--update"]),
    (413, {"error": "Payload too large"}, ["too large (HTTP 413", "bytes of JSON"]),
    (502, "Bad Gateway", ["server error (HTTP 502: Bad Gateway)", "retry later"]),
    (200, {"success": False, "error": "Submission rejected"}, ["did not accept",
                                                              "Submission rejected"]),
])
def test_every_rejection_is_explained(submission, status, body, words):
    _, sub = submission
    if isinstance(body, dict):
        responses.add(responses.POST, SUBMIT_URL, status=status, json=body)
    else:
        responses.add(responses.POST, SUBMIT_URL, status=status, body=body)
    with pytest.raises(MDFSubmissionError) as info:
        submit(sub, authorizer=_Bearer())
    assert info.value.status == status
    for word in words:
        assert word in str(info.value)


def test_unreachable_service(submission):
    _, sub = submission
    responses.add(responses.POST, SUBMIT_URL, body=requests.ConnectionError("no route"))
    with pytest.raises(MDFSubmissionError, match="cannot reach MDF Connect") as info:
        submit(sub, authorizer=_Bearer())
    assert info.value.status is None


def test_dry_run_prints_the_exact_submission(tiny_dataset):
    result = CliRunner().invoke(app, ["publish", str(tiny_dataset), "--data-source", SOURCE,
                                      "--creator", "Wei, Jingrui", "--year", "2026",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    meta = dataset_metadata(tiny_dataset, creators=("Wei, Jingrui",), year=2026)
    assert json.loads(result.output) == build_submission(meta, data_sources=[SOURCE])
    assert len(responses.calls) == 0


def test_payload_equals_mdf_connect_clients(submission):
    mdfcc = pytest.importorskip("mdf_connect_client")
    globus_sdk = pytest.importorskip("globus_sdk")
    meta, sub = submission
    client = mdfcc.MDFConnectClient(test=True, authorizer=globus_sdk.NullAuthorizer())
    client.dc = json.loads(json.dumps(meta.dc))
    client.dc["publicationYear"] = str(client.dc["publicationYear"])
    client.add_data_source(SOURCE)
    client.set_source_name(meta.source_name)
    client.set_organization("Foundry")
    assert client.set_project_block("foundry", meta.foundry) is None
    assert client.get_submission() == sub


def test_login_builds_a_command_line_user_app(tmp_path, monkeypatch):
    globus_sdk = pytest.importorskip("globus_sdk")
    from stembench.dataset_publish import mdf_publish

    seen = {}

    def fake_get_authorizer(self, resource_server):
        seen["resource_server"] = resource_server
        seen["flow"] = type(self._login_flow_manager).__name__
        seen["scopes"] = [str(s) for s in self.scope_requirements[resource_server]]
        return "AUTHORIZER"

    monkeypatch.setattr(globus_sdk.UserApp, "get_authorizer", fake_get_authorizer)
    token_file = tmp_path / "tokens" / "t.json"
    result = mdf_publish.login(no_browser=True, token_file=token_file)
    assert result == "AUTHORIZER"
    assert seen["resource_server"] == mdf_publish.MDF_CONNECT_RESOURCE_SERVER
    assert seen["flow"] == "CommandLineLoginFlowManager"
    assert mdf_publish.MDF_CONNECT_SCOPE in seen["scopes"]
    assert token_file.parent.is_dir()
    assert len(responses.calls) == 0
