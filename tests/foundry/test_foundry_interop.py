"""A Foundry user's calls with foundry-ml 1.2.2 itself, against recorded answers.

Runs in the Foundry environment. Globus Search, MDF v2, Globus Transfer and the MDF HTTPS
server are answered by ``responses`` (globus-sdk 3 and foundry-ml use ``requests``); the
shapes, and where each comes from, are documented in ``foundry_test_data``. The records
foundry-ml is shown are built from the payload mdf-cli builds (``v2_index_record``), and
the files sit where MDF v2 keeps them (``/mdf_open/<source_id>/<version>/``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import h5py
import numpy as np
import pytest
import responses
from foundry_test_data import (
    API,
    APIS,
    DOI,
    FILES_URL,
    GLOBUS_SEARCH_URL,
    NCSA,
    SOURCE_ID,
    globus_search,
    v2_card,
    v2_index_record,
    v2_result,
    v2_search,
    write_tiny,
)

import stembench.dataset_publish.build as build_module
from stembench.dataset_publish.loading import load
from stembench.dataset_publish.mdf.foundry_arrays import foundry_arrays_path
from stembench.dataset_publish.mdf.foundry_metadata import dataset_metadata
from stembench.dataset_publish.mdf.publish import build_payload, mdf_manifest
from stembench.dataset_publish.simulate.build import DATASET_VERSION
from stembench.dataset_publish.storage.cache import provenance_path
from stembench.dataset_publish.storage.manifest import manifest_sidecar_path
from stembench.errors import IntegrityError

foundry_ml = pytest.importorskip("foundry")
globus_sdk = pytest.importorskip("globus_sdk")
import stembench.foundry  # noqa: E402

README = Path(__file__).parents[2] / "README.md"
TRANSFER_LS = f"https://transfer.api.globus.org/v0.10/operation/endpoint/{NCSA}/ls"
V2_FOLDER = f"globus://{NCSA}/mdf_open/{SOURCE_ID}/1.1/"


def _globus_search(*records):
    """Globus Search as foundry-ml queries it: free text plus the fields it filters on."""

    def answer(request):
        query = parse_qs(urlparse(request.url).query)["q"][0]
        filters = dict(re.findall(r'([\w.]+):"([^"]+)"', query))
        text = re.sub(r'\s*(AND\s+)?[\w.]+:"[^"]+"', "", query).strip()
        hits = [r for r in records
                if filters.get("mdf.resource_type") == "dataset"
                and ("mdf.organizations" not in filters or filters["mdf.organizations"].lower()
                     in [o.lower() for o in r["mdf"]["organizations"]])
                and filters.get("dc.identifier.identifier", DOI) == DOI
                and all(word in json.dumps(r).lower() for word in text.lower().split())]
        return 200, {}, json.dumps(globus_search(*hits))

    responses.add_callback(responses.GET, GLOBUS_SEARCH_URL, callback=answer)


def _serve(*paths):
    for path in paths:
        for file in (path, manifest_sidecar_path(path)):
            responses.add(responses.GET, FILES_URL + file.name, body=file.read_bytes())


def _published(meta, api=API):
    responses.add(responses.GET, f"{api}/search", json=v2_search(v2_result(
        title_text=meta.dc["titles"][0]["title"])))
    responses.add(responses.GET, f"{api}/card/{SOURCE_ID}", json=v2_card())
    _serve(foundry_arrays_path(meta.path))


def _v2_payload(meta):
    """The submission mdf-cli builds for the dataset, files staged where v2 keeps them."""
    return build_payload(mdf_manifest(meta, data_sources=[V2_FOLDER]))


def _from_v2_blocks(meta, f):
    """A FoundryDataset made by foundry-ml's own constructor from the blocks v2 was sent."""
    payload = _v2_payload(meta)
    dc = v2_index_record(payload)["dc"]
    return foundry_ml.FoundryDataset(dataset_name=SOURCE_ID, datacite_entry=dc,
                                     foundry_schema=payload["extensions"]["foundry"],
                                     foundry_cache=f.foundry_cache)


