"""Service settings: read from STEMBENCH_SERVICE_* variables as their fields' types."""

from __future__ import annotations

from pathlib import Path

import pytest

from stembench.errors import InputError
from stembench.service.settings import ServiceSettings


def test_environment_values_are_read_as_their_types(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STEMBENCH_SERVICE_WORKERS", "3")
    monkeypatch.setenv("STEMBENCH_SERVICE_RUN_WORKER", "no")
    monkeypatch.setenv("STEMBENCH_SERVICE_LEASE_S", "2.5")
    monkeypatch.setenv("STEMBENCH_SERVICE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STEMBENCH_SERVICE_DATABASE_URL", "")  # empty: the default
    settings = ServiceSettings.from_env(executor="thread", workers=None)
    assert (settings.workers, settings.run_worker, settings.lease_s) == (3, False, 2.5)
    assert settings.data_dir == tmp_path and isinstance(settings.data_dir, Path)
    assert settings.executor == "thread" and settings.database_url is None
    assert ServiceSettings().workers == 2  # arguments only: the environment is from_env's


@pytest.mark.parametrize(("name", "value", "words"), [
    ("STEMBENCH_SERVICE_WORKERS", "many", "workers: Input should be a valid integer"),
    ("STEMBENCH_SERVICE_RUN_WORKER", "perhaps", "run_worker: Input should be a valid boolean"),
    ("STEMBENCH_SERVICE_EXECUTOR", "cloud", "executor: Input should be 'local', 'thread'"),
    ("STEMBENCH_SERVICE_WORKERS", "0", "workers must be >= 1"),
])
def test_a_bad_environment_value_is_one_clear_line(monkeypatch, name, value, words) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=words) as caught:
        ServiceSettings.from_env()
    assert "\n" not in str(caught.value)


def test_secrets_stay_out_of_the_repr() -> None:
    settings = ServiceSettings(globus_client_id="id", globus_client_secret="s3cret")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("name", ["globus_client_secret", "credentials_key", "database_url"])
def test_a_refused_secret_is_never_shown(name) -> None:
    secret = "postgresql://u:s3cret-value@db/x" if name == "database_url" else "s3cret-value"
    with pytest.raises(InputError, match=name) as caught:
        ServiceSettings(**{name: [secret]})  # not a string
    assert "s3cret-value" not in str(caught.value)
    with pytest.raises(InputError, match="got 'seven'"):  # other fields' values are shown
        ServiceSettings(workers="seven")
