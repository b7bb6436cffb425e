"""Where datasets live: the source registry and local cache, the manifest, the stembench and
published HDF5 layouts, and opening a file by its layout.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

from stembench._lazy import lazy_public

_PUBLIC: dict[str, str] = {
    "BUILDER_MODULES": "cache",
    "COLUMN_ELEMENTS_KEY": "image_set",
    "COLUMN_SPACING_RANGE_ANGSTROM": "published",
    "CacheRequest": "cache",
    "Dataset": "stembench_layout",
    "DatasetSource": "cache",
    "DatasetWriter": "stembench_layout",
    "H5ImageSet": "image_set",
    "MANIFEST_ATTR": "manifest",
    "METADATA_FIELDS": "metadata",
    "Manifest": "manifest",
    "PublishedDataset": "published",
    "cache_path": "cache",
    "canonical_field_name": "published",
    "default_cache_dir": "cache",
    "is_published_layout": "published",
    "load_cached": "cache",
    "manifest_sidecar_path": "manifest",
    "open_dataset": "stembench_layout",
    "pixel_size_angstrom": "published",
    "read_manifest": "manifest",
    "register_source": "cache",
    "registered_sources": "cache",
    "sha256_array": "manifest",
    "sha256_metadata": "manifest",
    "unregister_source": "cache",
    "utc_timestamp": "manifest",
    "check_dataset_pixel_sizes": "verified",
    "validate_metadata": "metadata",
    "verify_dataset_file": "verified",
    "verify_file": "manifest",
}
"""Public name -> the module of this sub-package that defines it."""

__getattr__, __dir__, __all__ = lazy_public(__name__, _PUBLIC)
