"""Does the twin resemble the image? One measure, one threshold, and what assess does past it.

The twin is the fitted model's noise-free image (:attr:`~.fit.TwinFit.fitted`); where it is a
likeness, the image minus the twin is noise, whose variance the fit estimated at every pixel
(:attr:`~.fit.TwinFit.noise_variance`). The **unexplained fraction** is what the residual holds
beyond that noise, as a share of the image's structure::

    u = max(0, mean(residual**2) - mean(noise variance)) / var(twin)

over the image less a rim of two column spacings (where the fit is poorer because the columns
beyond the edge are not modelled). It is 0 when the twin explains everything but noise, and
grows with every column the twin lacks, merges or misplaces and with every region it renders
as a clean lattice; it does not grow with the dose, so a high-dose image is not faulted for
noise the twin reproduces, nor a low-dose one excused.

What it cannot see: columns missing beside much brighter ones. The residual's power weighs
a missing column by its squared amplitude, so a twin that lacks the faint partner of every
bright column can stay far below the limit (the held-out oblique net of pairs in the README).

Past :data:`MAX_UNEXPLAINED` assess makes **no prediction** of any model's scores: a prediction
scored on a twin that lacks a tenth of the image's structure says how the models do on another
image. See :data:`MAX_UNEXPLAINED` for why the threshold sits where it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from stembench.client.assess.twin.fit import TwinFit

__all__ = ["MAX_UNEXPLAINED", "Likeness", "likeness"]

#: Largest unexplained fraction (see the module docstring) at which the twin's predictions are
#: given. Set on the development set only (``bench/twin_likeness.py``; never the held-out set):
#: the 21 images whose twin holds at least 70 % of the image's labelled columns lie at
#: 0.000-0.039, the 7 whose twin holds at most 57 % of them at 0.31-1.62; a tenth lies in that gap,
#: well above the twins the validation trusts and well below those that lack half the image.
MAX_UNEXPLAINED = 0.10


@dataclass(frozen=True)
class Likeness:
    """How well the twin resembles the image.

    Attributes
    ----------
    unexplained : float
        The unexplained fraction (module docstring), without unit.
    chi2 : float
        Mean squared residual over the mean noise variance, same region (1 for a perfect
        likeness).
    n_columns, n_labelled : int
        Columns in the twin, and those it labels.
    """

    unexplained: float
    chi2: float
    n_columns: int
    n_labelled: int

    @property
    def ok(self) -> bool:
        """Whether the twin is a likeness (``unexplained <= MAX_UNEXPLAINED``)."""
        return self.unexplained <= MAX_UNEXPLAINED

    def refusal(self) -> str:
        """The sentence assess prints instead of predictions when the twin is no likeness."""
        return (f"no prediction: the twin does not resemble the image because it leaves "
                f"{self.unexplained:.0%} of the image's structure unexplained beyond the noise "
                f"(limit {MAX_UNEXPLAINED:.0%}; residual {self.chi2:.2g} noise variances); its "
                f"{self.n_columns} columns miss, merge or misplace what the image shows, so "
                "scores on it would describe another image")


def likeness(fit: TwinFit, image: np.ndarray) -> Likeness:
    """Measure how well ``fit``'s twin resembles ``image`` (see the module docstring)."""
    data = np.asarray(image, np.float64)
    xy = fit.model.xy_px
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1])) if len(xy) > 1 else 0.0
    rim = int(np.ceil(2.0 * spacing))
    rows, cols = data.shape
    inner = (slice(rim, rows - rim), slice(rim, cols - rim)) \
        if rows > 4 * rim and cols > 4 * rim else (slice(None), slice(None))
    residual = (data - fit.fitted)[inner]
    noise = fit.noise_variance[inner]
    signal = float(np.var(fit.fitted[inner]))
    excess = float(np.mean(residual**2) - np.mean(noise))
    unexplained = max(0.0, excess) / signal if signal > 0 else float("inf")
    return Likeness(unexplained, float(np.mean(residual**2) / np.mean(noise)), len(xy),
                    int(fit.model.labelled.sum()))
