"""A cache miss when MDF hangs, refuses connections or has a host that does not resolve:
one line says why, the dataset is built locally, the reason is in its provenance, and the
wait is bounded by ``LOOKUP_BUDGET_S`` (shortened here; ``bench/bench_mdf_fallback.py``
measures the real one). Runs in both environments.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import responses
from foundry_test_data import write_tiny
from mdf_stand_ins import (
    STUCK_HOST,
    UNRESOLVABLE,
    closed_port_url,
    silent_server,
    stuck_resolver,
)

import stembench.dataset_publish.build as build_module
from stembench.dataset_publish.loading import load
from stembench.dataset_publish.mdf import api as api_module
from stembench.dataset_publish.mdf import source
from stembench.dataset_publish.storage import cache
from stembench.errors import InputError


@pytest.fixture
def built(monkeypatch):
    presets = []

    def fake_build(path, *, preset):
        presets.append(preset)
        write_tiny(Path(path), arrays=False)

    monkeypatch.setattr(build_module, "build_dataset", fake_build)
    monkeypatch.setattr(source, "LOOKUP_BUDGET_S", 1.5)
    responses.add_passthru("http://")  # these requests go to real local sockets
    source.install_mdf_source()
    yield presets
    cache.unregister_source(source.mdf_source)


def _load_and_lines(tmp_path, caplog, preset="mini"):
    caplog.clear()
    with caplog.at_level(logging.INFO), load(preset=preset,
                                                   cache_dir=tmp_path / "c") as dataset:
        provenance = dataset.provenance
    lines = [r for r in caplog.records if r.name.startswith("stembench") and "MDF" in
             r.getMessage()]
    return provenance, lines


def test_hanging_mdf_is_given_up_after_one_timeout(tmp_path, caplog, built, monkeypatch):
    with silent_server() as (url, accepted):
        monkeypatch.setenv("MDF_API_URL", url)
        provenance, lines = _load_and_lines(tmp_path, caplog)
        assert len(accepted) == 1  # a read timeout is not retried
    assert built == ["mini"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    message = lines[0].getMessage()
    assert "accepted the connection but sent no answer within 1.5 s" in message
    assert "\n" not in message and message.endswith("building it locally")
    assert provenance["origin"] == "built" and provenance["mdf_api_url"] == url
    assert "sent no answer" in provenance["mdf_not_used"]


def test_a_dead_mdf_is_waited_on_once(tmp_path, caplog, built, monkeypatch):
    with silent_server() as (url, accepted):
        monkeypatch.setenv("MDF_API_URL", url)
        _load_and_lines(tmp_path, caplog, preset="mini")
        provenance, lines = _load_and_lines(tmp_path, caplog, preset="small")
        assert len(accepted) == 1
    assert built == ["mini", "small"]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert "MDF not asked" in lines[0].getMessage()
    assert "sent no answer" in provenance["mdf_not_used"]


def test_unresolvable_host_fails_at_once(tmp_path, caplog, built, monkeypatch):
    slept = []
    monkeypatch.setattr(api_module.time, "sleep", slept.append)
    monkeypatch.setenv("MDF_API_URL", UNRESOLVABLE)
    provenance, lines = _load_and_lines(tmp_path, caplog)
    assert slept == [] and built == ["mini"]  # a DNS failure is not retried
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert f"the host of {UNRESOLVABLE} does not resolve (DNS)" in lines[0].getMessage()
    assert "does not resolve" in provenance["mdf_not_used"]


def test_refused_connection_is_retried_within_the_budget(tmp_path, caplog, built,
                                                         monkeypatch):
    monkeypatch.setenv("MDF_API_URL", closed_port_url())
    # waits of 1 s then 2 s (mdf-cli's back-off); the second would pass a 2.9 s budget, which
    # leaves the first attempt and its wait almost 2 s of slack on a loaded machine
    monkeypatch.setattr(source, "LOOKUP_BUDGET_S", 2.9)
    provenance, lines = _load_and_lines(tmp_path, caplog)
    assert built == ["mini"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert "unreachable after 2 attempts" in lines[0].getMessage()
    assert "unreachable" in provenance["mdf_not_used"]


def test_production_host_refusing_is_reported_as_mdf_cli_does(tmp_path, caplog, built):
    import requests
    from foundry_test_data import APIS

    responses.add(responses.GET, f"{APIS['prod']}/search", body=requests.ConnectionError("no"))
    caplog.clear()
    with caplog.at_level(logging.INFO), load(preset="mini", cache_dir=tmp_path / "c",
                                                   service="prod") as dataset:
        assert dataset.provenance["mdf_service"] == "prod"
    assert len(responses.calls) == 1  # not retried: mdf-cli's fast failure for prod
    assert "production service is not available yet; set MDF_SERVICE=staging" in caplog.text


def test_a_resolver_that_never_answers_is_given_up_within_the_budget(tmp_path, caplog, built,
                                                                     monkeypatch):
    """requests' timeouts do not cover the host name lookup: a stuck resolver stand-in."""
    with stuck_resolver() as (asked, released):
        monkeypatch.setenv("MDF_API_URL", f"http://{STUCK_HOST}")
        provenance, lines = _load_and_lines(tmp_path, caplog)
        still_stuck = not released.is_set()
    assert asked == [STUCK_HOST] and still_stuck  # stembench stopped waiting, the lookup not
    assert built == ["mini"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert "gave no answer within 2.0 s (the host name did not resolve in time" in (
        provenance["mdf_not_used"])


@pytest.mark.parametrize("where", ["env", "config"])
def test_a_service_stembench_does_not_read_means_mdf_not_used(tmp_path, caplog, built,
                                                              monkeypatch, where):
    """mdf-cli accepts its developer backend `local` (config.py:108); stembench does not."""
    if where == "env":
        monkeypatch.setenv("MDF_SERVICE", "local")
    else:
        pytest.importorskip("mdf.core.config")  # mdf-cli's configuration: Foundry env
        config = tmp_path / "home" / ".config" / "mdf" / "config.json"
        config.parent.mkdir(parents=True)
        config.write_text('{"defaults": {"service": "local"}}', encoding="utf-8")
    provenance, lines = _load_and_lines(tmp_path, caplog)
    assert built == ["mini"] and len(responses.calls) == 0
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert "MDF service must be one of ['dev', 'prod', 'staging'], got 'local'" in (
        lines[0].getMessage())
    assert "local" in provenance["mdf_not_used"] and provenance["origin"] == "built"
    with pytest.raises(InputError, match="got 'local'"):  # a service the caller names
        load(preset="mini", cache_dir=tmp_path / "c2", service="local")
