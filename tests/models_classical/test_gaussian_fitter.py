"""The one Gaussian column fitter against sampled 2D Gaussians of known centre and width."""

from __future__ import annotations

import numpy as np

from stembench.imaging.gaussian import column_windows, fit_amplitudes, refine_centres

AMPLITUDE, BACKGROUND, SIGMA, NOISE, SPACING = 1.0, 0.1, 2.2, 0.02, 16.0


def _columns(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 6 x 6 grid of isolated Gaussian columns at sub-pixel centres, with white noise."""
    rng = np.random.default_rng(seed)
    truth = np.array([(8 + i * SPACING + rng.uniform(-0.5, 0.5),
                       8 + j * SPACING + rng.uniform(-0.5, 0.5))
                      for i in range(6) for j in range(6)])
    rows, cols = np.mgrid[0:96, 0:96].astype(np.float64)
    image = np.full(rows.shape, BACKGROUND)
    for x, y in truth:
        image += AMPLITUDE * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * SIGMA**2))
    return image + rng.normal(0.0, NOISE, image.shape), truth


def test_a_fixed_centre_fit_recovers_width_and_amplitude():
    image, truth = _columns(1)
    amplitude, sigma, _, t_value, whole = fit_amplitudes(image, truth, window_fraction=0.4)
    assert whole.all()
    # a width chosen from a grid of 16 was 0.12 px too wide here on every column
    assert np.abs(sigma - SIGMA).max() < 0.06
    assert abs(float(np.mean(sigma)) - SIGMA) < 0.01
    assert np.abs(amplitude - AMPLITUDE).max() < 0.03
    assert (t_value > 50).all()


def test_a_free_centre_fit_recovers_sub_pixel_centres():
    image, truth = _columns(2)
    start = np.rint(truth)  # up to 0.5 px off
    radius = np.full(len(truth), 0.4 * SPACING)
    values, x, y, inside = column_windows(image, start, int(np.ceil(radius.max())))
    mask = inside & ((x - start[:, 0, None, None]) ** 2 + (y - start[:, 1, None, None]) ** 2
                     <= radius[:, None, None] ** 2)
    found = refine_centres(values, x, y, mask, start, radius, iterations=30)
    assert np.hypot(*(found - truth).T).max() < 0.06
