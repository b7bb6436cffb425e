"""Distribution through Foundry/MDF: the Foundry array file and metadata, finding and downloading
a published copy, publishing with mdf-cli, and the MDF source of the cache.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

from stembench._lazy import lazy_public

_PUBLIC: dict[str, str] = {
    "ARRAY_KEYS": "foundry_arrays",
    "DEFAULT_CREATORS": "foundry_metadata",
    "DatasetMetadata": "foundry_metadata",
    "FOUNDRY_ARRAYS_SUFFIX": "foundry_arrays",
    "FOUNDRY_JSON_SCHEMA": "foundry_schema",
    "LICENCE": "foundry_metadata",
    "LICENCE_SPDX": "publish",
    "MDFSubmissionError": "publish",
    "FALLBACK_DEFAULT_SERVICE": "services",
    "LOOKUP_BUDGET_S": "source",
    "MDFApiClient": "api",
    "MDFUnavailableError": "api",
    "MDF_API_URLS": "services",
    "MDF_HTTPS_BASE": "download",
    "METADATA_UNITS": "foundry_metadata",
    "NCSA_MDF_COLLECTION": "download",
    "OFFLINE_ENV": "source",
    "PAPER_DOI": "foundry_metadata",
    "PUBLISHED_BENCHMARK_DOI": "foundry_metadata",
    "PUBLISHED_BENCHMARK_FILE": "source",
    "PUBLISHED_BENCHMARK_NAME": "source",
    "PublishedCopyRefusedWarning": "source",
    "PublishedRecord": "download",
    "TERMINAL_STATUSES": "publish",
    "TRANSFER_TIMEOUT": "download",
    "as_foundry_dataset": "source",
    "build_payload": "publish",
    "datacite_block": "foundry_metadata",
    "dataset_metadata": "foundry_metadata",
    "dataset_title": "foundry_metadata",
    "download_verified": "download",
    "file_digests": "publish",
    "find_published": "download",
    "find_published_benchmark": "source",
    "follow_status": "publish",
    "foundry_arrays_path": "foundry_arrays",
    "foundry_block": "foundry_metadata",
    "foundry_cache_dir": "source",
    "foundry_metadata": "cli",
    "install_mdf_source": "source",
    "is_current": "foundry_arrays",
    "load_published_benchmark": "source",
    "made_from": "foundry_arrays",
    "mdf_manifest": "publish",
    "mdf_source": "source",
    "ml_block": "publish",
    "offline": "source",
    "publish": "cli",
    "publish_status": "cli",
    "published_record": "download",
    "resolve_service": "services",
    "source_manifest_sha256": "foundry_arrays",
    "source_name_for": "foundry_metadata",
    "submission_status": "publish",
    "submit": "publish",
    "try_published": "source",
    "validate_foundry_metadata": "foundry_schema",
    "write_foundry_arrays": "foundry_arrays",
}
"""Public name -> the module of this sub-package that defines it."""

__getattr__, __dir__, __all__ = lazy_public(__name__, _PUBLIC)