def _assert_arrays(split, dataset_path):
    inputs, targets = split["input"], split["target"]
    assert sorted(inputs) == ["image_ids", "image_shapes", "imgs", "metadata"]
    assert sorted(targets) == ["column_elements", "column_types", "coords", "faint_coords",
                               "faint_types", "n_columns", "n_faint", "raw"]
    assert all(isinstance(v, np.ndarray) for v in [*inputs.values(), *targets.values()])
    with load(str(dataset_path)) as ours:
        assert [i.decode() for i in inputs["image_ids"]] == ours.ids
        for index, image in enumerate(ours):
            np.testing.assert_array_equal(inputs["imgs"][index], image.image)
            np.testing.assert_array_equal(targets["raw"][index], image.raw)
            np.testing.assert_array_equal(
                targets["coords"][index, : targets["n_columns"][index]], image.coords)
            assert inputs["metadata"]["pixel_size_angstrom"][index] == image.pixel_size
            assert inputs["metadata"]["material"][index].decode() == image.metadata["material"]


@pytest.fixture
def meta(tiny_dataset):
    return dataset_metadata(tiny_dataset, year=2026)


def test_foundry_ml_cannot_find_a_v2_record(meta, tmp_path, caplog):
    f = foundry_ml.Foundry(authorizers=stembench.foundry.public_authorizers(),
                           local_cache_dir=str(tmp_path / "fcache"))
    _globus_search()  # nothing in the legacy index
    with pytest.raises(foundry_ml.errors.DatasetNotFoundError):
        f.search("atom-locating-benchmark")
    assert f.get_dataset(DOI) is None
    responses.reset()
    _globus_search(v2_index_record(_v2_payload(meta)))  # every block v2 was sent, indexed
    assert f.get_dataset(DOI) is None  # no projects.foundry: foundry-ml gives up
    assert "missing a 'projects' section" in caplog.text
    with pytest.raises(foundry_ml.errors.DatasetNotFoundError):  # no organization "foundry"
        f.search("atom-locating-benchmark")
    responses.reset()
    named = build_payload(mdf_manifest(meta, data_sources=[V2_FOLDER], organization="Foundry"))
    _globus_search(v2_index_record(named))
    assert f.search("atom-locating-benchmark", as_list=True) == []  # found, then dropped
    said = _foundry_section()  # the README says what foundry-ml does
    assert "`Foundry().search(\"atom-locating-benchmark\")` raises foundry-ml's " \
           "`DatasetNotFoundError`" in said and "returns nothing" not in said
    assert "`get_dataset(doi)` logs \"missing a 'projects' section\" and returns `None`" in said


def test_foundry_ml_own_download_misses_v2_files(meta, tmp_path):
    auths = stembench.foundry.public_authorizers()
    auths["transfer"] = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer("TRANSFER-TOKEN"))
    f = foundry_ml.Foundry(authorizers=auths, local_cache_dir=str(tmp_path / "fcache"))
    responses.add(responses.GET, TRANSFER_LS, status=404, json={
        "code": "NotFound", "message": f"Path not found, Error (list)\nEndpoint: NCSA ({NCSA})",
        "request_id": "aaabbbccc", "resource": f"/operation/endpoint/{NCSA}/ls"})
    with pytest.raises(globus_sdk.TransferAPIError, match="NotFound"):
        _from_v2_blocks(meta, f).get_as_dict()
    listing = next(c.request for c in responses.calls if c.request.url.startswith(TRANSFER_LS))
    assert parse_qs(urlparse(listing.url).query)["path"] == [f"/foundry/{SOURCE_ID}/"]


