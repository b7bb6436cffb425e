"""Publishing through MDF Connect v2 with mdf-cli's own models, validation and client.

Runs in the Foundry environment (mdf-cli needs globus-sdk 3); mdf-cli's HTTP client is
httpx, so its requests are answered by ``respx`` with recorded v2 answers.
"""

from __future__ import annotations

import json

import pytest
from foundry_test_data import API, APIS, NCSA

from stembench.dataset_publish.mdf.cli import app
from stembench.dataset_publish.mdf.foundry_metadata import dataset_metadata
from stembench.dataset_publish.mdf.publish import (
    MDFSubmissionError,
    build_payload,
    file_digests,
    follow_status,
    mdf_manifest,
    submission_status,
    submit,
)
from stembench.errors import InputError

mdf_config = pytest.importorskip("mdf.models.config")
respx = pytest.importorskip("respx")
httpx = pytest.importorskip("httpx")
from mdf.core.validation import validate_manifest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

STAGED = f"globus://{NCSA}/tmp/_uploads/abc/"


@pytest.fixture
def meta(tiny_dataset):
    return dataset_metadata(tiny_dataset, creators=("Wei, Jingrui", "stembench developers"),
                            year=2026)


@pytest.fixture
def api(monkeypatch):
    monkeypatch.delenv("MDF_API_URL", raising=False)
    with respx.mock(base_url=API, assert_all_called=False) as mock:
        yield mock


def test_manifest_passes_mdf_cli_validation(meta):
    manifest = mdf_manifest(meta)
    model = mdf_config.ManifestConfig.model_validate(manifest)
    assert validate_manifest(model) == ([], [])
    assert model.ml["data_format"] == "hdf5"
    assert manifest["data_sources"] == [str(p.resolve()) for p in meta.files]
    assert [p.rsplit("/", 1)[-1] for p in manifest["data_sources"]] == [
        "mini.h5", "mini.h5.manifest.json", "mini.foundry.h5", "mini.foundry.h5.manifest.json"]


def test_payload_built_by_mdf_cli(meta):
    payload = build_payload(mdf_manifest(meta, data_sources=[STAGED]), test=True)
    assert payload["title"].startswith("atom-locating-benchmark mini ")
    assert payload["authors"] == [
        {"name": "Wei, Jingrui", "given_name": "Jingrui", "family_name": "Wei"},
        {"name": "stembench developers"}]
    assert payload["license"]["identifier"] == "CC-BY-4.0"
    assert {w["identifier"]: w["relation_type"] for w in payload["related_works"]} == {
        "10.18126/e73h-3w6n": "IsDerivedFrom", "10.1093/micmic/ozac043": "References"}
    assert payload["keywords"][0] == "atom-locating-benchmark"
    assert payload["data_sources"] == [STAGED]
    assert payload["test"] is True and payload["update"] is False
    ml = payload["ml"]
    assert ml["data_format"] == "hdf5" and ml["n_items"] == 3
    assert ml["splits"] == [{"type": "test", "path": "mini.foundry.h5", "label": "mini",
                             "n_items": 3}]
    assert [k["name"] for k in ml["keys"]] == [k["key"][0] for k in meta.foundry["keys"]]
    assert {k["name"]: k["role"] for k in ml["keys"]}["coords"] == "target"
    files = payload["extensions"]["stembench"]["files"]
    assert files == file_digests(meta.files)
    assert set(files) == {p.name for p in meta.files}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in files.values())
    assert "source_id" not in payload and "projects" not in payload
    assert payload["dc"] == meta.dc  # the blocks foundry-ml reads travel with the submission
    assert payload["extensions"]["foundry"] == meta.foundry
    submission = pytest.importorskip("mdf.models.submission").Submission
    assert submission.model_validate(payload).to_payload() == payload  # mdf-cli's own model
    json.dumps(payload, allow_nan=False)


def test_update_needs_and_sends_the_source_id(meta):
    manifest = mdf_manifest(meta, data_sources=[STAGED])
    with pytest.raises(InputError, match="source_id"):
        build_payload(manifest, update=True)
    payload = build_payload(manifest, update=True, source_id="abc_v1")
    assert payload["source_id"] == "abc_v1" and payload["update"] is True


@pytest.mark.parametrize("option, env, service", [
    ([], None, "staging"),  # mdf-cli 0.3.0's default
    ([], "dev", "dev"),  # $MDF_SERVICE, mdf-cli's own switch
    (["--service", "prod"], "dev", "prod"),  # an explicit --service wins
])
def test_dry_run_prints_the_exact_payload_and_the_service(tiny_dataset, api, monkeypatch,
                                                           option, env, service):
    if env:
        monkeypatch.setenv("MDF_SERVICE", env)
    result = CliRunner().invoke(app, ["publish", str(tiny_dataset), "--data-source", STAGED,
                                      "--creator", "Wei, Jingrui", "--year", "2026",
                                      "--dry-run", *option])
    assert result.exit_code == 0, result.output
    meta = dataset_metadata(tiny_dataset, creators=("Wei, Jingrui",), year=2026)
    assert json.loads(result.stdout) == build_payload(mdf_manifest(meta, data_sources=[STAGED]))
    assert result.stderr == (f"dry run: would submit to MDF Connect v2 {service} "
                             f"({APIS[service]})\n")
    assert len(api.calls) == 0


