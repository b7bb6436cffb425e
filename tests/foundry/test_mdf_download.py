"""Finding and downloading the dataset through MDF v2's public API, against recorded answers."""

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
from foundry_test_data import (
    API,
    FILES_URL,
    FOLDER,
    NCSA,
    SOURCE_ID,
    title,
    v2_card,
    v2_result,
    v2_search,
    write_tiny,
)

import stembench.dataset_publish.build as build_module
from stembench.dataset_publish.loading import load
from stembench.dataset_publish.mdf import api as api_module
from stembench.dataset_publish.mdf.api import MDFApiClient, MDFUnavailableError
from stembench.dataset_publish.mdf.download import (
    TRANSFER_TIMEOUT,
    download_verified,
    find_published,
)
from stembench.dataset_publish.mdf.source import (
    PublishedCopyRefusedWarning,
    install_mdf_source,
    mdf_source,
)
from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.storage import cache
from stembench.dataset_publish.storage.manifest import manifest_sidecar_path
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import IntegrityError


@pytest.fixture
def client():
    """The real client, with its retries kept but never sleeping."""
    return MDFApiClient(max_retries=2, max_sleep=0)


def _serve(path: Path, *, body: bytes | None = None) -> None:
    sidecar = manifest_sidecar_path(path)
    responses.add(responses.GET, FILES_URL + sidecar.name, body=sidecar.read_bytes())
    responses.add(responses.GET, FILES_URL + path.name,
                  body=path.read_bytes() if body is None else body)


def _published() -> None:
    responses.add(responses.GET, f"{API}/search", json=v2_search(v2_result()))
    responses.add(responses.GET, f"{API}/card/{SOURCE_ID}", json=v2_card())


def test_found_through_search_and_card(client):
    responses.add(responses.GET, f"{API}/search", json=v2_search(
        v2_result(source_id="other", title_text="atom-locating-benchmark mini 0.9.0: old"),
        v2_result(source_id="older", version="1.0"),
        v2_result(),
        v2_result(source_id="std", title_text=title(preset="standard"))))
    responses.add(responses.GET, f"{API}/card/{SOURCE_ID}", json=v2_card())
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    assert record.source_id == SOURCE_ID and record.mdf_version == "1.1"
    assert record.files == {"mini.h5": FILES_URL + "mini.h5",
                            "mini.h5.manifest.json": FILES_URL + "mini.h5.manifest.json"}
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert query == {"q": [f"{DATASET_NAME} mini {DATASET_VERSION}"], "type": ["datasets"],
                     "limit": ["20"]}
    assert all("Authorization" not in call.request.headers for call in responses.calls)


def test_card_with_file_uris_and_https_sources(client):
    responses.add(responses.GET, f"{API}/search", json=v2_search(v2_result()))
    responses.add(responses.GET, f"{API}/card/{SOURCE_ID}", json=v2_card(data_sources=[
        f"globus://{NCSA}{FOLDER}mini.h5", "https://example.org/x/mini.h5.manifest.json",
        "globus://another-collection/mini.h5"]))
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    assert record.files == {"mini.h5": FILES_URL + "mini.h5",
                            "mini.h5.manifest.json": "https://example.org/x/mini.h5.manifest.json"}


def test_not_found(client):
    responses.add(responses.GET, f"{API}/search", json=v2_search(
        v2_result(title_text="something else")))
    assert find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                          client=client) is None
    responses.replace(responses.GET, f"{API}/search", json=v2_search(v2_result()))
    responses.add(responses.GET, f"{API}/card/{SOURCE_ID}", status=404,
                  json={"success": False, "detail": "Dataset not found"})
    assert find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                          client=client) is None


def test_server_error_is_retried_then_reported(client):
    responses.add(responses.GET, f"{API}/search", status=503, json={"detail": "down"})
    with pytest.raises(MDFUnavailableError, match="HTTP 503"):
        find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION, client=client)
    assert len(responses.calls) == 3  # first try and max_retries=2


def test_429_honoured_then_answered(client):
    responses.add(responses.GET, f"{API}/search", status=429, headers={"Retry-After": "0"},
                  json={"detail": "slow down"})
    responses.add(responses.GET, f"{API}/search", json=v2_search(v2_result()))
    responses.add(responses.GET, f"{API}/card/{SOURCE_ID}", json=v2_card())
    assert find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                          client=client).source_id == SOURCE_ID
    assert [c.response.status_code for c in responses.calls] == [429, 200, 200]


def test_download_verified_places_both_files(tiny_dataset, tmp_path, client):
    _published()
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    _serve(tiny_dataset)
    target = tmp_path / "cache" / "mini.h5"
    download_verified(record, "mini.h5", target, expected_name=DATASET_NAME,
                      expected_version=DATASET_VERSION)
    assert sorted(p.name for p in target.parent.iterdir()) == ["mini.h5",
                                                               "mini.h5.manifest.json"]
    assert target.read_bytes() == tiny_dataset.read_bytes()


