"""The STEM probe: aberrated Airy intensity from the aperture, blurred by the source size.

The probe wave function is the inverse Fourier transform of the aperture function
``A(k) exp(-i chi(k))`` with ``chi(k) = pi * lambda * defocus * k**2 + pi/2 * Cs * lambda**3 *
k**4``; its intensity is convolved with a Gaussian of FWHM ``source_fwhm_angstrom`` (finite
source size). Lengths are in angstrom, spatial frequencies in 1/angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from stembench.dataset_publish.simulate.degradations import ELEMENTARY_CHARGE_C
from stembench.errors import InputError
from stembench.imaging.gaussian import FWHM_PER_SIGMA

__all__ = [
    "ProbeParameters",
    "electron_wavelength_angstrom",
    "probe_fwhm_angstrom",
    "probe_profile",
]



@dataclass(frozen=True)
class ProbeParameters:
    """Probe-forming conditions.

    Attributes
    ----------
    energy_ev : float
        Beam energy in eV.
    convergence_mrad : float
        Probe semi-convergence angle in mrad.
    defocus_angstrom : float
        Defocus in angstrom.
    cs_angstrom : float
        Spherical aberration C3 in angstrom.
    source_fwhm_angstrom : float
        FWHM of the Gaussian effective source in angstrom.
    """

    energy_ev: float = 200e3
    convergence_mrad: float = 21.4
    defocus_angstrom: float = 0.0
    cs_angstrom: float = 0.0
    source_fwhm_angstrom: float = 0.5

    def __post_init__(self) -> None:
        for name in ("energy_ev", "convergence_mrad"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise InputError(f"probe {name} must be positive, got {value}")
        if not (np.isfinite(self.source_fwhm_angstrom) and self.source_fwhm_angstrom >= 0):
            raise InputError(
                f"probe source_fwhm_angstrom must be >= 0, got {self.source_fwhm_angstrom}")


def electron_wavelength_angstrom(energy_ev: float) -> float:
    """Relativistic electron wavelength in angstrom for a beam energy in eV."""
    h, m0, c = 6.62607015e-34, 9.1093837015e-31, 299792458.0  # CODATA 2018
    energy_j = energy_ev * ELEMENTARY_CHARGE_C
    return float(h * c / np.sqrt(energy_j * (2 * m0 * c**2 + energy_j)) * 1e10)


@lru_cache(maxsize=32)
def _profile(probe: ProbeParameters, n: int, sampling: float) -> tuple[NDArray[np.float64],
                                                                        NDArray[np.float64]]:
    wavelength = electron_wavelength_angstrom(probe.energy_ev)
    k = np.fft.fftfreq(n, d=sampling)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    k_max = probe.convergence_mrad * 1e-3 / wavelength
    chi = (np.pi * wavelength * probe.defocus_angstrom * k2
           + 0.5 * np.pi * probe.cs_angstrom * wavelength**3 * k2**2)
    aperture = (k2 <= k_max**2) * np.exp(-1j * chi)
    intensity = np.abs(np.fft.ifft2(aperture)) ** 2
    sigma = probe.source_fwhm_angstrom / FWHM_PER_SIGMA
    blurred = np.fft.ifft2(np.fft.fft2(intensity) * np.exp(-2 * np.pi**2 * sigma**2 * k2)).real
    blurred = np.fft.fftshift(blurred)
    centre = n // 2
    yy, xx = np.indices(blurred.shape)
    r = np.hypot(xx - centre, yy - centre) * sampling
    bins = np.round(r / sampling).astype(int)
    counts = np.bincount(bins.ravel())
    profile = np.bincount(bins.ravel(), weights=blurred.ravel()) / np.maximum(counts, 1)
    radii = np.arange(len(profile), dtype=np.float64) * sampling
    keep = radii <= n // 2 * sampling
    return radii[keep], np.asarray(profile[keep] / profile[0], dtype=np.float64)


def probe_profile(probe: ProbeParameters, *, sampling_angstrom: float = 0.02,
                  grid_size: int = 1024) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Radial intensity profile of the probe, peak normalised to 1.

    Parameters
    ----------
    probe : ProbeParameters
        Probe conditions.
    sampling_angstrom : float
        Real-space sampling of the FFT grid (and of the returned radii), angstrom.
    grid_size : int
        FFT grid size; the profile reaches ``grid_size/2 * sampling_angstrom``.

    Returns
    -------
    radii : ndarray
        Radii in angstrom, from 0 in steps of ``sampling_angstrom``.
    intensity : ndarray
        Azimuthally averaged intensity at ``radii`` (1 at r = 0).
    """
    wavelength = electron_wavelength_angstrom(probe.energy_ev)
    nyquist_mrad = wavelength / (2 * sampling_angstrom) * 1e3
    if sampling_angstrom <= 0 or nyquist_mrad <= probe.convergence_mrad:
        raise InputError(
            f"probe profile sampling {sampling_angstrom} A cannot represent a "
            f"{probe.convergence_mrad} mrad aperture (needs < {nyquist_mrad:.1f} mrad)")
    radii, intensity = _profile(probe, int(grid_size), float(sampling_angstrom))
    return radii.copy(), intensity.copy()


def probe_fwhm_angstrom(probe: ProbeParameters) -> float:
    """Full width at half maximum of the probe intensity (the image resolution), angstrom."""
    radii, intensity = probe_profile(probe)
    below = int(np.flatnonzero(intensity < 0.5)[0])
    r0, r1 = radii[below - 1], radii[below]
    i0, i1 = intensity[below - 1], intensity[below]
    return float(2 * (r0 + (i0 - 0.5) * (r1 - r0) / (i0 - i1)))
