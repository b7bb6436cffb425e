"""On-disk cache of abTEM unit-cell images: ``<key>.npy`` plus a JSON sidecar.

The sidecar records every simulation parameter and the SHA-256 of the array file; both
are written atomically, and a damaged or mismatching entry is refused, never re-used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.atomic import AtomicPath, atomic_write_bytes
from stembench.errors import IntegrityError

__all__ = ["CACHE_FORMAT_VERSION", "PeriodicImage", "read_cached_image", "write_cached_image"]

CACHE_FORMAT_VERSION = 1
"""Bumped whenever the cached image changes meaning, so that old cache files are not reused."""


@dataclass(frozen=True)
class PeriodicImage:
    """One period of a simulated HAADF image.

    Attributes
    ----------
    array : ndarray of float64, shape (rows, cols)
        Detected intensity (fraction of the incident beam); row ``i``, column ``j`` is the
        beam at ``(x, y) = (j * sampling_x, i * sampling_y)`` A from the cell origin.
    sampling_angstrom : tuple of float
        Scan step ``(x, y)`` in A per pixel.
    extent_angstrom : tuple of float
        The period ``(x, y)`` in A; equals ``array.shape[::-1] * sampling``.
    """

    array: NDArray[np.float64]
    sampling_angstrom: tuple[float, float]
    extent_angstrom: tuple[float, float]


def read_cached_image(
    cache_dir: Path | None, key: str, parameters: dict[str, Any]
) -> PeriodicImage | None:
    """The cached period for ``key``, ``None`` if absent; refuses a damaged entry.

    Parameters
    ----------
    cache_dir : pathlib.Path or None
        The cache folder; ``None``: no cache (returns ``None``).
    key : str
        The entry's key (a hash of ``parameters``), naming ``<key>.npy`` and ``<key>.json``.
    parameters : dict
        The simulation parameters the entry must have been made with (checked against its
        sidecar).
    """
    if cache_dir is None:
        return None
    array_path, sidecar_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if not sidecar_path.exists():
        return None
    try:
        sidecar = json.loads(sidecar_path.read_text())
        data = array_path.read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise IntegrityError(
            f"abTEM cache entry {sidecar_path} cannot be read ({exc}); "
            "delete it to simulate again"
        ) from exc
    if sidecar.get("parameters") != parameters:
        raise IntegrityError(
            f"abTEM cache entry {sidecar_path} records other parameters "
            "than its key; delete it to simulate again"
        )
    if hashlib.sha256(data).hexdigest() != sidecar.get("sha256"):
        raise IntegrityError(
            f"abTEM cache file {array_path} does not match the SHA-256 in "
            f"{sidecar_path.name} (truncated or modified); delete both files "
            "to simulate again"
        )
    array = np.load(array_path, allow_pickle=False)
    return PeriodicImage(
        array, tuple(sidecar["sampling_angstrom"]), tuple(sidecar["extent_angstrom"])
    )


def write_cached_image(
    cache_dir: Path | None, key: str, parameters: dict[str, Any], image: PeriodicImage, *,
    wall_s: float,
) -> None:
    """Store one period and its sidecar (parameters, SHA-256) atomically.

    Parameters
    ----------
    cache_dir : pathlib.Path or None
        The cache folder (created if missing); ``None``: nothing is stored.
    key : str
        The entry's key (a hash of ``parameters``), naming ``<key>.npy`` and ``<key>.json``.
    parameters : dict
        The simulation parameters, kept in the sidecar.
    image : PeriodicImage
        The simulated period.
    wall_s : float
        Seconds the simulation took, kept in the sidecar.
    """
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    array_path = cache_dir / f"{key}.npy"
    with AtomicPath(array_path) as temporary, temporary.open("wb") as handle:
        np.save(handle, image.array, allow_pickle=False)
    sidecar = {
        "parameters": parameters,
        "sha256": hashlib.sha256(array_path.read_bytes()).hexdigest(),
        "shape": list(image.array.shape),
        "sampling_angstrom": list(image.sampling_angstrom),
        "extent_angstrom": list(image.extent_angstrom),
        "wall_s": round(wall_s, 3),
    }
    text = json.dumps(sidecar, indent=1, sort_keys=True).encode()
    atomic_write_bytes(cache_dir / f"{key}.json", text)
