"""Search, file listing and verified atomic download from MDF, all mocked with responses."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import h5py
import numpy as np
import pytest
import requests
import responses
from foundry_test_data import SEARCH_URL, SOURCE_ID, search_record, search_response, write_tiny

import stembench.dataset_publish.build as build_module
from stembench.dataset_publish import cache
from stembench.dataset_publish.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.foundry_source import install_mdf_source, mdf_source
from stembench.dataset_publish.manifest import manifest_sidecar_path
from stembench.dataset_publish.mdf_download import (
    MDFUnavailableError,
    download_verified,
    find_published,
    list_files,
)
from stembench.dataset_publish.storage import open_dataset
from stembench.errors import IntegrityError

FILES_URL = f"https://data.materialsdatafacility.org/foundry/{SOURCE_ID}/"
LS_URL = ("https://transfer.api.globus.org/v0.10/operation/endpoint/"
          "82f1b5c6-6e9b-11e5-ba47-22000b92c6ec/ls")


def _serve(path: Path, *, body: bytes | None = None) -> None:
    sidecar = manifest_sidecar_path(path)
    responses.add(responses.GET, FILES_URL + sidecar.name, body=sidecar.read_bytes())
    responses.add(responses.GET, FILES_URL + path.name,
                  body=path.read_bytes() if body is None else body)


def _record():
    responses.add(responses.GET, SEARCH_URL, json=search_response(search_record()))
    record = find_published("atom_locating_benchmark_mini", version=DATASET_VERSION)
    assert record is not None
    return record


def test_search_picks_newest_record_of_the_version():
    responses.add(responses.GET, SEARCH_URL, json=search_response(
        search_record(source_id="atom_locating_benchmark_mini_v1.1", mdf_version="1.1"),
        search_record(source_id="atom_locating_benchmark_mini_v2.1", mdf_version="2.1"),
        search_record(source_id="atom_locating_benchmark_mini_v3.1", mdf_version="3.1",
                      version="0.9.0"),
        search_record(source_id="other_v9.1", mdf_version="9.1", source_name="other")))
    record = find_published("atom_locating_benchmark_mini", version=DATASET_VERSION)
    assert record.source_id == "atom_locating_benchmark_mini_v2.1"
    assert record.folder == "/foundry/atom_locating_benchmark_mini_v2.1/"
    assert record.url("mini.h5") == ("https://data.materialsdatafacility.org/foundry/"
                                     "atom_locating_benchmark_mini_v2.1/mini.h5")
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert query["q"] == ['mdf.source_name:"atom_locating_benchmark_mini" AND '
                          'mdf.resource_type:"dataset"']
    assert query["advanced"] == ["true"]
    assert query["limit"] == ["20"]
    assert "Authorization" not in responses.calls[0].request.headers


def test_search_without_match_and_search_failure():
    responses.add(responses.GET, SEARCH_URL, json=search_response())
    assert find_published("atom_locating_benchmark_mini", version=DATASET_VERSION) is None
    responses.replace(responses.GET, SEARCH_URL, status=503, json={"message": "down"})
    with pytest.raises(MDFUnavailableError, match="Globus Search"):
        find_published("atom_locating_benchmark_mini", version=DATASET_VERSION)


def test_file_listing_from_splits_and_from_transfer():
    record = _record()
    assert list_files(record) == {"mini.h5": None, "mini.h5.manifest.json": None}
    globus_sdk = pytest.importorskip("globus_sdk")
    responses.add(responses.GET, LS_URL, json={
        "DATA_TYPE": "file_list", "path": record.folder, "DATA": [
            {"DATA_TYPE": "file", "name": "mini.h5", "type": "file", "size": 1234},
            {"DATA_TYPE": "file", "name": "mini.h5.manifest.json", "type": "file", "size": 56},
            {"DATA_TYPE": "file", "name": "sub", "type": "dir", "size": 0}]})
    sizes = list_files(record, authorizer=globus_sdk.AccessTokenAuthorizer("TOKEN"))
    assert sizes == {"mini.h5": 1234, "mini.h5.manifest.json": 56}
    request = responses.calls[-1].request
    assert request.headers["Authorization"] == "Bearer TOKEN"
    assert parse_qs(urlparse(request.url).query)["path"] == [record.folder]


def test_download_verified_places_both_files(tiny_dataset, tmp_path):
    record = _record()
    _serve(tiny_dataset)
    target = tmp_path / "cache" / "mini.h5"
    download_verified(record, "mini.h5", target, expected_name=DATASET_NAME,
                      sizes={"mini.h5": tiny_dataset.stat().st_size})
    assert sorted(p.name for p in target.parent.iterdir()) == ["mini.h5",
                                                               "mini.h5.manifest.json"]
    assert target.read_bytes() == tiny_dataset.read_bytes()


def _corrupted_copy(source: Path, tmp_path: Path) -> bytes:
    copy = tmp_path / "corrupt.h5"
    shutil.copyfile(source, copy)
    with h5py.File(copy, "r+") as handle:
        handle["coords/sto-noise-2"][0, 0] += 0.5  # the stored manifest keeps the old hash
    return copy.read_bytes()


@pytest.mark.parametrize("damage", ["corrupted", "truncated", "size"])
def test_bad_download_rejected_and_cache_left_clean(tiny_dataset, tmp_path, damage):
    record = _record()
    data = tiny_dataset.read_bytes()
    body = {"corrupted": _corrupted_copy(tiny_dataset, tmp_path),
            "truncated": data[: len(data) // 2], "size": data}[damage]
    _serve(tiny_dataset, body=body)
    sizes = {"mini.h5": len(data) + 10} if damage == "size" else None
    target = tmp_path / "cache" / "mini.h5"
    message = {"corrupted": "do not match their SHA-256", "truncated": "truncated",
               "size": "truncated or padded"}[damage]
    with pytest.raises(IntegrityError, match=message):
        download_verified(record, "mini.h5", target, expected_name=DATASET_NAME, sizes=sizes)
    assert list(target.parent.iterdir()) == []


def test_manifest_of_another_version_rejected(tmp_path):
    other = write_tiny(tmp_path / "other" / "mini.h5", version="0.0.1")
    record = _record()
    _serve(other)
    target = tmp_path / "cache" / "mini.h5"
    with pytest.raises(IntegrityError, match=r"version '0\.0\.1'"):
        download_verified(record, "mini.h5", target, expected_name=DATASET_NAME)
    assert list(target.parent.iterdir()) == []


@pytest.fixture
def mdf_registered(monkeypatch):
    calls = []

    def fake_build(path, *, preset):
        calls.append(preset)
        write_tiny(Path(path))
        return path

    monkeypatch.setattr(build_module, "build_dataset", fake_build)
    install_mdf_source()
    yield calls
    cache.unregister_source(mdf_source)


def test_load_downloads_from_mdf_instead_of_building(tiny_dataset, tmp_path, mdf_registered):
    responses.add(responses.GET, SEARCH_URL, json=search_response(search_record()))
    _serve(tiny_dataset)
    with cache.load(preset="mini", cache_dir=tmp_path / "c") as dataset:
        assert dataset.ids == ["sto-noise-1", "sto-noise-2", "ws2-ref-0"]
        image = dataset["sto-noise-2"]
    with open_dataset(tiny_dataset) as original:
        expected = original["sto-noise-2"]
    np.testing.assert_array_equal(image.image, expected.image)
    np.testing.assert_array_equal(image.coords, expected.coords)
    assert mdf_registered == []
    cached = tmp_path / "c" / DATASET_NAME / DATASET_VERSION / "mini.h5"
    assert cached.read_bytes() == tiny_dataset.read_bytes()


def test_network_failure_falls_back_to_building(tmp_path, mdf_registered, caplog):
    responses.add(responses.GET, SEARCH_URL, body=requests.ConnectionError("no route"))
    with caplog.at_level(logging.WARNING), cache.load(preset="mini",
                                                      cache_dir=tmp_path / "c") as dataset:
        assert len(dataset) == 3
    assert mdf_registered == ["mini"]
    assert "MDF unavailable" in caplog.text


def test_corrupted_download_falls_back_to_building(tiny_dataset, tmp_path, mdf_registered):
    responses.add(responses.GET, SEARCH_URL, json=search_response(search_record()))
    _serve(tiny_dataset, body=_corrupted_copy(tiny_dataset, tmp_path))
    with cache.load(preset="mini", cache_dir=tmp_path / "c") as dataset:
        assert len(dataset) == 3
    assert mdf_registered == ["mini"]


def test_offline_switch_asks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMBENCH_OFFLINE", "1")
    request = cache.CacheRequest(DATASET_NAME, DATASET_VERSION, "mini", tmp_path / "m.h5")
    assert mdf_source(request) is False
    assert len(responses.calls) == 0


def test_foundry_cache_copy_used_without_network(tiny_dataset, tmp_path):
    foundry_copy = tmp_path / "foundry-cache" / SOURCE_ID / "mini.h5"
    foundry_copy.parent.mkdir(parents=True)
    shutil.copyfile(tiny_dataset, foundry_copy)
    request = cache.CacheRequest(DATASET_NAME, DATASET_VERSION, "mini", tmp_path / "c" / "m.h5")
    assert mdf_source(request) is True
    assert len(responses.calls) == 0
    assert request.path.read_bytes() == tiny_dataset.read_bytes()
    assert manifest_sidecar_path(request.path).is_file()
