"""One visibility rule from the noise-free image, faint labels, and the dataset check."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from stembench.dataset_publish.simulate.build import generality_images
from stembench.dataset_publish.simulate.catalogue import build_structure
from stembench.dataset_publish.simulate.check import check_dataset
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.visibility import check_labels


def _types(name: str) -> tuple[Counter[str], Counter[str]]:
    s = build_structure(name, extent_angstrom=(24.0, 24.0), seed=1)
    visible = Counter(t for t, v in zip(s.column_types, s.visible, strict=True) if v)
    faint = Counter(t for t, v in zip(s.column_types, s.visible, strict=True) if not v)
    return visible, faint


@pytest.mark.parametrize(("name", "visible", "faint"), [
    ("SrTiO3[100]", {"Sr", "TiO"}, {"O"}),      # O contrast 0.06 of the range: faint
    ("SrTiO3[110]", {"SrO", "Ti", "O2"}, set()),  # pure O2 columns draw a peak (0.09)
    ("LaAlO3[100]", {"La", "AlO"}, {"O"}),      # Al+O 0.11: visible; O 0.03: faint
    ("WS2", {"W", "S2"}, set()),
])
def test_one_rule_for_every_structure(name, visible, faint):
    got_visible, got_faint = _types(name)
    assert set(got_visible) == visible
    assert set(got_faint) == faint


def _mgal2o4_110() -> object:
    probe = ProbeParameters()
    return next(generality_images(("MgAl2O4[110]",), backend=FastHAADF(probe), probe=probe,
                                  shape=(128, 128)))


def test_mgal2o4_110_mg_columns_are_labelled_and_agree_with_the_image():
    # regression: only the Al columns were labelled, the as-bright Mg columns were not
    image = _mgal2o4_110()
    types = Counter(image.column_types)
    assert types["Mg2"] >= 4 and types["Al4"] >= 2 and types["Al2"] >= 4
    assert check_labels(image.raw, image.coords, pixel_size=image.pixel_size) == []


def test_check_flags_the_old_mgal2o4_110_labels():
    image = _mgal2o4_110()
    al_only = np.array([t.startswith("Al") for t in image.column_types])
    problems = check_labels(image.raw, image.coords[al_only], pixel_size=image.pixel_size)
    kinds = Counter(p.kind for p in problems)
    assert set(kinds) == {"unlabelled peak"}
    inside = ((image.coords[:, 0] >= 6) & (image.coords[:, 0] <= 121)
              & (image.coords[:, 1] >= 6) & (image.coords[:, 1] <= 121))
    # every dropped visible column inside the checked region is a peak without a label
    assert kinds["unlabelled peak"] == int((~al_only & inside).sum())


def test_check_flags_a_visible_label_without_a_peak_and_a_faint_label_on_a_peak():
    image = _mgal2o4_110()
    moved = image.coords.copy()
    centre = np.argmin(np.hypot(*(moved - 64.0).T))
    moved[centre] += [0.0, 3.0 / image.pixel_size]  # 3 A off its column, onto background
    problems = check_labels(image.raw, moved, pixel_size=image.pixel_size)
    assert {p.kind for p in problems} == {"unlabelled peak", "label without peak"}
    # the same column labelled faint instead of visible: its peak has no visible label
    rest = np.delete(image.coords, centre, axis=0)
    problems = check_labels(image.raw, rest, pixel_size=image.pixel_size)
    assert [p.kind for p in problems] == ["unlabelled peak"]
    assert np.hypot(problems[0].x - image.coords[centre, 0],
                    problems[0].y - image.coords[centre, 1]) < 1.0


def test_every_clean_image_of_the_mini_preset_passes_the_check(mini_dataset):
    report = check_dataset(mini_dataset)
    assert len(report.checked) == 30  # 2 materials x 6 series x 2 seeds, + 6 generality
    assert report.problems == {}


def test_faint_columns_are_stored_and_read_back(mini_dataset):
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    with open_dataset(mini_dataset) as ds:
        sto = ds["SrTiO3-simulated:noise:step00:seed0"]
    assert set(sto.column_types) == {"Sr", "TiO"}
    assert set(sto.faint_types) == {"O"}
    assert len(sto.faint_coords) == pytest.approx(len(sto.coords), rel=0.15)  # 2 O per 2


def test_check_command_passes_the_mini_build_and_fails_a_dropped_label(mini_dataset, tmp_path):
    import shutil

    import h5py
    from typer.testing import CliRunner

    from stembench.dataset_publish.cli import app

    result = CliRunner().invoke(app, ["check", str(mini_dataset)])
    assert result.exit_code == 0, result.output
    assert "30 clean image(s) checked, 0 flagged, 72 skipped" in result.output
    broken = tmp_path / "broken.h5"
    shutil.copy(mini_dataset, broken)
    image_id = "WS2-simulated:noise:step00:seed1"
    with h5py.File(broken, "r+") as f:
        coords = f[f"coords/{image_id}"][()]
        centre = int(np.argmin(np.hypot(coords[:, 0] - 64, coords[:, 1] - 64)))
        for group in ("coords", "column_types", "column_elements"):
            kept = np.delete(f[f"{group}/{image_id}"][()], centre, axis=0)
            del f[f"{group}/{image_id}"]
            f[f"{group}/{image_id}"] = kept
    # the file no longer matches its manifest: read verified it is refused, unverified
    # the dropped label is reported as a peak without a label
    refused = CliRunner().invoke(app, ["check", str(broken)])
    assert refused.exit_code != 0 and "SHA-256" in str(refused.exception)
    result = CliRunner().invoke(app, ["check", str(broken), "--no-verify"])
    assert result.exit_code == 1
    assert f"{image_id}: 1 problem(s)" in result.output
    x = float(result.output.split("unlabelled peak at x=")[1].split(",")[0])
    assert x == pytest.approx(coords[centre, 0], abs=1.0)