def test_prefetch_puts_files_where_the_foundry_object_reads(meta, tmp_path):
    _published(meta)
    f = foundry_ml.Foundry(authorizers=stembench.foundry.public_authorizers(),
                           local_cache_dir=str(tmp_path / "elsewhere"))  # not $FOUNDRY_...
    dataset = _from_v2_blocks(meta, f)
    folder = stembench.foundry.prefetch(dataset)
    assert folder == tmp_path / "elsewhere" / SOURCE_ID
    data = dataset.get_as_dict()
    assert list(data) == ["mini"]
    _assert_arrays(data["mini"], meta.path)
    assert not any("transfer.api" in c.request.url for c in responses.calls)
    assert all("Authorization" not in c.request.headers for c in responses.calls)
    assert not (tmp_path / "foundry-cache").exists()


def test_prefetch_refuses_a_tampered_file(meta, tmp_path):
    responses.add(responses.GET, f"{APIS['dev']}/card/{SOURCE_ID}", json=v2_card())
    arrays = foundry_arrays_path(meta.path)
    tampered = tmp_path / "t.h5"
    shutil.copyfile(arrays, tampered)
    with h5py.File(tampered, "r+") as handle:
        handle["coords"][0, 0, 0] += 0.25
    responses.add(responses.GET, FILES_URL + manifest_sidecar_path(arrays).name,
                  body=manifest_sidecar_path(arrays).read_bytes())
    responses.add(responses.GET, FILES_URL + arrays.name, body=tampered.read_bytes())
    f = foundry_ml.Foundry(authorizers=stembench.foundry.public_authorizers(),
                           local_cache_dir=str(tmp_path / "fcache"))
    with pytest.raises(IntegrityError, match="SHA-256"):
        stembench.foundry.prefetch(_from_v2_blocks(meta, f), service="dev")
    assert list((tmp_path / "fcache" / SOURCE_ID).iterdir()) == []


def test_dataset_is_a_foundry_dataset_in_the_given_foundry_cache(meta, tmp_path, monkeypatch):
    monkeypatch.setenv("MDF_SERVICE", "dev")
    _published(meta, api=APIS["dev"])
    f = foundry_ml.Foundry(authorizers=stembench.foundry.public_authorizers(),
                           local_cache_dir=str(tmp_path / "mine"))
    dataset = stembench.foundry.dataset("atom-locating-benchmark", preset="mini", foundry=f)
    assert isinstance(dataset, foundry_ml.FoundryDataset)
    arrays = tmp_path / "mine" / SOURCE_ID / "mini.foundry.h5"
    provenance = json.loads(provenance_path(arrays).read_text(encoding="utf-8"))
    assert provenance == {"mdf_service": "dev", "mdf_api_url": APIS["dev"], "origin": "mdf",
                          "mdf_source_id": SOURCE_ID, "mdf_version": "1.1",
                          "mdf_url": FILES_URL + "mini.foundry.h5"}
    _assert_arrays(dataset.get_as_dict()["mini"], meta.path)


def test_one_line_load_from_mdf(meta, tmp_path):
    _published(meta)
    data = stembench.foundry.load("atom-locating-benchmark", preset="mini")
    assert list(data) == ["mini"]
    _assert_arrays(data["mini"], meta.path)
    cached = Path(tmp_path / "foundry-cache" / SOURCE_ID / "mini.foundry.h5")
    assert cached.read_bytes() == foundry_arrays_path(meta.path).read_bytes()
    calls = len(responses.calls)
    stembench.foundry.load("atom-locating-benchmark", preset="mini")  # verified cache copy
    assert [c.request.url.split("?")[0] for c in responses.calls[calls:]] == [
        f"{API}/search", f"{API}/card/{SOURCE_ID}"]


def test_one_line_load_reads_the_given_service(meta):
    _published(meta, api=APIS["prod"])
    _assert_arrays(stembench.foundry.load("atom-locating-benchmark", preset="mini",
                                          service="prod")["mini"], meta.path)
    assert {c.request.url.split("?")[0] for c in responses.calls if "/card/" in c.request.url
            } == {f"{APIS['prod']}/card/{SOURCE_ID}"}


