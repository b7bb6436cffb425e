"""abTEM multislice/PRISM image formation: scan one unit cell, cache it, tile it.

A perfect crystal gives a periodic HAADF image, so one period is enough: the backend
simulates a scan over one orthogonal unit cell (inside a supercell potential large enough
for the probe), stores that image on disk, and evaluates it at any beam position by periodic
Fourier-plus-spline interpolation. Arbitrary fields of view, rotations and scan distortions
then cost an interpolation, not a simulation. Structures with defects or without a
periodic cell need the fast backend (or a full-field scan).

abTEM is GPL-3 and an optional extra (``pip install 'stembench[simulation]'``); it is
imported only when an image is simulated.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft

from stembench._optional import require
from stembench.dataset_publish.simulate.abtem_cache import (
    CACHE_FORMAT_VERSION,
    PeriodicImage,
    read_cached_image,
    write_cached_image,
)
from stembench.dataset_publish.simulate.abtem_periodic import (
    PeriodicSpline,
    evaluate_periodic,
    periodic_image,
    periodic_spline,
)
from stembench.dataset_publish.simulate.abtem_run import AbtemScan, run_scan
from stembench.dataset_publish.simulate.probe import ProbeParameters, electron_wavelength_angstrom
from stembench.errors import InputError

if TYPE_CHECKING:
    from ase import Atoms

    from stembench.dataset_publish.simulate.columns import ColumnStructure

__all__ = [
    "DEFAULT_PHONON_SIGMAS_ANGSTROM",
    "FALLBACK_PHONON_SIGMA_ANGSTROM",
    "LAYER_VACUUM_GAP_ANGSTROM",
    "AbtemHAADF",
    "PeriodicImage",
    "is_layer",
]

DEFAULT_PHONON_SIGMAS_ANGSTROM: dict[str, float] = {
    "O": 0.090,
    "S": 0.080,
    "Se": 0.075,
    "Ti": 0.070,
    "Sr": 0.088,
    "Mo": 0.060,
    "W": 0.060,
}
"""Room-temperature RMS thermal displacement per direction (A) for the benchmark's elements."""

FALLBACK_PHONON_SIGMA_ANGSTROM = 0.080
"""RMS displacement (A) used for an element missing from the sigma table."""

LAYER_VACUUM_GAP_ANGSTROM = 4.0
"""A cell whose atoms leave a gap this wide along z is a layer, not a bulk crystal (A)."""

