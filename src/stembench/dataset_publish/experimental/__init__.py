"""Real microscope images: reading microscope (and other image) files, importing a user's
labelled images, and quality series derived from them.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

from stembench._lazy import lazy_public

_PUBLIC: dict[str, str] = {
    "DUPLICATE_DISTANCE_PX": "importer",
    "EXPERIMENTAL_AXES": "derived_series",
    "EXPERIMENTAL_STEPS": "build",
    "ExperimentalSource": "build",
    "MICROSCOPE_FORMATS": "importer",
    "MICROSCOPE_READERS": "microscope",
    "MicroscopeImage": "microscope",
    "UNIT_TO_ANGSTROM": "microscope",
    "bin_image": "derived_series",
    "check_imported_labels": "importer",
    "experimental_images": "build",
    "experimental_series": "derived_series",
    "import_dataset": "importer",
    "import_labelled_image": "importer",
    "pixel_size_from_axes": "microscope",
    "read_any_image": "images",
    "read_experimental_folder": "build",
    "read_image_and_pixel_size": "images",
    "read_image_file": "importer",
    "read_microscope_image": "microscope",
    "read_positions_csv": "importer",
    "resolve_pixel_size": "microscope",
}
"""Public name -> the module of this sub-package that defines it."""

__getattr__, __dir__, __all__ = lazy_public(__name__, _PUBLIC)