def test_one_line_load_offline_builds_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMBENCH_OFFLINE", "1")
    built = []

    def fake_build(path, *, preset):
        built.append(preset)
        write_tiny(Path(path), arrays=False, preset=f"build {len(built)}")

    monkeypatch.setattr(build_module, "build_dataset", fake_build)
    written = []
    write = stembench.foundry.write_foundry_arrays
    monkeypatch.setattr(stembench.foundry, "write_foundry_arrays",
                        lambda source, destination: written.append(source) or write(
                            source, destination=destination))
    data = stembench.foundry.load("atom-locating-benchmark", preset="mini")
    assert built == ["mini"] and len(responses.calls) == 0
    local = tmp_path / "stembench-cache" / "atom-locating-benchmark" / DATASET_VERSION / "mini.h5"
    _assert_arrays(data["mini"], local)
    local_arrays = (tmp_path / "foundry-cache" / "atom_locating_benchmark_mini_local"
                    / "mini.foundry.h5")
    provenance = json.loads(provenance_path(local_arrays).read_text(encoding="utf-8"))
    assert provenance["origin"] == "local" and provenance["made_from"] == str(local)
    assert provenance["mdf_not_used"] == "STEMBENCH_OFFLINE is set"
    assert provenance["made_from_provenance"]["origin"] == "built"
    stembench.foundry.load("atom-locating-benchmark", preset="mini")
    assert written == [local]  # the intact array file of the same source is reused
    load("atom-locating-benchmark", preset="mini", rebuild=True).close()  # another source
    _assert_arrays(stembench.foundry.load("atom-locating-benchmark", preset="mini")["mini"],
                   local)
    assert written == [local, local] and built == ["mini", "mini"]


def _foundry_section(*, flat: bool = True) -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## For Foundry users", 1)[1].split("\n## ", 1)[0]
    return " ".join(section.split()) if flat else section


def test_only_get_as_dict_reads_in_foundry_ml_1_2_2(meta, tmp_path):
    _published(meta)
    f = foundry_ml.Foundry(authorizers=stembench.foundry.public_authorizers(),
                           local_cache_dir=str(tmp_path / "mine"))
    dataset = stembench.foundry.dataset("atom-locating-benchmark", preset="mini", foundry=f)
    _assert_arrays(dataset.get_as_dict()["mini"], meta.path)
    _assert_arrays(dataset.load()["mini"], meta.path)
    for reader in ("get_as_torch", "get_as_tensorflow"):
        with pytest.raises(TypeError, match="as_hdf5"):  # foundry-ml 1.2.2's own defect
            getattr(dataset, reader)("mini")
    assert not hasattr(dataset, "load_as_torch")
    said = _foundry_section()
    assert ("Only `get_as_dict()` (and its alias `load()`) works in foundry-ml 1.2.2**: "
            "`get_as_torch()` and `get_as_tensorflow()` raise `TypeError`") in said
    docstring = " ".join(str(stembench.foundry.dataset.__doc__).split())
    assert "``get_as_torch()`` and ``get_as_tensorflow()`` raise ``TypeError``" in docstring
    for text in (said, docstring):  # never offered as a reader
        assert "load_as_torch()" not in text and "load_as_torch, ...)" not in text


def _readme_block() -> str:
    section = _foundry_section(flat=False)
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README section 'For Foundry users' has no python block"
    return "\n".join(blocks)


def test_readme_for_foundry_users_runs_as_written(tmp_path, monkeypatch):
    dataset = write_tiny(tmp_path / "pub" / "standard.h5")
    meta = dataset_metadata(dataset, year=2026)
    _published(meta)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_block(), str(README), "exec"), namespace)
    assert namespace["images"].shape == (3, 16, 20)
    assert namespace["coords"].shape == (3, 5, 2)
    assert namespace["data"].keys() == namespace["same"].keys() == {"standard"}
    np.testing.assert_array_equal(namespace["same"]["standard"]["target"]["coords"],
                                  namespace["coords"])
