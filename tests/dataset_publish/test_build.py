from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.dataset_publish.build import build_dataset
from stembench.dataset_publish.cli import app
from stembench.dataset_publish.simulate.degradations import contrast, psnr_db
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import InputError


def test_mini_build_contents(mini_dataset):
    ds = open_dataset(mini_dataset)
    try:
        ids = ds.ids
        assert len(ids) == 2 * 6 * 4 * 2 + 6
        groups = {ds.metadata(i)["group"] for i in ids}
        assert groups == {"SrTiO3-simulated", "WS2-simulated", "generality"}
        for image_id in ids:
            image = ds[image_id]
            meta = ds.metadata(image_id)
            assert meta["contrast"] == pytest.approx(contrast(image.image), rel=1e-5)
            assert meta["psnr_db"] == pytest.approx(psnr_db(image.image, image.raw), rel=1e-4)
            assert meta["pixel_size_angstrom"] == pytest.approx(image.pixel_size)
            assert len(image.coords) == len(image.column_types) > 0
            if meta["series"] == "noise" and meta["step"] > 0:
                assert meta["peak_intensity_e"] == pytest.approx(
                    meta["dose_e_per_A2"] * image.pixel_size**2)
                assert float(image.raw.max()) == pytest.approx(meta["peak_intensity_e"],
                                                               rel=1e-5)
    finally:
        ds.close()


def test_build_is_deterministic(mini_dataset, tmp_path):
    again = build_dataset(tmp_path / "again.h5", preset="mini", progress=False)
    a, b = open_dataset(mini_dataset), open_dataset(again)
    try:
        assert a.ids == b.ids
        assert a.manifest.arrays == b.manifest.arrays
        for image_id in a.ids[::7]:
            np.testing.assert_allclose(a[image_id].image, b[image_id].image, rtol=1e-6)
            np.testing.assert_array_equal(a[image_id].coords, b[image_id].coords)
    finally:
        a.close()
        b.close()


def test_build_bad_parameters(tmp_path):
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        build_dataset(tmp_path / "x.h5", preset="huge", progress=False)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="seeds must be >= 1"):
        build_dataset(tmp_path / "x.h5", preset="mini", seeds=0, progress=False)
    with pytest.raises(InputError, match="unknown backend 'magic'"):
        build_dataset(tmp_path / "x.h5", preset="mini", backend="magic",  # type: ignore[arg-type]
                      progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_cli_info_counts_series(mini_dataset):
    result = CliRunner().invoke(app, ["info", str(mini_dataset)])
    assert result.exit_code == 0, result.output
    assert "version 3.0.0" in result.output
    assert "102 images" in result.output
    assert "WS2-simulated" in result.output and "noise" in result.output
