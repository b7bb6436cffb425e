from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from stembench.dataset_publish.simulate.degradations import (
    blur_to_resolution,
    contrast,
    dose_from_current,
    dwell_time_s,
    poisson_at_dose,
    psnr_db,
    set_contrast,
)
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.series import AXES, material_series
from stembench.dataset_publish.storage.stembench_layout import COLUMN_ELEMENTS_KEY, METADATA_FIELDS
from stembench.errors import InputError

PROBE = ProbeParameters()
BACKEND = FastHAADF(PROBE)


def _series(material, axis, steps, seeds=(0,)):
    return list(material_series(material, axis, steps=steps, seeds=seeds, backend=BACKEND,
                                probe=PROBE, shape=(96, 96)))


def test_psnr_and_contrast_by_hand():
    clean = np.array([[4.0, 2.0], [1.0, 1.0]])
    noisy = clean + np.array([[1.0, -1.0], [1.0, -1.0]])
    assert psnr_db(noisy, clean) == pytest.approx(20 * np.log10(4.0 / 1.0))
    assert psnr_db(clean, clean) == np.inf
    assert contrast(clean) == pytest.approx(0.75)
    lowered, offset = set_contrast(clean, target_contrast=0.25)
    assert offset == pytest.approx(8.0) and contrast(lowered) == pytest.approx(0.25)
    raised, offset = set_contrast(clean, target_contrast=1.0)
    assert offset == pytest.approx(-1.0) and contrast(raised) == pytest.approx(1.0)


def test_dose_current_and_counts():
    t = dwell_time_s(dose_e_per_A2=1000.0, pixel_size_angstrom=0.1, probe_current_pA=18.9)
    assert t == pytest.approx(1000 * 0.01 * 1.602176634e-19 / 18.9e-12)
    assert dose_from_current(probe_current_pA=18.9, dwell_time_s=t,
                             pixel_size_angstrom=0.1) == pytest.approx(1000.0)
    clean = np.full((200, 200), 0.5)
    clean[0, 0] = 1.0
    noisy, expected, peak = poisson_at_dose(clean, dose_e_per_A2=2000.0, pixel_size_angstrom=0.1,
                                            rng=np.random.default_rng(0))
    assert peak == pytest.approx(20.0) and expected.max() == pytest.approx(20.0)
    assert noisy.mean() == pytest.approx(10.0, rel=0.01)
    assert noisy.var() == pytest.approx(10.0, rel=0.05)


def test_blur_adds_in_quadrature_and_rejects_finer_target():
    image = np.zeros((101, 101))
    image[50, 50] = 1.0
    blurred, s = blur_to_resolution(image, pixel_size_angstrom=0.05, probe_fwhm_angstrom=0.6,
                                    resolution_angstrom=1.0)
    assert s == pytest.approx(0.8)
    profile = blurred[50]
    above = np.flatnonzero(profile >= profile.max() / 2)
    assert (above[-1] - above[0] + 1) * 0.05 == pytest.approx(0.8, abs=0.06)
    with pytest.raises(InputError, match="finer than the probe"):
        blur_to_resolution(image, pixel_size_angstrom=0.05, probe_fwhm_angstrom=0.6,
                           resolution_angstrom=0.5)


@pytest.mark.parametrize("axis", AXES)
def test_metadata_fields_and_values_recomputed_from_arrays(axis):
    steps = {"pixel_size": [6.0, 12.0], "resolution": [120.0, 250.0], "contrast": [0.5, 0.02],
             "noise": [50.0, 2000.0], "flyback": [1.0, 3.0], "drift": [0.1, 0.3]}[axis]
    images = _series("WS2", axis, steps)
    assert [im.metadata["step"] for im in images] == [0, 1, 2]
    for im in images:
        meta = im.metadata
        assert set(meta) == set(METADATA_FIELDS) | {COLUMN_ELEMENTS_KEY}
        assert len(meta[COLUMN_ELEMENTS_KEY]) == len(im.coords) == len(im.column_types)
        assert meta["contrast"] == pytest.approx(contrast(im.image), rel=1e-5)
        assert meta["psnr_db"] == pytest.approx(psnr_db(im.image, im.raw), rel=1e-4)
        if meta["flyback"] == 0 and meta["drift"] == 0:  # distortions change label spacing
            nn, _ = cKDTree(im.coords).query(im.coords, k=2)
            spacing_px = np.median(nn[:, 1])
            assert meta["atoms_per_100px"] == pytest.approx(100 / spacing_px, rel=0.02)
        assert meta["pixel_size_pm"] == pytest.approx(im.pixel_size * 100)
        assert im.image_id == f"WS2-simulated:{axis}:step{meta['step']:02d}:seed0"
    first, last = images[1].metadata, images[2].metadata
    if axis == "noise":
        assert first["dose_e_per_A2"] == 50.0
        assert first["peak_intensity_e"] == pytest.approx(50.0 * images[1].pixel_size ** 2)
        assert images[1].raw.max() == pytest.approx(first["peak_intensity_e"], rel=1e-5)
        assert first["psnr_db"] < last["psnr_db"] < images[0].metadata["psnr_db"]
    else:
        assert np.isnan(first["dose_e_per_A2"]) and np.isinf(first["psnr_db"])
    expected_axis = {"pixel_size": steps, "resolution": steps, "contrast": steps,
                     "flyback": steps, "drift": steps}.get(axis)
    if expected_axis is not None:
        assert [first["axis_value"], last["axis_value"]] == pytest.approx(expected_axis, rel=1e-3)


def test_series_degrade_visibly():
    reference = _series("SrTiO3[100]", "resolution", [250.0])
    clean, blurred = reference[0].image, reference[1].image
    assert contrast(blurred) < contrast(clean)
    assert blurred.std() < 0.6 * clean.std()
    drift = _series("SrTiO3[100]", "drift", [0.3])
    # the drifted image shows the same field displaced and distorted
    change = np.abs(drift[1].image - drift[0].image).mean()
    assert change > 0.2 * drift[0].image.mean()


def test_series_determinism_and_bad_input():
    a = _series("WS2", "noise", [100.0], seeds=(1,))
    b = _series("WS2", "noise", [100.0], seeds=(1,))
    np.testing.assert_array_equal(a[1].image, b[1].image)
    np.testing.assert_array_equal(a[1].coords, b[1].coords)
    c = _series("WS2", "noise", [100.0], seeds=(2,))
    assert not np.array_equal(a[1].image, c[1].image)
    with pytest.raises(InputError, match="empty series"):
        _series("WS2", "noise", [])
    with pytest.raises(InputError, match="unknown quality axis 'focus'"):
        _series("WS2", "focus", [1.0])
    with pytest.raises(InputError, match="unknown structure 'Kryptonite'"):
        _series("Kryptonite", "noise", [1.0])