def test_submit_and_status_go_to_the_chosen_service(meta, monkeypatch):
    monkeypatch.setenv("MDF_SERVICE", "dev")
    with respx.mock(assert_all_called=False) as mock:
        dev = mock.post(f"{APIS['dev']}/submit").respond(json={
            "success": True, "source_id": "s", "version": "1.0"})
        mock.get(f"{APIS['dev']}/auth/check").respond(json={"is_submitter": True})
        staging = mock.get(f"{APIS['staging']}/status/s").respond(json={
            "success": True, "submission": {"source_id": "s", "status": "published"}})
        submit(mdf_manifest(meta, data_sources=[STAGED]), token="T")
        result = CliRunner().invoke(app, ["publish-status", "s", "--service", "staging",
                                          "--token", "T"])
    assert result.exit_code == 0, result.output
    assert dev.called and staging.called
    assert json.loads(result.stdout)["status"] == "published"


def test_submit_posts_mdf_cli_payload(meta, api):
    manifest = mdf_manifest(meta, data_sources=[STAGED])
    check = api.get("/auth/check").respond(json={"success": True, "is_submitter": True})
    posted = api.post("/submit").respond(json={
        "success": True, "source_id": "atom_locating_benchmark_mini", "version": "1.0",
        "status": "pending_curation"})
    result = submit(manifest, token="TOKEN", test=True)
    assert result["source_id"] == "atom_locating_benchmark_mini" and result["version"] == "1.0"
    assert check.called
    request = posted.calls.last.request
    assert request.headers["Authorization"] == "Bearer TOKEN"
    assert json.loads(request.content) == build_payload(manifest, test=True)


@pytest.mark.parametrize("status, body, words", [
    (401, {"detail": "Token invalid"}, ["HTTP 401", "Token invalid", "log in again"]),
    (403, {"detail": "Not in group"}, ["HTTP 403", "submitters group"]),
    (400, {"detail": "ml.data_format: field required"}, ["HTTP 400", "ml.data_format"]),
    (409, {"detail": "exists"}, ["HTTP 409", "--update"]),
    (500, {"detail": "boom"}, ["HTTP 500", "retry later"]),
])
def test_every_rejection_is_explained(meta, api, status, body, words):
    api.get("/auth/check").respond(json={"is_submitter": True})
    api.post("/submit").respond(status_code=status, json=body)
    with pytest.raises(MDFSubmissionError) as info:
        submit(mdf_manifest(meta, data_sources=[STAGED]), token="TOKEN")
    assert info.value.status == status
    for word in words:
        assert word in str(info.value)


def test_not_a_submitter_and_local_files_without_login(meta, api):
    api.get("/auth/check").respond(json={"is_submitter": False})
    with pytest.raises(MDFSubmissionError, match="not authorized to submit"):
        submit(mdf_manifest(meta, data_sources=[STAGED]), token="TOKEN")
    api.get("/auth/check").respond(json={"is_submitter": True})
    with pytest.raises(MDFSubmissionError, match="Globus data token"):
        submit(mdf_manifest(meta), token="TOKEN")  # local files need mdf-cli's Globus login
    assert [str(call.request.url) for call in api.calls] == [f"{API}/auth/check"] * 2