def _tampered_copy(source: Path, tmp_path: Path) -> bytes:
    copy = tmp_path / "tampered.h5"
    shutil.copyfile(source, copy)
    with h5py.File(copy, "r+") as handle:
        handle["coords/sto-noise-2"][0, 0] += 0.5  # the stored manifest keeps the old hash
    return copy.read_bytes()


@pytest.mark.parametrize("damage, message", [
    ("tampered", "do not match their SHA-256"),
    ("cut short", "is truncated: "),  # the connection ends before Content-Length bytes
    ("short file", "not a readable dataset"),  # a complete answer holding half the file
])
def test_bad_download_rejected_and_cache_left_clean(tiny_dataset, tmp_path, client, damage,
                                                    message):
    _published()
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    data = tiny_dataset.read_bytes()
    if damage == "cut short":
        sidecar = manifest_sidecar_path(tiny_dataset)
        responses.add(responses.GET, FILES_URL + sidecar.name, body=sidecar.read_bytes())
        responses.add(responses.GET, FILES_URL + "mini.h5", body=data[: len(data) // 2],
                      headers={"Content-Length": str(len(data))},
                      auto_calculate_content_length=False)
    else:
        _serve(tiny_dataset, body=_tampered_copy(tiny_dataset, tmp_path)
               if damage == "tampered" else data[: len(data) // 2])
    target = tmp_path / "cache" / "mini.h5"
    with pytest.raises(IntegrityError, match=message):
        download_verified(record, "mini.h5", target, expected_name=DATASET_NAME,
                          expected_version=DATASET_VERSION)
    assert list(target.parent.iterdir()) == []


def test_manifest_of_another_version_rejected(tmp_path, client):
    other = write_tiny(tmp_path / "other" / "mini.h5", version="0.0.1", arrays=False)
    _published()
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    _serve(other)
    target = tmp_path / "cache" / "mini.h5"
    with pytest.raises(IntegrityError, match=r"version '0\.0\.1'"):
        download_verified(record, "mini.h5", target, expected_name=DATASET_NAME,
                          expected_version=DATASET_VERSION)
    assert list(target.parent.iterdir()) == []


@pytest.fixture
def mdf_registered(monkeypatch):
    calls = []

    def fake_build(path, *, preset):
        calls.append(preset)
        write_tiny(Path(path), arrays=False)
        return path

    monkeypatch.setattr(build_module, "build_dataset", fake_build)
    monkeypatch.setattr(api_module.time, "sleep", lambda seconds: None)
    install_mdf_source()
    yield calls
    cache.unregister_source(mdf_source)


def test_load_downloads_from_mdf_instead_of_building(tiny_dataset, tmp_path, mdf_registered):
    _published()
    _serve(tiny_dataset)
    with load(preset="mini", cache_dir=tmp_path / "c") as dataset:
        assert dataset.ids == ["sto-noise-1", "sto-noise-2", "ws2-ref-0"]
        image = dataset["sto-noise-2"]
    with open_dataset(tiny_dataset) as original:
        expected = original["sto-noise-2"]
    np.testing.assert_array_equal(image.image, expected.image)
    np.testing.assert_array_equal(image.coords, expected.coords)
    assert mdf_registered == []
    cached = tmp_path / "c" / DATASET_NAME / DATASET_VERSION / "mini.h5"
    assert cached.read_bytes() == tiny_dataset.read_bytes()


@pytest.mark.parametrize("failure", ["network", "server", "not-found"])
def test_load_builds_locally_when_mdf_cannot_serve(tiny_dataset, tmp_path, mdf_registered,
                                                   caplog, failure):
    if failure == "network":
        responses.add(responses.GET, f"{API}/search", body=requests.ConnectionError("no route"))
    elif failure == "server":
        responses.add(responses.GET, f"{API}/search", status=500, json={"detail": "boom"})
    else:
        responses.add(responses.GET, f"{API}/search", json=v2_search())
    with caplog.at_level(logging.INFO), load(preset="mini",
                                                   cache_dir=tmp_path / "c") as dataset:
        assert len(dataset) == 3
        provenance = dataset.provenance
    assert mdf_registered == ["mini"]
    expected = {"network": "unreachable after 3 attempts", "server": "HTTP 500: boom",
                "not-found": f"MDF staging ({API}) has no published"}[failure]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("stembench")
             and "MDF" in r.getMessage()]
    assert len(lines) == 1 and expected in lines[0] and "\n" not in lines[0]
    assert provenance["origin"] == "built" and expected in provenance["mdf_not_used"]
    assert provenance["mdf_service"] == "staging" and provenance["mdf_api_url"] == API
    assert "mdf_refused" not in provenance


@pytest.mark.parametrize("failure", ["tampered", "truncated"])
def test_refused_published_copy_is_a_warning_and_in_the_provenance(tiny_dataset, tmp_path,
                                                                   mdf_registered, failure):
    _published()
    data = tiny_dataset.read_bytes()
    _serve(tiny_dataset, body=_tampered_copy(tiny_dataset, tmp_path)
           if failure == "tampered" else data[: len(data) // 3])
    expected = {"tampered": "SHA-256", "truncated": "truncated or corrupted"}[failure]
    with pytest.warns(PublishedCopyRefusedWarning, match=expected) as warned:
        dataset = load(preset="mini", cache_dir=tmp_path / "c")
    with dataset:
        assert dataset.provenance["origin"] == "built"
        assert "published on MDF staging was refused" in dataset.provenance["mdf_refused"]
        assert expected in dataset.provenance["mdf_refused"]
    assert mdf_registered == ["mini"] and len(warned) == 1
    with load(preset="mini", cache_dir=tmp_path / "c") as again:  # kept with the file
        assert again.provenance == dataset.provenance


def test_provenance_names_the_service_and_record(tiny_dataset, tmp_path, mdf_registered):
    _published()
    _serve(tiny_dataset)
    with load(preset="mini", cache_dir=tmp_path / "c") as dataset:
        assert dataset.provenance == {
            "origin": "mdf", "mdf_service": "staging", "mdf_api_url": API,
            "mdf_source_id": SOURCE_ID, "mdf_version": "1.1",
            "mdf_url": FILES_URL + "mini.h5"}


def test_offline_switch_asks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMBENCH_OFFLINE", "1")
    request = cache.CacheRequest(DATASET_NAME, DATASET_VERSION, "mini", tmp_path / "m.h5")
    assert mdf_source(request) is False
    assert len(responses.calls) == 0


def test_a_foundry_cache_is_not_a_source_of_dataset_files(tiny_dataset, tmp_path,
                                                        mdf_registered):
    """stembench.foundry writes only <preset>.foundry.h5 there; the miss goes to MDF."""
    foundry_copy = tmp_path / "foundry-cache" / SOURCE_ID / "mini.h5"
    foundry_copy.parent.mkdir(parents=True)
    shutil.copyfile(tiny_dataset, foundry_copy)
    _published()
    _serve(tiny_dataset)
    with load(preset="mini", cache_dir=tmp_path / "c") as dataset:
        assert dataset.provenance["origin"] == "mdf"
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        f"{API}/search", f"{API}/card/{SOURCE_ID}", FILES_URL + "mini.h5.manifest.json",
        FILES_URL + "mini.h5"]


def test_the_file_transfer_is_not_cut_by_the_lookup_deadline(tiny_dataset, tmp_path):
    """The lookup used its whole budget; the HDF5 file still downloads, bounded per read."""
    now = [0.0]
    client = MDFApiClient(deadline_s=8.0, clock=lambda: now[0])
    _published()
    sidecar = manifest_sidecar_path(tiny_dataset)

    def slow_manifest(request):
        now[0] += 7.9  # the search, the card and the manifest took nearly 8 s
        return 200, {}, sidecar.read_bytes()

    responses.add_callback(responses.GET, FILES_URL + sidecar.name, callback=slow_manifest)
    responses.add(responses.GET, FILES_URL + "mini.h5", body=tiny_dataset.read_bytes())
    record = find_published(DATASET_NAME, preset="mini", version=DATASET_VERSION,
                            client=client)
    target = tmp_path / "cache" / "mini.h5"
    download_verified(record, "mini.h5", target, expected_name=DATASET_NAME,
                      expected_version=DATASET_VERSION, client=client)
    assert target.read_bytes() == tiny_dataset.read_bytes()
    timeouts = [c.request.req_kwargs["timeout"] for c in responses.calls]
    assert timeouts[-1] == TRANSFER_TIMEOUT == (10.0, 30.0)  # (connect, each read)
    assert all(t <= 8.0 for t in timeouts[:-1])  # the lookup's, within the deadline
    now[0] += 1.0
    with pytest.raises(MDFUnavailableError, match="no usable answer within 8 s"):
        client.get("/search")  # the lookup itself stays bounded


@pytest.mark.parametrize("which", ["mini.h5.manifest.json", "mini.h5"])
@pytest.mark.parametrize("status", [401, 403])
def test_a_file_behind_a_login_is_said_so(tiny_dataset, tmp_path, mdf_registered, caplog,
                                          which, status):
    _published()
    other = "mini.h5" if which != "mini.h5" else "mini.h5.manifest.json"
    served = tiny_dataset if other == "mini.h5" else manifest_sidecar_path(tiny_dataset)
    responses.add(responses.GET, FILES_URL + other, body=served.read_bytes())
    responses.add(responses.GET, FILES_URL + which, status=status,
                  body="<html>Globus login required</html>")
    with caplog.at_level(logging.WARNING), load(preset="mini",
                                                      cache_dir=tmp_path / "c") as dataset:
        reason = dataset.provenance["mdf_not_used"]
    assert mdf_registered == ["mini"]
    assert f"GET {FILES_URL}{which} answered HTTP {status}: the file is not public" in reason
    assert "needs a Globus login" in reason and "unavailable" not in reason
    assert len([r for r in caplog.records if "needs a Globus login" in r.getMessage()]) == 1
