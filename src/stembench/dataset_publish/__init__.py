"""Build, store, label and publish the benchmark dataset.

Five sub-packages, one job each (their ``__init__`` names the public API):

- :mod:`~stembench.dataset_publish.simulate`: structures, image formation, degradations, labels,
  quality series, the build and its check;
- :mod:`~stembench.dataset_publish.storage`: source registry, cache, manifest, HDF5 layouts;
- :mod:`~stembench.dataset_publish.experimental`: microscope files, imported labels, experimental
  series;
- :mod:`~stembench.dataset_publish.labelling`: the labelling assistant;
- :mod:`~stembench.dataset_publish.mdf`: Foundry/MDF arrays, metadata, download and publishing.

The flat module paths of release 1 (``stembench.dataset_publish.build`` and so on) still import,
with a :class:`DeprecationWarning`, for one release.
"""

from __future__ import annotations

from stembench._moved import install_moved_modules

MOVED_MODULES: dict[str, str] = {
    "abtem_backend": "simulate.abtem_backend",
    "abtem_cache": "simulate.abtem_cache",
    "cache": "storage.cache",
    "check": "simulate.check",
    "degradations": "simulate.degradations",
    "experimental_build": "experimental.build",
    "fast_backend": "simulate.fast_backend",
    "foundry_arrays": "mdf.foundry_arrays",
    "foundry_metadata": "mdf.foundry_metadata",
    "foundry_source": "mdf.source",
    "generality": "simulate.generality",
    "importer": "experimental.importer",
    "label_cli": "labelling.cli",
    "label_review": "labelling.review",
    "manifest": "storage.manifest",
    "mdf_download": "mdf.download",
    "mdf_publish": "mdf.publish",
    "microscope": "experimental.microscope",
    "probe": "simulate.probe",
    "publish_cli": "mdf.cli",
    "published": "storage.published",
    "scan": "simulate.scan",
    "series": "simulate.series",
    "structures": "simulate.structures",
    "visibility": "simulate.visibility",
}
"""Old flat module name -> its place in the sub-packages (deprecated aliases)."""


install_moved_modules(__name__, {old: f"{__name__}.{new}" for old, new in MOVED_MODULES.items()})
