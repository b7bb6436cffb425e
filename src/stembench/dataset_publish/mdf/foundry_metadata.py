"""Foundry/MDF metadata of a benchmark dataset file: the DataCite block and the Foundry block.

A dataset file (``<preset>.h5`` with its ``<preset>.h5.manifest.json``) is published as one
Foundry dataset with one split, whose file is the dataset's Foundry array file
``<preset>.foundry.h5`` (:mod:`~stembench.dataset_publish.mdf.foundry_arrays`): one stacked
array per kind, so foundry-ml's ``get_as_dict()`` hands back arrays keyed ``imgs``,
``coords``, ``metadata``, ... rather than one entry per image. The Foundry block lists
those keys with their role (input or target), description and units; the DataCite block
cites the published benchmark (DOI 10.18126/e73h-3w6n) and the paper
(doi:10.1093/micmic/ozac043) and carries the dataset's name ``atom-locating-benchmark`` in
its title and subjects, which is what a free-text ``Foundry().search(...)`` matches.

Validation uses foundry-ml's own pydantic models when foundry-ml is installed and the JSON
schema :data:`FOUNDRY_JSON_SCHEMA` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stembench.dataset_publish.mdf.foundry_arrays import (
    ARRAY_KEYS,
    FOUNDRY_ARRAYS_SUFFIX,
    foundry_arrays_path,
    is_current,
    write_foundry_arrays,
)
from stembench.dataset_publish.mdf.foundry_schema import (
    FOUNDRY_JSON_SCHEMA,
    validate_foundry_metadata,
)
from stembench.dataset_publish.storage.manifest import (
    Manifest,
    manifest_sidecar_path,
    read_manifest,
)
from stembench.errors import DatasetError, InputError

__all__ = [
    "DEFAULT_CREATORS",
    "FOUNDRY_JSON_SCHEMA",
    "LICENCE",
    "METADATA_UNITS",
    "PAPER_DOI",
    "PUBLISHED_BENCHMARK_DOI",
    "DatasetMetadata",
    "datacite_block",
    "dataset_metadata",
    "dataset_title",
    "foundry_block",
    "source_name_for",
    "validate_foundry_metadata",
]

PUBLISHED_BENCHMARK_DOI = "10.18126/e73h-3w6n"
"""DOI of the published benchmark (Wei et al., ``wei_atom.h5`` on MDF)."""
PAPER_DOI = "10.1093/micmic/ozac043"
"""DOI of the paper (Microsc. Microanal. 2023) the benchmark accompanies."""
LICENCE: dict[str, str] = {
    "rights": "Creative Commons Attribution 4.0 International (CC-BY 4.0)",
    "rightsURI": "https://creativecommons.org/licenses/by/4.0/",
}
DEFAULT_CREATORS: tuple[str, ...] = ("stembench developers",)
"""Creators used when none are given (an organisational name)."""

METADATA_UNITS: dict[str, tuple[str, str]] = {
    "material": ("material and zone axis, e.g. SrTiO3[100]", "none (text)"),
    "type": ("simulated or experimental", "none (text)"),
    "space_group": ("space group, Hermann-Mauguin symbol", "none (text)"),
    "probe_current_pA": ("probe current", "pA"),
    "peak_intensity_e": ("expected electron count at the brightest pixel", "electrons"),
    "contrast": ("(max - min) / max of the image", "dimensionless"),
    "pixel_size_pm": ("pixel size", "pm per pixel"),
    "atoms_per_100px": ("atomic columns per 100 pixels (sampling)", "columns per 100 px"),
    "resolution_pm": ("effective probe FWHM", "pm"),
    "dose_e_per_A2": ("electron dose", "electrons per square angstrom"),
    "psnr_db": ("PSNR of the image against the noise-free image", "dB"),
    "drift": ("random drift amplitude", "px per scan line"),
    "flyback": ("fly-back error amplitude", "px"),
    "pixel_size_angstrom": ("pixel size", "angstrom per pixel"),
    "group": ("image group, e.g. SrTiO3-simulated or generality", "none (text)"),
    "series": ("quality axis the image belongs to, e.g. noise", "none (text)"),
    "step": ("step along the quality axis, 0 = clean reference", "index"),
    "axis_value": ("value on the series' axis", "the unit of that axis' field"),
    "seed": ("random seed of the image", "none (integer)"),
    "backend": ("image formation: fast, abtem or experimental", "none (text)"),
    "generator_version": ("version of the generating code", "none (text)"),
    "source": ("structure name or imported file", "none (text)"),
}
"""Per-image metadata field -> (description, units). NaN marks an unknown numeric value."""


def source_name_for(name: str, preset: str) -> str:
    """Return the source name of a dataset preset, e.g. ``atom_locating_benchmark_mini``.

    MDF Connect v2 assigns a published record's ``source_id`` itself; this name labels a
    copy that was built locally (its Foundry cache folder is ``<source_name>_local``).
    """
    for label, value in (("name", name), ("preset", preset)):
        if not value or not value.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"dataset {label} must be letters, digits, - or _, got {value!r}")
    return f"{name}_{preset}".replace("-", "_").lower()


def _metadata_description() -> str:
    fields = "; ".join(f"{k}: {d} [{u}]" for k, (d, u) in METADATA_UNITS.items())
    return f"Attributes (field: description [units]): {fields}."


def _n_images(arrays: Path) -> int:
    import h5py

    try:
        with h5py.File(arrays, "r") as handle:
            missing = [key for key in ARRAY_KEYS if key not in handle]
            if missing:
                raise DatasetError(f"{arrays}: not a Foundry array file, it lacks {missing}")
            return int(handle["image_ids"].shape[0])
    except (OSError, RuntimeError) as exc:
        raise DatasetError(f"{arrays}: cannot be read as an HDF5 file ({exc})") from exc


def dataset_title(name: str, preset: str, version: str) -> str:
    """Return the published title, which starts with ``"<name> <preset> <version>:"``.

    MDF v2 assigns the ``source_id`` itself, so the downloader recognises a published
    dataset file by this exact title prefix.

    Parameters
    ----------
    name : str
        The dataset's name.
    preset : str
        Its preset (``"mini"`` or ``"standard"``).
    version : str
        Its version.
    """
    return (f"{name} {preset} {version}: atomic-resolution STEM images with exact atomic "
            "column positions")


def foundry_block(path: str | Path, *, split_type: str = "test") -> dict[str, Any]:
    """Return the Foundry project block of one dataset file.

    Parameters
    ----------
    path : str or Path
        The ``<preset>.h5`` file (stembench layout), its Foundry array file
        ``<preset>.foundry.h5`` beside it; or that array file alone.
    split_type : str
        Foundry split type of the file; the benchmark is an evaluation set (``"test"``).

    Returns
    -------
    dict
        ``data_type: "hdf5"``, ``short_name`` ``<name>-<preset>``, ``n_items`` (images),
        one split whose ``path`` is the array file's name and whose ``label`` is the
        preset, and one key entry per array kind (``imgs``, ``coords``, ``metadata``, ...)
        with its type, description and units.
    """
    path = Path(path)
    if path.name.endswith(FOUNDRY_ARRAYS_SUFFIX):
        arrays, preset = path, path.name[: -len(FOUNDRY_ARRAYS_SUFFIX)]
    else:
        arrays, preset = foundry_arrays_path(path), path.stem
    if not arrays.is_file():
        raise DatasetError(f"{path}: its Foundry array file {arrays.name} is missing")
    n_images = _n_images(arrays)
    entries = []
    for key, (role, description, units) in ARRAY_KEYS.items():
        if key == "metadata":
            description = f"{description}. {_metadata_description()}"
        entries.append({"key": [key], "type": role, "description": description,
                        "units": units})
    return {
        "short_name": f"{read_manifest(arrays).name}-{preset}",
        "data_type": "hdf5",
        "task_type": ["supervised"],
        "domain": ["materials science", "electron microscopy", "machine vision"],
        "n_items": float(n_images),
        "splits": [{"type": split_type, "path": arrays.name, "label": preset}],
        "keys": entries,
    }


def _creator(name: str) -> dict[str, Any]:
    if "," in name:
        family, given = (part.strip() for part in name.split(",", 1))
        return {"creatorName": f"{family}, {given}", "familyName": family, "givenName": given}
    return {"creatorName": name.strip()}


def datacite_block(manifest: Manifest, *, preset: str, n_images: int,
                   creators: tuple[str, ...] = DEFAULT_CREATORS,
                   year: int | None = None) -> dict[str, Any]:
    """Return the DataCite (``dc``) block of a dataset file.

    Parameters
    ----------
    manifest : Manifest
        The file's manifest (name, version, generator parameters).
    preset : str
        The build preset the file holds.
    n_images : int
        Number of images in the file.
    creators : tuple of str
        ``"Family, Given"`` names or organisation names.
    year : int, optional
        Publication year; by default the current UTC year.
    """
    if not creators or any(not c.strip() for c in creators):
        raise InputError(f"creators must be non-empty names, got {list(creators)}")
    params = json.dumps(manifest.generator_params, sort_keys=True)
    abstract = (
        f"Benchmark of {n_images} atomic-resolution HAADF STEM images ({preset} preset) with "
        "exact atomic column positions, for evaluating models that locate atomic columns: "
        "quality series of SrTiO3 [100] and WS2 (pixel size, resolution, contrast, noise, "
        "dose, fly-back error, drift) and an out-of-distribution generality set. It extends "
        f"the published benchmark doi:{PUBLISHED_BENCHMARK_DOI} (Wei, Blaiszik, Scourtas, "
        f"Morgan, Voyles, Microsc. Microanal. 2023, doi:{PAPER_DOI}) and is read by the "
        "stembench package (stembench.load)."
    )
    technical = (
        f"Files: {preset}.h5 (stembench layout) and {preset}.foundry.h5 (one stacked array "
        "per kind, read by foundry-ml). stembench layout: /imgs/<id> float32 image; "
        "/raw/<id> float32 noise-free image; /coords/<id> float64 (N, 2) column positions in "
        "pixels as (x = column, y = row); "
        "/column_types/<id> and /column_elements/<id> per-column labels; /metadata/<id> "
        "attributes. Each file has a manifest (root attribute and <file>.manifest.json) with "
        f"the SHA-256 of every array. {_metadata_description()}"
    )
    return {
        "creators": [_creator(c) for c in creators],
        "titles": [{"title": dataset_title(manifest.name, preset, manifest.version)}],
        "publisher": "Materials Data Facility",
        "publicationYear": int(year if year is not None else datetime.now(UTC).year),
        "resourceType": {"resourceTypeGeneral": "Dataset", "resourceType": "Dataset"},
        "subjects": [{"subject": s} for s in (
            manifest.name, "scanning transmission electron microscopy", "HAADF",
            "atomic column localization", "benchmark", "machine learning", "SrTiO3", "WS2")],
        "version": manifest.version,
        "rightsList": [dict(LICENCE)],
        "formats": ["application/x-hdf5", "application/json"],
        "sizes": [f"{n_images} images"],
        "descriptions": [
            {"description": abstract, "descriptionType": "Abstract"},
            {"description": f"Generated by stembench {manifest.generator_version} with "
                            f"parameters {params}.", "descriptionType": "Methods"},
            {"description": technical, "descriptionType": "TechnicalInfo"},
        ],
        "relatedIdentifiers": [
            {"relatedIdentifier": PUBLISHED_BENCHMARK_DOI, "relatedIdentifierType": "DOI",
             "relationType": "IsDerivedFrom"},
            {"relatedIdentifier": PAPER_DOI, "relatedIdentifierType": "DOI",
             "relationType": "References"},
        ],
    }


@dataclass(frozen=True)
class DatasetMetadata:
    """Everything MDF and Foundry need to know about one dataset file.

    Attributes
    ----------
    path : Path
        The HDF5 file; its manifest sidecar and its Foundry array file (with its own
        sidecar) lie beside it.
    source_name : str
        MDF source name (:func:`source_name_for`).
    dc, foundry : dict
        The DataCite block and the Foundry project block.
    manifest : Manifest
        The file's manifest.
    """

    path: Path
    source_name: str
    dc: dict[str, Any]
    foundry: dict[str, Any]
    manifest: Manifest

    @property
    def files(self) -> tuple[Path, ...]:
        """The files to publish: the dataset file, the array file and their manifests."""
        arrays = foundry_arrays_path(self.path)
        return (self.path, manifest_sidecar_path(self.path), arrays,
                manifest_sidecar_path(arrays))


def dataset_metadata(path: str | Path, *, creators: tuple[str, ...] = DEFAULT_CREATORS,
                     year: int | None = None, write_arrays: bool = True) -> DatasetMetadata:
    """Build and validate the Foundry/MDF metadata of a dataset file.

    The file's stem is its preset (``mini.h5`` -> ``mini``), as in the stembench cache.

    Parameters
    ----------
    path : str or Path
        The dataset file, its ``.manifest.json`` beside it.
    creators : tuple of str
        ``"Family, Given"`` names or organisation names.
    year : int, optional
        Publication year; by default the current UTC year.
    write_arrays : bool
        (Re)write the Foundry array file beside ``path`` when it is missing or was made
        from another file; with ``False`` that is an error.

    Raises
    ------
    DatasetError
        If the file is not a stembench dataset, lacks its manifest sidecar, the sidecar
        disagrees with the manifest inside the file, or (``write_arrays=False``) its
        Foundry array file is missing or stale.
    """
    path = Path(path)
    manifest = read_manifest(path)
    sidecar = manifest_sidecar_path(path)
    if not sidecar.is_file():
        raise DatasetError(f"{path}: its manifest {sidecar.name} is missing; it is published "
                           "beside the file so downloads can be verified")
    if Manifest.from_json(sidecar.read_text(encoding="utf-8")) != manifest:
        raise DatasetError(f"{sidecar}: differs from the manifest stored in {path}")
    if not is_current(path):
        if not write_arrays:
            raise DatasetError(f"{path}: its Foundry array file {foundry_arrays_path(path).name}"
                               " is missing or was made from another file")
        write_foundry_arrays(path)
    foundry = foundry_block(path)
    dc = datacite_block(manifest, preset=path.stem, n_images=int(foundry["n_items"]),
                        creators=creators, year=year)
    validate_foundry_metadata(dc, foundry)
    return DatasetMetadata(path=path, source_name=source_name_for(manifest.name, path.stem),
                           dc=dc, foundry=foundry, manifest=manifest)
