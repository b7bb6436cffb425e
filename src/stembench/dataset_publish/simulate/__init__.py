"""Simulated images with exact labels: crystal structures and their catalogue, image-formation
backends, probe, scan, degradations, the visibility rule, quality series, the dataset build and
its label check.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

from stembench._lazy import lazy_public

_PUBLIC: dict[str, str] = {
    "ATTACH_RADIUS_ANGSTROM": "visibility",
    "AXES": "series",
    "AbtemHAADF": "abtem_backend",
    "Builder": "generality",
    "CACHE_FORMAT_VERSION": "abtem_cache",
    "CHECK_TOLERANCE": "visibility",
    "ColumnStructure": "columns",
    "DATASET_NAME": "build",
    "DATASET_VERSION": "build",
    "DEFAULT_PHONON_SIGMAS_ANGSTROM": "abtem_backend",
    "ELEMENTARY_CHARGE_C": "degradations",
    "FALLBACK_PHONON_SIGMA_ANGSTROM": "abtem_backend",
    "FastHAADF": "fast_backend",
    "GENERALITY_NAMES": "build",
    "GENERALITY_STRUCTURES": "generality",
    "GENERATOR_VERSION": "series",
    "ImageFormation": "fast_backend",
    "LAYER_VACUUM_GAP_ANGSTROM": "abtem_backend",
    "LabelCheck": "check",
    "LabelProblem": "visibility",
    "Lattice": "structures",
    "MATERIALS": "series",
    "MIN_VISIBLE_CONTRAST": "visibility",
    "MaterialSeries": "series",
    "PRESETS": "build",
    "PROBE_CURRENT_PA": "series",
    "PeriodicImage": "abtem_cache",
    "Preset": "build",
    "ProbeParameters": "probe",
    "RenderedImage": "series",
    "SAMPLING_ANGSTROM": "visibility",
    "ScanParameters": "scan",
    "apply_gamma": "degradations",
    "basis_visibility": "structures",
    "beam_positions": "scan",
    "blur_to_resolution": "degradations",
    "build_structure": "catalogue",
    "check_dataset": "check",
    "check_labels": "visibility",
    "columns_with_peak": "visibility",
    "contrast": "degradations",
    "dose_from_current": "degradations",
    "dwell_time_s": "degradations",
    "electron_wavelength_angstrom": "probe",
    "generality_images": "build",
    "ground_truth_pixels": "scan",
    "image_metadata": "series",
    "is_layer": "abtem_backend",
    "iter_dataset": "build",
    "lattice": "structures",
    "line_offsets_px": "scan",
    "list_structures": "catalogue",
    "material_series": "series",
    "poisson_at_dose": "degradations",
    "probe_fwhm_angstrom": "probe",
    "probe_profile": "probe",
    "psnr_db": "degradations",
    "read_cached_image": "abtem_cache",
    "reference_image": "series",
    "render": "series",
    "seed_for": "series",
    "set_contrast": "degradations",
    "structure_from_columns": "structures",
    "structure_visibility": "visibility",
    "tile_lattice": "structures",
    "visible_peaks": "visibility",
    "write_cached_image": "abtem_cache",
}
"""Public name -> the module of this sub-package that defines it."""

__getattr__, __dir__, __all__ = lazy_public(__name__, _PUBLIC)
