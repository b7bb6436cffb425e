"""Foundry/DataCite metadata generated from a dataset file, validated in both environments."""

from __future__ import annotations

import json
import math

import h5py
import jsonschema
import pytest
from foundry_test_data import write_tiny

from stembench.dataset_publish.mdf.foundry_arrays import foundry_arrays_path
from stembench.dataset_publish.mdf.foundry_metadata import (
    FOUNDRY_JSON_SCHEMA,
    METADATA_UNITS,
    dataset_metadata,
    source_name_for,
    validate_foundry_metadata,
)
from stembench.dataset_publish.storage.manifest import manifest_sidecar_path
from stembench.dataset_publish.storage.stembench_layout import METADATA_FIELDS
from stembench.errors import DatasetError, InputError


def _key(meta, name):
    return next(k for k in meta.foundry["keys"] if k["key"] == [name])


def test_foundry_block_lists_one_key_per_array_kind(tiny_dataset):
    meta = dataset_metadata(tiny_dataset, year=2026)
    foundry = meta.foundry
    assert foundry["data_type"] == "hdf5"
    assert foundry["short_name"] == "atom-locating-benchmark-mini"
    assert foundry["n_items"] == 3.0
    assert foundry["splits"] == [{"type": "test", "path": "mini.foundry.h5", "label": "mini"}]
    with h5py.File(foundry_arrays_path(tiny_dataset)) as handle:
        top_level = sorted(handle)
        assert all(isinstance(handle[k], h5py.Dataset) for k in top_level)
    assert sorted(k["key"][0] for k in foundry["keys"]) == top_level
    assert all(len(k["key"]) == 1 for k in foundry["keys"])
    assert {k["key"][0]: k["type"] for k in foundry["keys"]} == {
        "image_ids": "input", "imgs": "input", "image_shapes": "input", "metadata": "input",
        "raw": "target", "coords": "target", "n_columns": "target", "column_types": "target",
        "column_elements": "target", "faint_coords": "target", "n_faint": "target",
        "faint_types": "target"}


def test_keys_have_roles_descriptions_and_units(tiny_dataset):
    meta = dataset_metadata(tiny_dataset)
    imgs, raw, coords = (_key(meta, g) for g in ("imgs", "raw", "coords"))
    assert imgs["units"] == "counts (arbitrary)"
    assert "noise-free" in raw["description"]
    assert coords["units"] == "pixels"
    assert "x = column, y = row" in coords["description"]
    described = _key(meta, "metadata")["description"]
    for field, (_, units) in METADATA_UNITS.items():
        assert f"{field}: " in described and f"[{units}]" in described
    assert "probe_current_pA: probe current [pA]" in described
    assert "dose_e_per_A2: electron dose [electrons per square angstrom]" in described


def test_array_file_written_when_missing_or_stale(tmp_path):
    path = write_tiny(tmp_path / "d" / "mini.h5", arrays=False)
    with pytest.raises(DatasetError, match=r"mini\.foundry\.h5 is missing"):
        dataset_metadata(path, write_arrays=False)
    dataset_metadata(path)
    assert foundry_arrays_path(path).is_file()
    write_tiny(path, version="0.0.2", arrays=False)  # a new file: the array file is stale
    with pytest.raises(DatasetError, match="made from another file"):
        dataset_metadata(path, write_arrays=False)
    assert dataset_metadata(path).dc["version"] == "0.0.2"
    assert dataset_metadata(path, write_arrays=False).foundry["n_items"] == 3.0


def test_every_metadata_field_has_a_unit():
    assert set(METADATA_UNITS) == set(METADATA_FIELDS)


def test_datacite_block(tiny_dataset):
    meta = dataset_metadata(tiny_dataset, creators=("Wei, Jingrui", "stembench developers"),
                            year=2026)
    dc = meta.dc
    assert dc["creators"] == [
        {"creatorName": "Wei, Jingrui", "familyName": "Wei", "givenName": "Jingrui"},
        {"creatorName": "stembench developers"}]
    assert dc["publisher"] == "Materials Data Facility"
    assert dc["publicationYear"] == 2026
    assert dc["resourceType"] == {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"}
    assert dc["rightsList"][0]["rightsURI"] == "https://creativecommons.org/licenses/by/4.0/"
    assert "CC-BY 4.0" in dc["rightsList"][0]["rights"]
    assert dc["version"] == meta.manifest.version
    assert dc["titles"][0]["title"].startswith(f"atom-locating-benchmark mini {dc['version']}:")
    assert dc["subjects"][0] == {"subject": "atom-locating-benchmark"}
    assert dc["relatedIdentifiers"] == [
        {"relatedIdentifier": "10.18126/e73h-3w6n", "relatedIdentifierType": "DOI",
         "relationType": "IsDerivedFrom"},
        {"relatedIdentifier": "10.1093/micmic/ozac043", "relatedIdentifierType": "DOI",
         "relationType": "References"}]
    kinds = [d["descriptionType"] for d in dc["descriptions"]]
    assert kinds == ["Abstract", "Methods", "TechnicalInfo"]
    assert '"preset": "tiny"' in dc["descriptions"][1]["description"]
    assert meta.source_name == "atom_locating_benchmark_mini"
    assert [p.name for p in meta.files] == ["mini.h5", "mini.h5.manifest.json",
                                            "mini.foundry.h5", "mini.foundry.h5.manifest.json"]


def test_metadata_satisfies_own_json_schema_and_is_json(tiny_dataset):
    meta = dataset_metadata(tiny_dataset)
    document = json.loads(json.dumps({"dc": meta.dc, "foundry": meta.foundry},
                                     allow_nan=False))
    jsonschema.validate(document, FOUNDRY_JSON_SCHEMA)
    assert not math.isnan(meta.foundry["n_items"])


def test_validator_is_foundry_ml_when_installed(tiny_dataset):
    meta = dataset_metadata(tiny_dataset)
    try:
        import foundry.jsonschema_models.project_model  # noqa: F401
        expected = "foundry-ml"
    except ImportError:
        expected = "json-schema"
    assert validate_foundry_metadata(meta.dc, meta.foundry) == expected


@pytest.mark.parametrize("block, change", [
    ("foundry", {"bogus_field": 1}),
    ("dc", {"publisher": ""}),
    ("dc", {"relatedIdentifiers": [{"relatedIdentifier": "10.1/x"}]}),
])
def test_invalid_metadata_rejected(tiny_dataset, block, change):
    meta = dataset_metadata(tiny_dataset)
    blocks = {"dc": dict(meta.dc), "foundry": dict(meta.foundry)}
    blocks[block].update(change)
    with pytest.raises(InputError, match="Foundry metadata"):
        validate_foundry_metadata(blocks["dc"], blocks["foundry"])


def test_missing_or_mismatched_sidecar(tiny_dataset):
    sidecar = manifest_sidecar_path(tiny_dataset)
    text = sidecar.read_text()
    sidecar.write_text(text.replace('"tiny"', '"other"'))
    with pytest.raises(DatasetError, match="differs from the manifest"):
        dataset_metadata(tiny_dataset)
    sidecar.unlink()
    with pytest.raises(DatasetError, match=r"manifest\.json is missing"):
        dataset_metadata(tiny_dataset)


def test_source_name_rejects_odd_names():
    assert source_name_for("atom-locating-benchmark", "standard") == (
        "atom_locating_benchmark_standard")
    with pytest.raises(InputError, match="preset"):
        source_name_for("atom-locating-benchmark", "../x")
