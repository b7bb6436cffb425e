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

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

MOVED_MODULES: dict[str, str] = {
    "abtem_backend": "simulate.abtem_backend",
    "abtem_cache": "simulate.abtem_cache",
    "build": "simulate.build",
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


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import an old flat module path as the module that now lives in a sub-package."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        old = spec.name.rpartition(".")[2]
        new = f"{__name__}.{MOVED_MODULES[old]}"
        warnings.warn(
            f"{spec.name} moved to {new}; the old path stops working in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs[new] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """The module ran under its new name: give it back the spec the import system replaced."""
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
