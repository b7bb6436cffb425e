"""A dataset file is verified as a whole before use, once per content, and refused in one line."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import pytest

from stembench.dataset_publish.storage import verified
from stembench.dataset_publish.storage.manifest import (
    MANIFEST_ATTR,
    Manifest,
    manifest_sidecar_path,
    sha256_metadata,
)
from stembench.dataset_publish.storage.verified import verify_dataset_file
from stembench.errors import DatasetError, IntegrityError


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copy(source, target)
    shutil.copy(manifest_sidecar_path(source), manifest_sidecar_path(target))
    return target


def _first_id(path: Path) -> str:
    with h5py.File(path, "r") as handle:
        return sorted(handle["imgs"].keys())[0]


def tamper_array(path: Path) -> str:
    """Change one pixel, leaving the manifest as it was (what `dataset check` refuses)."""
    image_id = _first_id(path)
    with h5py.File(path, "r+") as handle:
        handle[f"imgs/{image_id}"][0, 0] += 1.0
    return f"/imgs/{image_id}"


def set_pixel_size(path: Path, value: Any) -> str:
    """Set one image's pixel size and rewrite the manifest to agree (a consistent forgery)."""
    image_id = _first_id(path)
    with h5py.File(path, "r+") as handle:
        attrs = handle[f"metadata/{image_id}"].attrs
        attrs["pixel_size_angstrom"] = value
        manifest = Manifest.from_json(str(handle.attrs[MANIFEST_ATTR]))
        manifest.metadata[image_id] = sha256_metadata(dict(attrs))
        handle.attrs[MANIFEST_ATTR] = manifest.to_json()
    manifest_sidecar_path(path).write_text(manifest.to_json() + "\n", encoding="utf-8")
    return image_id


def test_an_intact_file_is_verified_once_per_content(
        tiny_dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy(tiny_dataset_path, tmp_path / "data")
    content_hash = verify_dataset_file(path, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "verified").glob("*.json"))) == 1

    def no_rehash(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("a verified, unchanged file was hashed again")

    monkeypatch.setattr(verified, "verify_file", no_rehash)
    assert verify_dataset_file(path, cache_dir=tmp_path / "cache") == content_hash


def test_a_changed_file_is_hashed_again_and_refused(tiny_dataset_path: Path,
                                                    tmp_path: Path) -> None:
    path = _copy(tiny_dataset_path, tmp_path / "data")
    verify_dataset_file(path, cache_dir=tmp_path / "cache")
    changed = tamper_array(path)
    with pytest.raises(IntegrityError) as refused:
        verify_dataset_file(path, cache_dir=tmp_path / "cache")
    message = str(refused.value)
    assert "\n" not in message
    assert f"{path}: does not match its manifest: 1 array(s) or metadata differ ({changed})" \
        in message


@pytest.mark.parametrize("value", [0.0, -0.1, float("nan"), "text", 1e-9, 1e6])
def test_a_pixel_size_outside_the_range_is_refused(value: Any, tiny_dataset_path: Path,
                                                   tmp_path: Path) -> None:
    path = _copy(tiny_dataset_path, tmp_path / "data")
    image_id = set_pixel_size(path, value)
    with pytest.raises(DatasetError, match=rf"image '{image_id}': pixel size "
                                           r"\(pixel_size_angstrom\) .* is outside the "
                                           r"documented range 0.005-5 A/px"):
        verify_dataset_file(path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "verified").exists()  # nothing recorded as verified


def _evaluate(tmp: Path, dataset: Path) -> list[str]:
    return ["evaluate", "--model", "log-blob", "--dataset", str(dataset), "--results",
            str(tmp / "r.jsonl"), "--workers", "1", "--no-report"]


@pytest.mark.parametrize(("forge", "expected"), [
    (tamper_array, "does not match its manifest: 1 array(s) or metadata differ (/imgs/"),
    (lambda path: set_pixel_size(path, 1e-9),
     "pixel size (pixel_size_angstrom) 1e-09 A/px is outside the documented range"),
], ids=["array changed", "pixel size 1e-9"])
def test_evaluate_refuses_a_forged_dataset_before_any_image(
        forge: Callable[[Path], object], expected: str, tiny_dataset_path: Path,
        tmp_path: Path, stembench: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "cache"))
    path = _copy(tiny_dataset_path, tmp_path / "data")
    forge(path)
    answer = stembench(*_evaluate(tmp_path, path))
    assert answer.code == 2, answer.text
    assert expected in answer.text
    assert "Traceback" not in answer.text
    assert not (tmp_path / "r.jsonl").exists()  # no shard ran, nothing was written

