"""Which twins to render: the twins at the estimated quality, and a series per quality axis.

:func:`twin_plan` lists the images: ``n_twins`` renderings at the estimated quality (seed 0
at the point estimate, the others with the estimate's uncertainty sampled) and a series
that makes each quality axis worse, step by step, from the twin's values, on a central crop.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin
from stembench.errors import InputError

__all__ = ["SERIES_CROP_PX", "SERIES_STEPS", "atoms_per_100px", "model_contrast", "twin_dose",
           "twin_plan"]

#: How each series makes its axis worse, per step, from the twin's values: sampling factor
#: (pixels per length), width factor, dose divisor, contrast factor, added fly-back (px),
#: added drift (px per line).
SERIES_STEPS: dict[str, tuple[float, ...]] = {
    "pixel_size": (0.75, 0.55, 0.4),
    "resolution": (1.3, 1.7, 2.2),
    "noise": (3.0, 10.0, 30.0),
    "contrast": (0.5, 0.2, 0.08),
    "flyback": (0.5, 1.0, 2.0),
    "drift": (0.05, 0.1, 0.2),
}
#: Side of the central crop the series is rendered on, pixels.
SERIES_CROP_PX = 256


def atoms_per_100px(model: TwinModel) -> float:
    """``100 / median nearest-neighbour distance`` of the columns (pixels), the benchmark's
    sampling axis."""
    from scipy.spatial import cKDTree

    distance = cKDTree(model.xy_px).query(model.xy_px, k=2)[0][:, 1]
    return float(100.0 / np.median(distance))


def twin_plan(model: TwinModel, *, n_twins: int = 4, series: bool = True
              ) -> list[TwinVariant]:
    """The twins at the estimated quality, then each axis' series (see the module docstring).

    Twin ``k >= 1`` draws its width and gain scale and its distortion from the model's
    ``uncertainty`` (seeded by ``k``, so the plan is the same on every machine).

    Parameters
    ----------
    model : TwinModel
        The fitted column model of the real image.
    n_twins : int, optional
        Twins at the estimated quality (at least 1); default 4.
    series : bool, optional
        Also plan each axis' series; default True.
    """
    if n_twins < 1:
        raise InputError(f"at least one twin is needed, got {n_twins}")
    unc = model.uncertainty
    plan = []
    for k in range(n_twins):
        rng = np.random.default_rng(1000 + k)
        draw = rng.normal(0.0, 1.0, 4) if k else np.zeros(4)
        plan.append(TwinVariant(
            f"twin-{k}", "reference", 0, k,
            sigma_scale=float(max(0.5, 1 + draw[0] * unc.get("sigma", 0.0))),
            gain_scale=float(max(0.2, 1 + draw[1] * unc.get("gain", 0.0))),
            flyback_px=float(max(0.0, model.flyback_px + draw[2] * unc.get("flyback", 0.0))),
            drift_px_per_line=float(max(0.0, model.drift_px_per_line
                                        + draw[3] * unc.get("drift", 0.0))),
            axis_value=model.resolution_pm))
    if not series:
        return plan
    base = replace(plan[0], crop=SERIES_CROP_PX)
    contrast = model_contrast(model)
    for axis, steps in SERIES_STEPS.items():
        for step, amount in enumerate(steps, start=1):
            variant = replace(base, image_id=f"{axis}-{step}", series=axis, step=step,
                              seed=100 + step)
            if axis == "pixel_size":
                variant = replace(variant, scale=amount,
                                  axis_value=atoms_per_100px(model) / amount)
            elif axis == "resolution":
                variant = replace(variant, sigma_scale=amount,
                                  axis_value=model.resolution_pm * amount)
            elif axis == "noise":
                dose = twin_dose(model) / amount
                variant = replace(variant, gain_scale=amount,
                                  axis_value=dose if math.isfinite(dose) else math.nan)
            elif axis == "contrast":
                variant = replace(variant, contrast=contrast * amount,
                                  axis_value=contrast * amount)
            elif axis == "flyback":
                value = math.hypot(model.flyback_px, amount)
                variant = replace(variant, flyback_px=value, axis_value=value)
            else:
                value = math.hypot(model.drift_px_per_line, amount)
                variant = replace(variant, drift_px_per_line=value, axis_value=value)
            plan.append(variant)
    return plan


def model_contrast(model: TwinModel) -> float:
    """Contrast ``(max - min) / max`` of the noise-free twin on the series' crop."""
    clean = render_twin(replace(model, gain=0.0, read_variance=0.0),
                        TwinVariant("probe", "reference", 0, 0, crop=SERIES_CROP_PX)).raw
    assert clean is not None
    top = float(clean.max())
    return float((top - clean.min()) / top) if top > 0 else 1.0


def twin_dose(model: TwinModel) -> float:
    """Dose of the twin, e-/A^2: brightest column's counts per pixel area (inf if noiseless)."""
    if model.gain <= 0:
        return math.inf
    return float(np.percentile(model.amplitude, 95)) / model.gain / model.pixel_size**2
