"""The MDF service stembench reads from and publishes to is the one mdf-cli would use."""

from __future__ import annotations

import pytest
from foundry_test_data import APIS

from stembench.dataset_publish.mdf import services
from stembench.dataset_publish.mdf.api import MDFApiClient
from stembench.errors import InputError


def test_our_table_is_the_one_the_tests_record():
    assert services.MDF_API_URLS == APIS


def test_mdf_service_is_honoured_and_an_explicit_service_wins(monkeypatch):
    assert services.resolve_service() == "staging"
    monkeypatch.setenv("MDF_SERVICE", "Development")
    assert services.resolve_service() == "dev"
    assert services.resolve_service("production") == "prod"
    assert MDFApiClient().base_url == APIS["dev"]
    monkeypatch.setenv("MDF_API_URL", "http://127.0.0.1:9/")
    assert MDFApiClient(service="prod").base_url == "http://127.0.0.1:9"


def test_unknown_service_is_one_clear_line(monkeypatch):
    with pytest.raises(InputError, match=r"one of \['dev', 'prod', 'staging'\], got 'qa'$"):
        services.resolve_service("qa")
    monkeypatch.setenv("MDF_SERVICE", "qa")
    with pytest.raises(InputError, match=r"got 'qa' \(from \$MDF_SERVICE"):
        services.resolve_service()


def test_table_and_default_match_mdf_cli():
    backend = pytest.importorskip("mdf.core.backend_client")
    config = pytest.importorskip("mdf.core.config")
    theirs = {k: v for k, v in backend._V2_API_URLS.items() if k != "local"}
    assert theirs == services.MDF_API_URLS
    assert services.FALLBACK_DEFAULT_SERVICE == config.DEFAULT_SERVICE
    for service in services.MDF_API_URLS:
        assert backend._api_url_for_service(service) == services.api_url(service)


def test_default_follows_mdf_cli_when_it_flips_or_is_configured(monkeypatch, tmp_path):
    config = pytest.importorskip("mdf.core.config")
    monkeypatch.setattr(config, "DEFAULT_SERVICE", "prod")  # mdf-cli's cutover
    assert services.resolve_service() == "prod"
    config.GlobalConfig().set("defaults.service", "dev")  # `mdf config set defaults.service dev`
    assert services.resolve_service() == "dev"
    monkeypatch.setenv("MDF_SERVICE", "staging")
    assert services.resolve_service() == "staging"
