"""Which columns are visible and where they are: one rule, from the noise-free image.

The rule
--------
A column's *contrast* is the topographic prominence of the intensity maximum it produces in
the noise-free HAADF image (its peak height above the highest saddle that connects it to a
brighter peak, i.e. above its local background), divided by the image's range (brightest
column's peak minus the darkest background). A local maximum belongs to the nearest column,
if that column lies within :data:`ATTACH_RADIUS_ANGSTROM` (the benchmark's match radius); a
column without a maximum of its own (a dim column on the shoulder of a bright one) has
contrast 0. A column is **visible** when its contrast is at least
:data:`MIN_VISIBLE_CONTRAST`, otherwise **faint**. Visible columns are the ground truth; faint
ones are labelled as faint and are "don't care" in the primary score.

At construction the image is the incoherent model of
:class:`~stembench.dataset_publish.simulate.fast_backend.FastHAADF` at the dataset's probe,
noise-free,
undistorted and sampled at :data:`SAMPLING_ANGSTROM`; labels therefore do not change with the
degradations of a series. :func:`check_labels` applies the same measure to a stored noise-free
image, with a tolerance for the coarser pixel grid.

Where a column is labelled, :func:`column_pixels`, follows from the same model: at its
position moved as far as the scan's distortion moves the centroid of the column's own image,
each scan line displacing its part by its own offset (fly-back, drift) and weighted by the
share of the column's intensity, at the probe, that it records
(:func:`stembench.dataset_publish.simulate.scan.ground_truth_pixels`). A locator sees the
column where its image is; the line through the column's centre is one of about ten that
make that image, with independent fly-back offsets.

Contrasts measured at the default probe (0.75 A FWHM, exponent 1.7, 0.05 A sampling):
SrTiO3[100] Sr 0.98, Ti+O 0.45, O 0.06 (faint); SrTiO3[110] O2 0.09; LaAlO3[100] Al+O 0.11,
O 0.03 (faint); BaTiO3[100] O 0.03 (faint); WS2 S2 0.13; MgAl2O4[110] Mg2 0.25, O4 0.36, one
of the two O2 sites 0.25 (the other draws no peak of its own: faint). The threshold sits in the
gap between 0.06 and 0.09, so that no structure's column lies near it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from stembench._moved import moved_names
from stembench.dataset_publish.simulate.fast_backend import FastHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.scan import ScanParameters, ground_truth_pixels

if TYPE_CHECKING:
    from stembench.dataset_publish.simulate.columns import ColumnStructure

__all__ = [
    "ATTACH_RADIUS_ANGSTROM",
    "CHECK_TOLERANCE",
    "MIN_VISIBLE_CONTRAST",
    "SAMPLING_ANGSTROM",
    "LabelProblem",
    "check_labels",
    "column_pixels",
    "columns_with_peak",
    "structure_visibility",
    "visible_peaks",
]

#: A column is visible when its contrast (see the module docstring) is at least this; below it,
#: faint. A fraction of the image's range, so without unit (was ``FAINT_FRACTION``).
MIN_VISIBLE_CONTRAST = 0.075
#: A local maximum belongs to its nearest column only within this distance (angstrom).
ATTACH_RADIUS_ANGSTROM = 0.5
#: Sampling of the noise-free image the labels are computed on (angstrom per sample).
SAMPLING_ANGSTROM = 0.1
#: The check flags an unlabelled peak above ``MIN_VISIBLE_CONTRAST * CHECK_TOLERANCE`` and a
#: visible label whose contrast is below ``MIN_VISIBLE_CONTRAST / CHECK_TOLERANCE`` (pixel-grid
#: sampling).
CHECK_TOLERANCE = 1.25
_INSET_ANGSTROM = 1.5


def visible_peaks(image: NDArray[np.floating], *, fraction: float) -> NDArray[np.float64]:
    """Local maxima of ``image`` whose prominence is at least ``fraction`` of its range.

    The prominence (dynamic) of a maximum is its height above the highest saddle that leads
    to a brighter maximum; the maxima are those of the h-maxima transform
    (:func:`skimage.morphology.h_maxima`, 8-connected) with ``h = fraction * range``.

    Returns
    -------
    ndarray, shape (K, 2)
        The brightest pixel of each such maximum, (x, y) pixels.
    """
    from scipy import ndimage
    from skimage.morphology import h_maxima

    values = np.asarray(image, dtype=np.float64)
    span = float(np.ptp(values))
    if span == 0.0:
        return np.zeros((0, 2))
    regions, count = ndimage.label(h_maxima(values, fraction * span), structure=np.ones((3, 3)))
    where = ndimage.maximum_position(values, regions, np.arange(1, count + 1))
    return np.array([(c, r) for r, c in where], dtype=np.float64).reshape(-1, 2)


def _attach(columns_px: NDArray[np.float64], peaks_px: NDArray[np.float64],
            attach_radius_px: float) -> NDArray[np.intp]:
    """Index of the column each peak belongs to (nearest within the radius), -1 for none."""
    if len(columns_px) == 0 or len(peaks_px) == 0:
        return np.full(len(peaks_px), -1, dtype=np.intp)
    dist, nearest = cKDTree(columns_px).query(peaks_px)
    return np.where(dist <= attach_radius_px, nearest, -1).astype(np.intp)


def columns_with_peak(columns_px: NDArray[np.float64], image: NDArray[np.floating], *,
                      fraction: float, attach_radius_px: float) -> NDArray[np.bool_]:
    """Which columns own a maximum of prominence at least ``fraction`` of the image's range.

    Parameters
    ----------
    columns_px : ndarray, shape (N, 2)
        Every column (visible or not) as (x, y) pixels of ``image``.
    image : ndarray, shape (rows, cols)
        Noise-free image.
    fraction : float
        Prominence threshold as a fraction of the image's range.
    attach_radius_px : float
        How far a maximum may lie from its (nearest) column, in pixels.
    """
    columns = np.asarray(columns_px, dtype=np.float64).reshape(-1, 2)
    owner = _attach(columns, visible_peaks(image, fraction=fraction), attach_radius_px)
    owned = np.zeros(len(columns), dtype=bool)
    owned[owner[owner >= 0]] = True
    return owned


@lru_cache(maxsize=8)
def _former(probe: ProbeParameters) -> FastHAADF:
    return FastHAADF(probe)


def structure_visibility(structure: ColumnStructure, *,
                         probe: ProbeParameters) -> NDArray[np.bool_]:
    """Which columns of ``structure`` are visible in its noise-free image at ``probe``.

    The image is the incoherent model sampled at :data:`SAMPLING_ANGSTROM` over the
    structure's extent less :data:`_INSET_ANGSTROM` on every side (where the structure's edge
    would darken the background); a column in that rim is visible only if the inner image
    shows its peak.
    """
    width, height = structure.extent_angstrom
    inset = min(_INSET_ANGSTROM, width / 4, height / 4)
    xs = np.arange(inset, width - inset, SAMPLING_ANGSTROM)
    ys = np.arange(inset, height - inset, SAMPLING_ANGSTROM)
    x, y = np.meshgrid(xs, ys)
    image = _former(probe).intensity(structure, x, y)
    return columns_with_peak((structure.positions_angstrom - inset) / SAMPLING_ANGSTROM, image,
                             fraction=MIN_VISIBLE_CONTRAST,
                             attach_radius_px=ATTACH_RADIUS_ANGSTROM / SAMPLING_ANGSTROM)


def column_pixels(positions_angstrom: NDArray[np.float64], scan: ScanParameters, *,
                  probe: ProbeParameters) -> NDArray[np.float64]:
    """Labels: pixel (x, y) of each column's image on ``scan`` at ``probe`` (its centroid).

    Parameters
    ----------
    positions_angstrom : ndarray, shape (N, 2)
        Specimen positions (x, y) of the columns, angstrom.
    scan : ScanParameters
        The scan that recorded the image.
    probe : ProbeParameters
        The probe whose profile, integrated along each line, weights the lines.

    Returns
    -------
    ndarray, shape (N, 2)
        (x = column, y = row) pixels, NaN where no scan line reaches the column.
    """
    former = _former(probe)
    return ground_truth_pixels(positions_angstrom, scan, line_weight=former.line_weight,
                               reach_angstrom=former.cutoff_angstrom)


@dataclass(frozen=True)
class LabelProblem:
    """One disagreement between a noise-free image's peaks and its labels.

    Attributes
    ----------
    kind : str
        ``"unlabelled peak"`` (a peak of contrast above ``MIN_VISIBLE_CONTRAST * CHECK_TOLERANCE``
        with no visible label within the attach radius) or ``"label without
        peak"`` (a visible label owning no peak of contrast ``MIN_VISIBLE_CONTRAST /
        CHECK_TOLERANCE``).
    x, y : float
        Where, in pixels.
    """

    kind: str
    x: float
    y: float

    def describe(self) -> str:
        """One line: what was found where."""
        limit = (f"contrast >= {MIN_VISIBLE_CONTRAST * CHECK_TOLERANCE:.3f}"
                 if self.kind == "unlabelled peak"
                 else f"no peak of contrast >= {MIN_VISIBLE_CONTRAST / CHECK_TOLERANCE:.3f}")
        return f"{self.kind} at x={self.x:.1f}, y={self.y:.1f} px ({limit})"


def check_labels(raw: NDArray[np.floating], visible_px: NDArray[np.float64], *,
                 pixel_size: float, border_px: float = 6.0) -> list[LabelProblem]:
    """Compare a noise-free image's peaks with its visible labels; return every disagreement.

    A peak of contrast at least ``MIN_VISIBLE_CONTRAST * CHECK_TOLERANCE`` must have a visible label
    within :data:`ATTACH_RADIUS_ANGSTROM` (a peak on a column labelled faint, or on none, is
    an unlabelled peak), and every visible label must own a peak of contrast at least
    ``MIN_VISIBLE_CONTRAST / CHECK_TOLERANCE`` (a peak belongs to its nearest visible label within
    that radius). Faint labels need no check: any peak they have is below the first bound, or
    it is reported. Peaks and labels within ``border_px`` of the edge, whose surroundings the
    image cuts, are not checked.

    Parameters
    ----------
    raw : ndarray, shape (rows, cols)
        The noise-free image of a clean (undegraded) step.
    visible_px : ndarray, shape (N, 2)
        Visible labels, (x, y) pixels.
    pixel_size : float
        A/px.
    border_px : float
        Edge margin in pixels.

    Returns
    -------
    list of LabelProblem
        Empty when the labels agree with the image.
    """
    rows, cols = raw.shape
    visible = np.asarray(visible_px, dtype=np.float64).reshape(-1, 2)
    radius = ATTACH_RADIUS_ANGSTROM / pixel_size
    peaks = visible_peaks(raw, fraction=MIN_VISIBLE_CONTRAST * CHECK_TOLERANCE)
    problems = [LabelProblem("unlabelled peak", float(p[0]), float(p[1]))
                for p, o in zip(peaks, _attach(visible, peaks, radius), strict=True) if o < 0]
    owned = columns_with_peak(visible, raw, fraction=MIN_VISIBLE_CONTRAST / CHECK_TOLERANCE,
                              attach_radius_px=radius)
    problems += [LabelProblem("label without peak", float(p[0]), float(p[1]))
                 for p, k in zip(visible, owned, strict=True) if not k]
    low_edge, x_edge, y_edge = border_px, cols - 1 - border_px, rows - 1 - border_px
    return [p for p in problems if low_edge <= p.x <= x_edge and low_edge <= p.y <= y_edge]


__getattr__ = moved_names(__name__, {"FAINT_FRACTION": f"{__name__}:MIN_VISIBLE_CONTRAST"})
