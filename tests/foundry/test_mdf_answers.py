"""One set of recorded MDF v2 answers (bare and API Gateway envelopes, every service), read
by our reader in both environments and by mdf-cli's own ``BackendClient`` in the Foundry
environment: each answer means the same to both.

Our reader uses ``requests`` (answered by ``responses``); ``BackendClient`` uses ``httpx``
(answered by ``respx``).
"""

from __future__ import annotations

import time

import pytest
import responses
from foundry_test_data import APIS, SOURCE_ID, recorded_answers

from stembench.dataset_publish.mdf.api import MDFApiClient, MDFUnavailableError

ANSWERS = recorded_answers()
IDS = [answer["id"] for answer in ANSWERS]


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # retries of 503, both clients


def _ours(answer):
    responses.add(responses.GET, APIS[answer["service"]] + answer["route"],
                  status=answer["status"], body=answer["text"],
                  content_type="application/json")
    client = MDFApiClient(service=answer["service"])
    try:
        got = client.get(answer["route"], {"q": "atom-locating-benchmark"})
    except MDFUnavailableError:
        return "error", None
    return ("not found", None) if got is None else ("ok", got)


@pytest.mark.parametrize("answer", ANSWERS, ids=IDS)
def test_our_reader_takes_each_recorded_answer(answer):
    assert _ours(answer) == answer["expect"]
    retried = answer["status"] == 503
    assert len(responses.calls) == (4 if retried else 1)  # as BackendClient: 3 retries


@pytest.mark.parametrize("answer", ANSWERS, ids=IDS)
def test_mdf_cli_takes_each_recorded_answer_the_same_way(answer):
    backend = pytest.importorskip("mdf.core.backend_client")
    errors = pytest.importorskip("mdf.core.errors")
    respx = pytest.importorskip("respx")
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(APIS[answer["service"]] + answer["route"]).respond(
            answer["status"], text=answer["text"], headers={"Content-Type": "application/json"})
        client = backend.BackendClient(base_url=backend._api_url_for_service(answer["service"]))
        if answer["route"] == "/search":
            result = client.search("atom-locating-benchmark", search_type="datasets")
        else:
            result = client.get_card(SOURCE_ID)
        client.close()
    if errors.is_success(result):
        theirs = ("ok", dict(result))
    elif errors.status_code_of(result) == 404:
        theirs = ("not found", None)
    else:
        theirs = ("error", None)
    assert theirs == answer["expect"]
    assert route.call_count == (4 if answer["status"] == 503 else 1)
    assert _ours(answer) == theirs