class AbtemHAADF:
    """HAADF image formation by abTEM PRISM or multislice, one cached unit cell, tiled.

    Parameters
    ----------
    probe : ProbeParameters
        Beam energy, convergence semi-angle, defocus, Cs and source size. The source size is
        applied after the cache as a Gaussian blur, so it does not trigger a new simulation.
    cache_dir : Path or None
        Folder for cached unit-cell images (``<key>.npy`` with a ``<key>.json`` sidecar that
        records every parameter and the file's SHA-256). ``None`` keeps images in memory only.
    frozen_phonons : int
        Number of frozen-phonon configurations averaged; 0 simulates the static lattice.
    detector_mrad : tuple of float
        Inner and outer angle of the annular detector (mrad).
    scan_sampling_angstrom : float
        Largest scan step (A); the step is shrunk so that a whole number of steps fits the
        cell. Must resolve the image's band limit ``2 alpha / lambda``.
    slice_thickness_angstrom : float
        Multislice slice thickness (A).
    method : {"prism", "multislice"}
        PRISM (interpolation factor 1, as exact as multislice and faster) or multislice.
    seed : int
        Seed of the frozen-phonon displacements.
    thickness_angstrom : float or None
        Repeat a bulk unit cell along the beam until the sample is at least this thick (A).
        A layer (a cell whose atoms leave a vacuum gap of at least
        :data:`LAYER_VACUUM_GAP_ANGSTROM` along z, e.g. monolayer WS2) is never repeated.
        ``None`` uses every cell as it is.
    min_potential_extent_angstrom : float
        Lateral size (A) of the supercell potential the probe propagates in; it must hold the
        probe's tails so that they do not wrap around onto themselves.
    phonon_sigmas_angstrom : dict or None
        RMS displacement per element (A); defaults to :data:`DEFAULT_PHONON_SIGMAS_ANGSTROM`
        with :data:`FALLBACK_PHONON_SIGMA_ANGSTROM` for other elements.
    """

    name = "abtem"

    def __init__(
        self,
        probe: ProbeParameters,
        *,
        cache_dir: Path | None = None,
        frozen_phonons: int = 4,
        detector_mrad: tuple[float, float] = (70.0, 200.0),
        scan_sampling_angstrom: float = 0.2,
        slice_thickness_angstrom: float = 2.0,
        method: Literal["prism", "multislice"] = "prism",
        seed: int = 1,
        thickness_angstrom: float | None = 40.0,
        min_potential_extent_angstrom: float = 12.0,
        phonon_sigmas_angstrom: dict[str, float] | None = None,
    ) -> None:
        inner, outer = (float(v) for v in detector_mrad)
        _check(frozen_phonons >= 0, f"frozen_phonons must be >= 0, got {frozen_phonons}")
        _check(
            0 <= inner < outer,
            f"detector_mrad must be (inner, outer) with 0 <= inner < outer, got {detector_mrad}",
        )
        _check(
            method in ("prism", "multislice"),
            f"method must be 'prism' or 'multislice', got {method!r}",
        )
        for label, value in (
            ("slice_thickness_angstrom", slice_thickness_angstrom),
            ("min_potential_extent_angstrom", min_potential_extent_angstrom),
            ("thickness_angstrom", 1.0 if thickness_angstrom is None else thickness_angstrom),
        ):
            _check(value > 0, f"{label} must be > 0, got {value}")
        wavelength = electron_wavelength_angstrom(probe.energy_ev)
        band_limited_step = wavelength / (4.0 * probe.convergence_mrad * 1e-3)
        _check(
            0 < scan_sampling_angstrom <= band_limited_step,
            f"scan_sampling_angstrom must be in (0, {band_limited_step:.3f}] A (the Nyquist "
            f"step of a {probe.convergence_mrad} mrad probe), got {scan_sampling_angstrom}",
        )
        self.probe = probe
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.frozen_phonons = int(frozen_phonons)
        self.detector_mrad = (inner, outer)
        self.scan_sampling_angstrom = float(scan_sampling_angstrom)
        self.slice_thickness_angstrom = float(slice_thickness_angstrom)
        self.method = method
        self.seed = int(seed)
        self.thickness_angstrom = thickness_angstrom
        self.min_potential_extent_angstrom = float(min_potential_extent_angstrom)
        self.phonon_sigmas_angstrom = dict(phonon_sigmas_angstrom or DEFAULT_PHONON_SIGMAS_ANGSTROM)
        self._images: dict[str, PeriodicImage] = {}
        self._splines: dict[str, PeriodicSpline] = {}

    # ----------------------------------------------------------------------------- public
    def intensity(
        self, structure: ColumnStructure, x_angstrom: ArrayLike, y_angstrom: ArrayLike
    ) -> NDArray[np.float64]:
        """HAADF intensity with the beam at ``(x, y)`` A, relative to the cell origin.

        The unit-cell image is simulated (or read from the cache) once per structure, blurred
        by the source size, and evaluated periodically, so any field of view is exact.

        Parameters
        ----------
        structure : ColumnStructure
            A perfect crystal with ``unit_cell`` set.
        x_angstrom, y_angstrom : array_like
            Beam positions (A) in the structure's frame (the unit cell's (0, 0) sits at
            ``structure.cell_origin_angstrom``), any shape, broadcast together.

        Returns
        -------
        ndarray of float64
            Intensity (fraction of the incident beam) with the broadcast shape of the inputs.
        """
        x, y = np.broadcast_arrays(np.asarray(x_angstrom, float), np.asarray(y_angstrom, float))
        _check(
            bool(np.all(np.isfinite(x)) and np.all(np.isfinite(y))),
            f"structure {structure.name!r}: beam positions must be finite",
        )
        return evaluate_periodic(self._spline(structure), x, y, structure.cell_origin_angstrom)

    def unit_cell_image(self, structure: ColumnStructure) -> PeriodicImage:
        """The simulated image of one unit cell (no source blur), from the cache when present.

        Images are kept in memory for the life of this object and, with ``cache_dir``, on disk.
        """
        cell = self._cell(structure)
        key, parameters = self._cache_key(structure, self._scan_gpts(cell))
        if key not in self._images:
            image = self._read_cache(key, parameters)
            if image is None:
                start = time.perf_counter()
                image = periodic_image(self._simulate(structure, field_cells=(1, 1)), cell)
                self._write_cache(key, parameters, image, wall_s=time.perf_counter() - start)
            self._images[key] = image
        return self._images[key]

    def unit_cell_sampling_angstrom(self, structure: ColumnStructure) -> tuple[float, float]:
        """Scan step ``(x, y)`` in A of the unit-cell image, without simulating anything."""
        cell = self._cell(structure)
        gpts = self._scan_gpts(cell)
        return (cell[0] / gpts[0], cell[1] / gpts[1])

    def full_scan_image(
        self, structure: ColumnStructure, *, extent_angstrom: tuple[float, float]
    ) -> PeriodicImage:
        """Scan a whole field directly (no tiling, no cache): the reference for the benchmark.

        The field is rounded up to whole unit cells, scanned with the same step per cell as
        :meth:`unit_cell_image`, in the same supercell potential where the field fits in it.

        Parameters
        ----------
        structure : ColumnStructure
            A perfect crystal with ``unit_cell`` set.
        extent_angstrom : tuple of float
            Field of view ``(x, y)`` in A.
        """
        cell = self._cell(structure)
        _check(
            min(extent_angstrom) > 0,
            f"structure {structure.name!r}: extent_angstrom must be > 0, got {extent_angstrom}",
        )
        field_cells = (
            math.ceil(extent_angstrom[0] / cell[0] - 1e-9),
            math.ceil(extent_angstrom[1] / cell[1] - 1e-9),
        )
        array = self._simulate(structure, field_cells=field_cells)
        return periodic_image(array, (cell[0] * field_cells[0], cell[1] * field_cells[1]))

    # ------------------------------------------------------------------------ geometry
    def _cell(self, structure: ColumnStructure) -> tuple[float, float]:
        atoms = structure.unit_cell
        if atoms is None:
            raise InputError(
                f"structure {structure.name!r} has no periodic unit cell (unit_cell is None): the "
                "abTEM backend scans one unit cell of a perfect crystal; use the fast backend for "
                "defects and non-periodic structures"
            )
        cell = np.asarray(atoms.cell.array, float)
        off_diagonal = cell - np.diag(np.diag(cell))
        if not np.allclose(off_diagonal, 0.0, atol=1e-6) or np.any(np.diag(cell) <= 0):
            raise InputError(
                f"structure {structure.name!r}: unit_cell must be orthogonal with the "
                f"beam along z, got cell {cell.round(4).tolist()}"
            )
        return (float(cell[0, 0]), float(cell[1, 1]))

    def _scan_gpts(self, cell: tuple[float, float]) -> tuple[int, int]:
        return (
            math.ceil(cell[0] / self.scan_sampling_angstrom - 1e-9),
            math.ceil(cell[1] / self.scan_sampling_angstrom - 1e-9),
        )

    def _repetitions(
        self, structure: ColumnStructure, field_cells: tuple[int, int]
    ) -> tuple[int, int, int]:
        """Supercell repetitions (x, y, z): FFT-friendly, covering the field and the probe."""
        cell = self._cell(structure)
        lateral = []
        for length, field in zip(cell, field_cells, strict=True):
            needed = max(field, math.ceil(self.min_potential_extent_angstrom / length - 1e-9))
            lateral.append(fft.next_fast_len(needed, real=True))
        assert structure.unit_cell is not None
        if self.thickness_angstrom is None or is_layer(structure.unit_cell):
            return (lateral[0], lateral[1], 1)
        depth = float(structure.unit_cell.cell.array[2, 2])
        layers = math.ceil(self.thickness_angstrom / depth - 1e-9)
        return (lateral[0], lateral[1], max(1, layers))

    def _wave_gpts_per_cell(self, cell: tuple[float, float]) -> tuple[int, int]:
        """Wave grid points per unit cell: the outer detector angle must lie inside the
        antialiasing aperture (2/3 of Nyquist); 5-smooth (fast FFTs) and the same in every
        cell, so that the sampled potential is exactly periodic."""
        wavelength = electron_wavelength_angstrom(self.probe.energy_ev)
        antialias = 2.0 / 3.0
        max_sampling = antialias * wavelength / (2.0 * self.detector_mrad[1] * 1e-3)
        return (
            fft.next_fast_len(math.ceil(cell[0] / max_sampling), real=True),
            fft.next_fast_len(math.ceil(cell[1] / max_sampling), real=True),
        )

    def _sigmas(self, atoms: Atoms) -> dict[str, float]:
        return {
            symbol: self.phonon_sigmas_angstrom.get(symbol, FALLBACK_PHONON_SIGMA_ANGSTROM)
            for symbol in sorted(set(atoms.get_chemical_symbols()))
        }

    # ---------------------------------------------------------------------- simulation
    def _simulate(
        self, structure: ColumnStructure, *, field_cells: tuple[int, int]
    ) -> NDArray[np.float64]:
        """Run abTEM over ``field_cells`` unit cells; returns the image as (rows, cols)."""
        assert structure.unit_cell is not None
        cell = self._cell(structure)
        reps = self._repetitions(structure, field_cells)
        supercell = structure.unit_cell.copy()
        supercell.pbc = True
        supercell = supercell * reps
        per_cell = self._wave_gpts_per_cell(cell)
        scan_gpts = self._scan_gpts(cell)
        scan = AbtemScan(
            probe=self.probe,
            wave_gpts=(per_cell[0] * reps[0], per_cell[1] * reps[1]),
            scan_gpts=(scan_gpts[0] * field_cells[0], scan_gpts[1] * field_cells[1]),
            end_angstrom=(cell[0] * field_cells[0], cell[1] * field_cells[1]),
            detector_mrad=self.detector_mrad,
            slice_thickness_angstrom=self.slice_thickness_angstrom,
            method=self.method,
            frozen_phonons=self.frozen_phonons,
            phonon_sigmas_angstrom=self._sigmas(supercell),
            seed=self.seed,
        )
        return run_scan(supercell, scan)

    # --------------------------------------------------------------------------- cache
    def _cache_key(
        self, structure: ColumnStructure, scan_gpts: tuple[int, int]
    ) -> tuple[str, dict[str, Any]]:
        abtem = require("abtem", extra="simulation", purpose="The abTEM image-formation backend")
        atoms = structure.unit_cell
        assert atoms is not None
        cell = self._cell(structure)
        parameters: dict[str, Any] = {
            "format": CACHE_FORMAT_VERSION,
            "abtem_version": str(abtem.__version__),
            "structure": structure.name,
            "cell_angstrom": np.round(atoms.cell.array, 6).tolist(),
            "numbers": [int(n) for n in atoms.numbers],
            "positions_angstrom": np.round(atoms.positions, 6).tolist(),
            "energy_ev": float(self.probe.energy_ev),
            "convergence_mrad": float(self.probe.convergence_mrad),
            "defocus_angstrom": float(self.probe.defocus_angstrom),
            "cs_angstrom": float(self.probe.cs_angstrom),
            "detector_mrad": list(self.detector_mrad),
            "scan_gpts": list(scan_gpts),
            "wave_gpts_per_cell": list(self._wave_gpts_per_cell(cell)),
            "repetitions": list(self._repetitions(structure, (1, 1))),
            "slice_thickness_angstrom": self.slice_thickness_angstrom,
            "method": self.method,
            "frozen_phonons": self.frozen_phonons,
            "phonon_sigmas_angstrom": self._sigmas(atoms) if self.frozen_phonons else {},
            "seed": self.seed,
        }
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
        safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", structure.name).strip("_.")
        return f"{safe_name}-{digest[:20]}", parameters

    def _read_cache(self, key: str, parameters: dict[str, Any]) -> PeriodicImage | None:
        return read_cached_image(self.cache_dir, key, parameters)

    def _write_cache(
        self, key: str, parameters: dict[str, Any], image: PeriodicImage, *, wall_s: float
    ) -> None:
        write_cached_image(self.cache_dir, key, parameters, image, wall_s=wall_s)

    # --------------------------------------------------------------------- interpolation
    def _spline(self, structure: ColumnStructure) -> PeriodicSpline:
        """Spline coefficients of the source-blurred, Fourier-upsampled unit-cell image."""
        cell = self._cell(structure)
        key, _ = self._cache_key(structure, self._scan_gpts(cell))
        if key not in self._splines:
            image = self.unit_cell_image(structure)
            self._splines[key] = periodic_spline(image, self.probe.source_fwhm_angstrom)
        return self._splines[key]


def is_layer(atoms: Atoms) -> bool:
    """Whether a periodic cell holds a layer in vacuum rather than a bulk crystal.

    True when the atoms leave a gap of at least :data:`LAYER_VACUUM_GAP_ANGSTROM` along z
    (counting the gap across the periodic boundary); such a cell must not be stacked.
    """
    depth = float(atoms.cell.array[2, 2])
    heights = np.sort(np.mod(atoms.positions[:, 2], depth))
    gaps = np.diff(np.concatenate([heights, [heights[0] + depth]]))
    return bool(gaps.max() >= LAYER_VACUUM_GAP_ANGSTROM)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)