def test_status_follows_the_submission(api):
    route = api.get("/status/atom_locating_benchmark_mini").mock(side_effect=[
        httpx.Response(200, json={"success": True, "submission": {
            "source_id": "atom_locating_benchmark_mini", "version": "1.0",
            "status": "pending_curation", "dataset_mdata": "{}"}}),
        httpx.Response(200, json={"success": True, "submission": {
            "source_id": "atom_locating_benchmark_mini", "version": "1.0",
            "status": "published", "dataset_doi": "10.18126/abcd-1234"}}),
        httpx.Response(404, json={"detail": "Submission not found"})])
    first = submission_status("atom_locating_benchmark_mini", token="TOKEN")
    assert first == {"source_id": "atom_locating_benchmark_mini", "version": "1.0",
                     "status": "pending_curation", "doi": None}
    result = CliRunner().invoke(app, ["publish-status", "atom_locating_benchmark_mini",
                                      "--token", "TOKEN"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["doi"] == "10.18126/abcd-1234"
    with pytest.raises(MDFSubmissionError, match="HTTP 404"):
        submission_status("atom_locating_benchmark_mini", token="TOKEN")
    assert route.calls.last.request.headers["Authorization"] == "Bearer TOKEN"


def test_follow_status_polls_until_published(api):
    pending = {"success": True, "submission": {"source_id": "s", "version": "1.0",
                                               "status": "pending_curation"}}
    done = {"success": True, "submission": {"source_id": "s", "version": "1.0",
                                            "status": "published", "dataset_doi": "10.1/x"}}
    route = api.get("/status/s").mock(side_effect=[httpx.Response(200, json=pending),
                                                   httpx.Response(200, json=pending),
                                                   httpx.Response(200, json=done)])
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    status = follow_status("s", wait_s=300, interval_s=60, token="T", sleep=sleep,
                           clock=lambda: now[0])
    assert status["status"] == "published" and status["doi"] == "10.1/x"
    assert route.call_count == 3 and slept == [60, 60]
    route.mock(side_effect=None, return_value=httpx.Response(200, json=pending))
    status = follow_status("s", wait_s=100, interval_s=60, token="T", sleep=sleep,
                           clock=lambda: now[0])
    assert status["status"] == "pending_curation"  # the wait ran out: never waits forever
    assert route.call_count == 5


def _one_line_error(meta, api, **kwargs):
    with pytest.raises(MDFSubmissionError) as info:
        submit(mdf_manifest(meta, **kwargs), service="staging", token="TOKEN")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_no_answer_from_submit_may_have_been_accepted(meta, api):
    api.get("/auth/check").respond(json={"is_submitter": True})
    api.post("/submit").mock(side_effect=httpx.ReadTimeout("The read operation timed out"))
    message = _one_line_error(meta, api, data_sources=[STAGED])
    assert f"POST {API}/submit: ReadTimeout" in message
    assert ("the submission was sent and may have been accepted: check "
            "`mdf list --service staging` (mdf-cli) before submitting again") in message


def test_a_refused_upload_folder_is_one_line(meta, monkeypatch):
    """mdf-cli's confidential-client login, then Globus Transfer refusing the upload folder.

    The token answer has the shape of globus-sdk's registered ``oauth2_client_credentials_
    tokens`` response; ``_mkdir_on_collection`` calls ``raise_for_status`` (agent.py:248).
    """
    import responses

    monkeypatch.setenv("MDF_CLIENT_ID", "client")
    monkeypatch.setenv("MDF_CLIENT_SECRET", "secret")
    tokens = [{"access_token": f"{server}-TOKEN", "scope": "s", "expires_in": 172800,
               "token_type": "Bearer", "resource_server": server}
              for server in ("4d5f8e8b-a61d-40d8-bb58-5a3f5d1d200a", NCSA,
                             "transfer.api.globus.org")]
    responses.add(responses.POST, "https://auth.globus.org/v2/oauth2/token",
                  json={**tokens[0], "other_tokens": tokens[1:]})
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{API}/auth/check").respond(json={"is_submitter": True})
        mkdir = mock.post(f"https://transfer.api.globus.org/v0.10/operation/endpoint/{NCSA}"
                          "/mkdir").respond(403, json={"code": "PermissionDenied", "message":
                                                       "No permission to create directory"})
        with pytest.raises(MDFSubmissionError) as info:
            submit(mdf_manifest(meta), service="staging")
    assert mkdir.called and info.value.status == 403
    message = str(info.value)
    assert "\n" not in message and "HTTPStatusError" in message and "403" in message
    assert "stage the files yourself and pass --data-source" in message
    assert "may have been accepted" not in message


def test_not_a_submitter_is_told_what_to_do(meta, api):
    api.get("/auth/check").respond(json={"is_submitter": False})
    message = _one_line_error(meta, api, data_sources=[STAGED])
    assert "not in the MDF submitters group" in message and "mdf whoami" in message
    assert "retry later" not in message and "down" not in message


def test_only_a_connection_failure_says_retry_later(meta, api, monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # mdf-cli's back-off
    api.get("/auth/check").respond(json={"is_submitter": True})
    api.post("/submit").mock(side_effect=httpx.ConnectError("Connection refused"))
    message = _one_line_error(meta, api, data_sources=[STAGED])
    assert "Connection failed after 4 attempts" in message
    assert "could not be reached" in message and "retry later" in message
    assert "submitters group" not in message


def test_organization_only_when_named(meta):
    assert "organization" not in build_payload(mdf_manifest(meta, data_sources=[STAGED]))
    named = build_payload(mdf_manifest(meta, data_sources=[STAGED], organization="Foundry"))
    assert named["organization"] == "Foundry"


@pytest.mark.parametrize("service, url, notice", [
    ("staging", None, True),
    ("dev", APIS["staging"], True),  # $MDF_API_URL sends it to staging
    ("staging", "http://127.0.0.1:8080", False),  # ... or elsewhere
    ("dev", None, False),
])
def test_staging_doi_notice_follows_where_the_submission_went(tiny_dataset, monkeypatch,
                                                              service, url, notice):
    if url:
        monkeypatch.setenv("MDF_API_URL", url)
    target = url or APIS[service]
    with respx.mock(base_url=target, assert_all_called=True) as mock:
        mock.get("/auth/check").respond(json={"is_submitter": True})
        mock.post("/submit").respond(json={"success": True, "source_id": "s", "version": "1"})
        result = CliRunner().invoke(app, ["publish", str(tiny_dataset), "--data-source",
                                          STAGED, "--service", service, "--token", "T"])
    assert result.exit_code == 0, result.output
    assert ("10.23677" in result.stderr) is notice
