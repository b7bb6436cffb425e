"""Foundry/DataCite metadata generated from a dataset file, validated in both environments."""

from __future__ import annotations

import json
import math

import h5py
import jsonschema
import pytest

from stembench.dataset_publish.foundry_metadata import (
    FOUNDRY_JSON_SCHEMA,
    METADATA_UNITS,
    dataset_metadata,
    source_name_for,
    validate_foundry_metadata,
)
from stembench.dataset_publish.manifest import manifest_sidecar_path
from stembench.dataset_publish.storage import METADATA_FIELDS
from stembench.errors import DatasetError, InputError


def _keys_of(meta, group):
    return next(k for k in meta.foundry["keys"] if k["key"][0].startswith(group + "/"))


def test_foundry_block_lists_every_hdf5_key(tiny_dataset):
    meta = dataset_metadata(tiny_dataset, year=2026)
    foundry = meta.foundry
    assert foundry["data_type"] == "hdf5"
    assert foundry["n_items"] == 3.0
    assert foundry["splits"] == [{"type": "test", "path": "mini.h5", "label": "mini"}]
    with h5py.File(tiny_dataset) as handle:
        datasets: list[str] = []

        def collect(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)

        handle.visititems(collect)
        groups = [f"metadata/{k}" for k in handle["metadata"]]
    listed = [key for entry in foundry["keys"] for key in entry["key"]]
    assert sorted(listed) == sorted(datasets + groups)
    assert len(datasets) == 3 * 5
    assert [e["key"][0].split("/")[0] for e in foundry["keys"]] == [
        "imgs", "raw", "coords", "column_types", "column_elements", "metadata"]


def test_keys_have_roles_descriptions_and_units(tiny_dataset):
    meta = dataset_metadata(tiny_dataset)
    imgs, raw, coords = (_keys_of(meta, g) for g in ("imgs", "raw", "coords"))
    assert (imgs["type"], imgs["units"]) == ("input", "counts (arbitrary)")
    assert (raw["type"], raw["units"]) == ("target", "counts (arbitrary)")
    assert "noise-free" in raw["description"]
    assert (coords["type"], coords["units"]) == ("target", "pixels")
    assert "x = column, y = row" in coords["description"]
    described = _keys_of(meta, "metadata")["description"]
    for field, (_, units) in METADATA_UNITS.items():
        assert f"{field}: " in described and f"[{units}]" in described
    assert "probe_current_pA: probe current [pA]" in described
    assert "dose_e_per_A2: electron dose [electrons per square angstrom]" in described


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
    assert "(mini, version" in dc["titles"][0]["title"]
    assert dc["relatedIdentifiers"] == [
        {"relatedIdentifier": "10.18126/e73h-3w6n", "relatedIdentifierType": "DOI",
         "relationType": "IsDerivedFrom"},
        {"relatedIdentifier": "10.1093/micmic/ozac043", "relatedIdentifierType": "DOI",
         "relationType": "References"}]
    kinds = [d["descriptionType"] for d in dc["descriptions"]]
    assert kinds == ["Abstract", "Methods", "TechnicalInfo"]
    assert '"preset": "tiny"' in dc["descriptions"][1]["description"]
    assert meta.source_name == "atom_locating_benchmark_mini"
    assert [p.name for p in meta.files] == ["mini.h5", "mini.h5.manifest.json"]


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
