"""Build the benchmark dataset: the simulated quality series and generality set
(:mod:`stembench.dataset_publish.simulate.build`), plus any labelled real images
(:mod:`stembench.dataset_publish.experimental.build`), written with their manifest.

This is the builder of ``"atom-locating-benchmark"`` that the cache calls
(:data:`stembench.dataset_publish.storage.cache.BUILDER_MODULES`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from stembench._moved import moved_names
from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.experimental.build import (
    experimental_images,
    read_experimental_folder,
)
from stembench.dataset_publish.simulate.build import (
    DATASET_NAME,
    DATASET_VERSION,
    GENERATOR_VERSION,
    PRESETS,
    image_count,
    image_formation,
    iter_dataset,
)
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter
from stembench.errors import InputError

__all__ = ["DATASET_NAME", "DATASET_VERSION", "build_dataset"]


def build_dataset(path: str | Path, *, preset: Literal["mini", "standard"] = "standard",
                  backend: Literal["fast", "abtem"] = "fast", seeds: int | None = None,
                  progress: bool = True, experimental: str | Path | None = None) -> Path:
    """Generate the benchmark and write it to the HDF5 file ``path`` (replacing it).

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file; its folder must exist.
    preset : {"mini", "standard"}
        Build size (see the module docstring).
    backend : {"fast", "abtem"}
        Image formation of the materials' series.
    seeds : int, optional
        Realisations per step; defaults to the preset's.
    progress : bool
        Show a tqdm progress bar.
    experimental : str or Path, optional
        A folder of labelled real images added as experimental groups with their quality
        series (:mod:`stembench.dataset_publish.experimental.build`).

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile
    >>> from stembench.dataset_publish.storage.stembench_layout import open_dataset
    >>> path = build_dataset(Path(tempfile.mkdtemp()) / "mini.h5", preset="mini",
    ...                      progress=False)
    >>> with open_dataset(path) as dataset:
    ...     print(dataset.name, len(dataset) > 0)
    atom-locating-benchmark True
    """
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    spec = PRESETS[preset]
    n_seeds = spec.seeds if seeds is None else int(seeds)
    if n_seeds < 1:
        raise InputError(f"seeds must be >= 1 (an empty series otherwise), got {seeds}")
    out = Path(path)
    probe = ProbeParameters()
    former = image_formation(backend, probe, out.parent / "abtem-cache")
    params = {"preset": preset, "backend": backend, "seeds": n_seeds,
              "shape": list(spec.shape), "probe": vars(probe).copy(),
              "generator_version": GENERATOR_VERSION}
    images: Iterator[BenchmarkImage] = iter_dataset(preset=spec, backend=former, probe=probe,
                                                    seeds=n_seeds)
    total = image_count(spec, n_seeds)
    if experimental is not None:
        sources = read_experimental_folder(experimental)
        added = list(experimental_images(sources, preset=preset, seeds=n_seeds))
        params["experimental"] = {s.image.image_id: {"group": s.image.metadata["group"],
                                                     "source": s.image.metadata["source"],
                                                     "notes": list(s.notes)} for s in sources}
        images, total = itertools.chain(images, added), total + len(added)
    with DatasetWriter(out, name=DATASET_NAME, version=DATASET_VERSION,
                       generator_params=params, generator_version=GENERATOR_VERSION,
                       overwrite=True) as writer:
        for image in tqdm(images, total=total, disable=not progress,
                          desc=f"building {preset} dataset", unit="img"):
            writer.add(image)
    return out


__getattr__ = moved_names(__name__, {name: "stembench.dataset_publish.simulate.build" for name in (
    "GENERALITY_NAMES", "Preset", "generality_images")})
