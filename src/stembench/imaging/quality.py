"""Point estimates of an image's place on every quality axis of the benchmark.

The estimators themselves are in :mod:`stembench.imaging.estimate`; the lattice they start
from in :mod:`stembench.imaging.lattice`. The assessment
(:mod:`stembench.client.assess.assessment`) adds uncertainties; the experimental dataset
builder uses the resolution estimate of an image that carries none.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stembench.imaging.estimate import (
    estimate_contrast,
    estimate_distortion,
    estimate_psnr,
    estimate_resolution,
)
from stembench.imaging.lattice import Lattice2D, find_lattice

__all__ = ["raw_estimates"]


def raw_estimates(image: NDArray[np.float64], *, pixel_size_angstrom: float,
                  name: str = "image") -> tuple[Lattice2D, dict[str, float], NDArray[np.float64]]:
    """Point estimates of every axis (no uncertainties), the lattice and the line shifts.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image (finite values, sides of at least 64 px).
    pixel_size_angstrom : float
        Pixel size, A/px.
    name : str
        Name used in messages.

    Returns
    -------
    lattice : Lattice2D
        The lattice found in the image.
    values : dict of str to float
        Keyed by axis series name: ``pixel_size`` (atoms per 100 px), ``resolution`` (pm),
        ``noise`` (PSNR, dB), ``contrast``, ``flyback`` (px), ``drift`` (px per line).
    line_shifts_px : ndarray
        Per-line x shift against the Bragg-filtered image (NaN where unusable).

    Raises
    ------
    InputError
        If no lattice is found in the image.
    """
    lattice = find_lattice(image, name=name)
    resolution = estimate_resolution(image, lattice, pixel_size_angstrom=pixel_size_angstrom)
    contrast, _ = estimate_contrast(image)
    flyback, drift, shifts = estimate_distortion(image, lattice)
    values = {
        "pixel_size": 100.0 / lattice.spacing_px,
        "resolution": resolution,
        "noise": estimate_psnr(image, lattice, lattice.sigma_px),
        "contrast": contrast,
        "flyback": flyback,
        "drift": drift,
    }
    return lattice, values, shifts
