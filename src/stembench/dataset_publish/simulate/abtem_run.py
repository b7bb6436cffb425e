"""One abTEM run: a HAADF scan of a supercell by PRISM or multislice, on the CPU.

The backend (:mod:`.abtem_backend`) decides the geometry (supercell, wave and scan grids)
and the cache; this module only drives abTEM with them. abTEM and dask are optional
(``pip install 'stembench[simulation]'``) and imported when a scan runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from stembench._optional import require
from stembench.dataset_publish.simulate.probe import ProbeParameters

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["AbtemScan", "run_scan"]


@dataclass(frozen=True)
class AbtemScan:
    """Everything one abTEM scan needs besides the supercell.

    Attributes
    ----------
    probe : ProbeParameters
        Beam energy, convergence semi-angle, defocus and Cs (the source size is not used).
    wave_gpts : tuple of int
        Wave-function grid points of the whole supercell ``(x, y)``.
    scan_gpts : tuple of int
        Scan positions ``(x, y)``.
    end_angstrom : tuple of float
        End of the scan ``(x, y)`` in A (excluded); the scan starts at the origin.
    detector_mrad : tuple of float
        Inner and outer angle of the annular detector (mrad).
    slice_thickness_angstrom : float
        Multislice slice thickness (A).
    method : {"prism", "multislice"}
        PRISM (interpolation factor 1) or multislice.
    frozen_phonons : int
        Frozen-phonon configurations averaged; 0 for the static lattice.
    phonon_sigmas_angstrom : dict
        RMS displacement per element (A), for frozen phonons.
    seed : int
        Seed of the frozen-phonon displacements.
    """

    probe: ProbeParameters
    wave_gpts: tuple[int, int]
    scan_gpts: tuple[int, int]
    end_angstrom: tuple[float, float]
    detector_mrad: tuple[float, float]
    slice_thickness_angstrom: float
    method: Literal["prism", "multislice"]
    frozen_phonons: int
    phonon_sigmas_angstrom: dict[str, float]
    seed: int


def run_scan(supercell: Atoms, scan: AbtemScan) -> NDArray[np.float64]:
    """Run abTEM's scan of ``supercell``; the image as (rows, cols), fraction of the beam."""
    abtem = require("abtem", extra="simulation", purpose="The abTEM image-formation backend")
    dask = require("dask", extra="simulation", purpose="The abTEM image-formation backend")
    energy, semiangle = scan.probe.energy_ev, scan.probe.convergence_mrad
    aberrations = {"C10": scan.probe.defocus_angstrom, "C30": scan.probe.cs_angstrom}
    with (
        dask.config.set(scheduler="threads", num_workers=2),
        abtem.config.set({"device": "cpu"}),
    ):
        source: Any = supercell
        if scan.frozen_phonons > 0:
            source = abtem.FrozenPhonons(
                supercell,
                num_configs=scan.frozen_phonons,
                sigmas=scan.phonon_sigmas_angstrom,
                seed=scan.seed,
            )
        potential = abtem.Potential(
            source, gpts=scan.wave_gpts, slice_thickness=scan.slice_thickness_angstrom
        )
        grid = abtem.GridScan(start=(0.0, 0.0), end=scan.end_angstrom, gpts=scan.scan_gpts,
                              endpoint=False)
        detector = abtem.AnnularDetector(inner=scan.detector_mrad[0], outer=scan.detector_mrad[1])
        if scan.method == "prism":
            s_matrix = abtem.SMatrix(
                potential=potential, energy=energy, semiangle_cutoff=semiangle, interpolation=1
            )
            ctf = abtem.CTF(
                semiangle_cutoff=semiangle, energy=energy, aberration_coefficients=aberrations
            )
            measurement = s_matrix.scan(scan=grid, detectors=detector, ctf=ctf)
        else:
            beam = abtem.Probe(energy=energy, semiangle_cutoff=semiangle, aberrations=aberrations)
            beam.grid.match(potential)
            measurement = beam.scan(potential, scan=grid, detectors=detector)
        images = measurement.compute()
    return np.asarray(images.array, dtype=np.float64).T.copy()
