"""Take out the twin fit's own bias: refit a twin of the fit and undo what the refit changed.

At low dose the labelling assistant places each column on the noise maximum beside it, and the
least-squares fit at those positions makes the columns too bright and too narrow (on the
development lattices at 150 e-/A^2, contrast 0.5: amplitudes 5-50 % high, widths 15-30 %
narrow, ``bench/twin_bias.py``): a twin rendered from them shows sharper, brighter columns than
the image and flatters every model. The bias is measured on the fit itself (a parametric
bootstrap): one twin of the fitted model is rendered at the fitted noise, fitted again by the
same steps, and the median ratio of refitted to rendered amplitude (labelled columns) and the
ratio of the widths are divided out of the fitted model. No truth is used, so the same
correction applies to any image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin, window

__all__ = ["BIAS_CROP_PX", "BIAS_SEED", "MATCH_FRACTION", "MAX_CORRECTION", "ROUNDS", "debiased"]

#: Seed of the twin the bias is measured on (not one of the plan's twin seeds).
BIAS_SEED = 7919
#: The twins refitted are this centred crop of the image at most (the ratios are medians over
#: the columns, a few hundred in a crop; refitting a whole 512 px image twice took 3 s).
BIAS_CROP_PX = 256
#: A refitted column matches a rendered one within this fraction of the column spacing.
MATCH_FRACTION = 0.25
#: Rounds of the correction: each renders the corrected model, refits it and corrects by the
#: ratio of that refit to the image's fit (indirect inference; one round corrects a first-order
#: bias, a second the change of the bias with the width and amplitude corrected).
ROUNDS = 2
#: Neither ratio is corrected by more than this factor (or its inverse).
MAX_CORRECTION = 2.0


class _Refit(Protocol):
    @property
    def xy(self) -> NDArray[np.float64]: ...
    @property
    def sigma(self) -> float: ...
    @property
    def amplitude(self) -> NDArray[np.float64]: ...


def debiased(model: TwinModel,
             refit: Callable[[NDArray[np.float64], tuple[float, float]], _Refit]) -> TwinModel:
    """``model`` with the fit's bias in amplitude and width divided out (module docstring).

    Parameters
    ----------
    model : TwinModel
        The fitted model (no distortion yet).
    refit : callable
        The fit's column steps, applied to an image (a crop whose first pixel lies at the
        second argument, (x, y) px, in the model): returns positions ``xy`` (N, 2) px in the
        crop, the shared width ``sigma`` px and the ``amplitude`` of each column.

    Returns
    -------
    TwinModel
        The model with amplitudes and widths divided by the refit's median ratios; unchanged
        where fewer than three labelled columns are refitted.
    """
    spacing = float(np.median(cKDTree(model.xy_px).query(model.xy_px, k=2)[0][:, 1]))
    r0, c0, rows, cols = window(model, BIAS_CROP_PX)
    offset = (float(c0), float(r0))
    margin = 2.0 * spacing  # columns at the crop's edge are fitted poorly: not compared
    local = model.xy_px - offset
    inside = model.labelled & (model.amplitude > 0) & (local >= margin).all(axis=1) \
        & (local[:, 0] <= cols - 1 - margin) & (local[:, 1] <= rows - 1 - margin)
    fitted_width = float(np.median(model.sigma_px))
    current = model
    for _ in range(ROUNDS):
        twin = render_twin(current, TwinVariant("bias", "reference", 0, BIAS_SEED,
                                                crop=BIAS_CROP_PX))
        again = refit(np.asarray(twin.image, np.float64), offset)
        distance, index = cKDTree(again.xy + offset).query(current.xy_px)
        matched = inside & (distance <= MATCH_FRACTION * spacing)
        if matched.sum() < 3:
            return current
        amplitude = float(np.median(again.amplitude[index[matched]] / model.amplitude[matched]))
        width = again.sigma / fitted_width
        # the model whose twin the fit sees as it saw the image
        current = replace(current, amplitude=current.amplitude / _clip(amplitude),
                          sigma_px=current.sigma_px / _clip(width))
    return current


def _clip(ratio: float) -> float:
    return float(np.clip(ratio, 1.0 / MAX_CORRECTION, MAX_CORRECTION))
