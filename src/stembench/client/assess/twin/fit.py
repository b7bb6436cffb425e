"""Fit a column model (:class:`~stembench.dataset_publish.simulate.twin.TwinModel`) to an image.

* **Positions**: the labelling assistant's columns
  (:func:`~stembench.dataset_publish.labelling.propose.propose_labels`), completed by the
  sites of the assessed lattice's motif where the assistant found nothing, with the scan's
  per-line x shifts (:func:`~stembench.imaging.estimate.estimate_distortion`) taken out
  where fly-back or drift is detected (estimate above :data:`DETECTED_PX` and above twice
  its uncertainty); the twin then renders that distortion again, as a new realisation.
* **Intensities and background**: one linear least-squares fit of the whole image as the
  columns, each a Gaussian of one shared width with its own amplitude, on a background
  that is bilinear between the nodes of a coarse grid (about four column spacings apart);
  the shared width is the one of least residual (bounded scalar search on a sample of the
  pixels).
* **Noise**: the residual's differences between neighbouring pixels of a line (the fit's
  misfit is smooth at that scale, white noise is not), their variance in bins of fitted
  intensity, fitted as ``read_variance + gain * intensity`` (both >= 0): shot noise of
  ``intensity / gain`` counts plus a constant; the dose follows from ``gain``.

What the model cannot represent is reported, not hidden (:func:`limitations`): columns
closer than two widths (they blur into one), and regions where the residual is well above
the noise (amorphous material, contamination, columns the assistant did not find).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, optimize, sparse
from scipy.sparse.linalg import spsolve
from scipy.spatial import cKDTree

from stembench.client.assess.assessment import Assessment
from stembench.client.assess.twin.bias import debiased
from stembench.dataset_publish.labelling.propose import LabelProposal
from stembench.dataset_publish.simulate.twin import TwinModel
from stembench.errors import InputError

__all__ = ["COMPLETION_FRACTION", "DETECTED_PX", "EXCESS_FACTOR", "EXPLAINED_FRACTION",
           "MERGED_WIDTH", "TwinFit", "fit_twin", "limitations"]

#: Fly-back (px) or drift (px per line) below this is treated as absent.
DETECTED_PX = 0.1
#: A region is unmodelled where its mean squared residual, in noise variances, exceeds this
#: many times the image's median (or than the noise, where the median is below it).
EXCESS_FACTOR = 3.0
_CROP_PX = 160
#: A found column wider than this many times the median width may be two merged ones.
MERGED_WIDTH = 1.3
#: Sites are added only when at least this fraction of the found columns lies on the lattice.
EXPLAINED_FRACTION = 0.8
#: A lattice site this far (fraction of the column spacing) from every found column is added.
COMPLETION_FRACTION = 0.35


@dataclass(frozen=True)
class TwinFit:
    """A fitted twin model and how well it explains the image.

    Attributes
    ----------
    model : TwinModel
        The fitted model.
    observed_xy : ndarray, shape (N, 2)
        Column positions as seen in the image (the assistant's, then the lattice sites
        added), pixels.
    fitted : ndarray
        The noise-free model image (no distortion re-rendered).
    noise_variance : ndarray
        The fitted noise variance at every pixel.
    unmodelled : ndarray of bool
        Pixels whose neighbourhood's residual is over :data:`EXCESS_FACTOR` noise variances.
    closest_pair_widths : float
        Smallest distance between two columns in units of the shared width.
    n_unsure : int
        Columns the assistant marked unsure.
    n_completed : int
        Lattice sites added where the assistant found no column.
    n_merged : int
        Found columns that look like two merged ones: wider than :data:`MERGED_WIDTH` times
        the median, or fitted poorly by one Gaussian (the assistant's chi-square test).
    """

    model: TwinModel
    observed_xy: NDArray[np.float64]
    fitted: NDArray[np.float64]
    noise_variance: NDArray[np.float64]
    unmodelled: NDArray[np.bool_]
    closest_pair_widths: float
    n_unsure: int
    n_completed: int
    n_merged: int


def _design(shape: tuple[int, int], xy: NDArray[np.float64], sigma: float,
            grid: tuple[int, int], pixels: NDArray[np.int64]) -> sparse.csr_matrix:
    """Sparse design matrix, rows = ``pixels`` (flat indices), columns = columns then nodes."""
    rows, cols = shape
    half = math.ceil(4.0 * sigma)
    offsets = np.arange(-half, half + 1)
    rr = np.rint(xy[:, 1]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    cc = np.rint(xy[:, 0]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    value = np.exp(-((cc - xy[:, 0, None, None]) ** 2 + (rr - xy[:, 1, None, None]) ** 2)
                   / (2.0 * sigma * sigma))
    which = np.broadcast_to(np.arange(len(xy))[:, None, None], value.shape)
    full = sparse.csr_matrix((value[inside], ((rr * cols + cc)[inside], which[inside])),
                             shape=(rows * cols, len(xy) + grid[0] * grid[1]))
    py, px = pixels // cols, pixels % cols
    gy = py / max(rows - 1, 1) * (grid[0] - 1)
    gx = px / max(cols - 1, 1) * (grid[1] - 1)
    y0 = np.minimum(np.floor(gy).astype(np.int64), grid[0] - 2)
    x0 = np.minimum(np.floor(gx).astype(np.int64), grid[1] - 2)
    fy, fx = gy - y0, gx - x0
    node_rows, node_cols, node_vals = [], [], []
    for ny, nx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        node_rows.append(np.arange(len(pixels)))
        node_cols.append(len(xy) + (y0 + ny) * grid[1] + x0 + nx)
        node_vals.append(weight)
    nodes = sparse.csr_matrix((np.concatenate(node_vals), (np.concatenate(node_rows),
                                                            np.concatenate(node_cols))),
                              shape=(len(pixels), full.shape[1]))
    return full[pixels] + nodes


def _solve(image: NDArray[np.float64], xy: NDArray[np.float64], sigma: float,
           grid: tuple[int, int], pixels: NDArray[np.int64]
           ) -> tuple[NDArray[np.float64], float, sparse.csr_matrix]:
    matrix = _design(image.shape, xy, sigma, grid, pixels)
    values = image.ravel()[pixels]
    normal = (matrix.T @ matrix).tocsc()
    normal = normal + sparse.identity(normal.shape[0], format="csc") * (
        1e-9 * float(normal.diagonal().max()))
    coef = np.asarray(spsolve(normal, matrix.T @ values), np.float64)
    return coef, float(np.sum((matrix @ coef - values) ** 2)), matrix


def _complete(xy: NDArray[np.float64], assessment: Assessment | None,
              shape: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)
              ) -> NDArray[np.float64]:
    """``xy`` plus every site of the assessed lattice's motif that no column lies near.

    The assistant misses columns that are faint or noisy; a twin built from its columns
    alone would lack them and flatter the detectors that miss them too. Sites farther than
    :data:`COMPLETION_FRACTION` of the column spacing from every found column are added;
    the fit then gives each its amplitude (one the visibility rule finds faint stays unlabelled
    in the twin). Nothing
    is added when fewer than :data:`EXPLAINED_FRACTION` of the found columns lie on the
    lattice (a finite particle, several grains, or a lattice found wrongly).
    """
    if assessment is None or len(assessment.lattice.columns_frac) == 0:
        return xy
    lattice = assessment.lattice
    rows, cols = shape
    corners = np.array([[0, 0], [cols, 0], [0, rows], [cols, rows]], float) + offset
    frac = corners @ lattice.reciprocal.T
    low, high = np.floor(frac.min(axis=0)) - 1, np.ceil(frac.max(axis=0)) + 1
    n, m = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
    cells = np.column_stack([n.ravel(), m.ravel()])
    sites = ((cells[:, None, :] + lattice.columns_frac[None, :, :]).reshape(-1, 2)
             @ lattice.real) - np.asarray(offset, np.float64)
    inside = (sites[:, 0] >= 0) & (sites[:, 0] <= cols - 1) & (sites[:, 1] >= 0) \
        & (sites[:, 1] <= rows - 1)
    sites = sites[inside]
    reach = COMPLETION_FRACTION * lattice.spacing_px
    on_lattice = cKDTree(sites).query(xy)[0] <= reach
    if on_lattice.mean() < EXPLAINED_FRACTION:  # the lattice does not explain the columns
        return xy
    distance = cKDTree(xy).query(sites)[0]
    missing = sites[distance > reach]
    return np.vstack([xy, missing]) if len(missing) else xy


def _shared_width(image: NDArray[np.float64], xy: NDArray[np.float64], start: float) -> float:
    """The shared column width of least residual, fitted on a central crop of the image."""
    rows, cols = image.shape
    side = int(min(rows, cols, _CROP_PX))
    r0, c0 = (rows - side) // 2, (cols - side) // 2
    crop = image[r0:r0 + side, c0:c0 + side]
    local = xy - np.array([c0, r0])
    margin = 8.0 * start
    near = ((local > -margin) & (local < side + margin)).all(axis=1)
    if near.sum() < 3:
        return start
    every = np.arange(side * side)
    search = optimize.minimize_scalar(
        lambda log_s: _solve(crop, local[near], float(np.exp(log_s)), (2, 2), every)[1],
        bounds=(np.log(0.5 * start), np.log(2.0 * start)), method="bounded",
        options={"xatol": 0.02, "maxiter": 12})
    return float(np.exp(search.x))


def _noise_model(image: NDArray[np.float64], fitted: NDArray[np.float64]
                 ) -> tuple[float, float]:
    """``(gain, read_variance)`` from neighbouring-pixel residual differences."""
    residual = image - fitted
    diff = (residual[:, 1:] - residual[:, :-1]) / math.sqrt(2.0)
    level = 0.5 * (fitted[:, 1:] + fitted[:, :-1])
    edges = np.unique(np.percentile(level, np.linspace(0, 100, 11)))
    if len(edges) < 3:
        return 0.0, float(np.median(diff**2) / 0.4549)
    index = np.clip(np.searchsorted(edges, level.ravel(), side="right") - 1, 0, len(edges) - 2)
    means, variances = [], []
    for k in range(len(edges) - 1):
        part = diff.ravel()[index == k]
        if part.size >= 50:
            means.append(float(level.ravel()[index == k].mean()))
            spread = 1.4826 * np.median(np.abs(part - np.median(part)))
            kept = part[np.abs(part - np.median(part)) <= 5.0 * max(spread, 1e-300)]
            variances.append(float(np.mean((kept - kept.mean()) ** 2)))
    intensity, variance = np.asarray(means), np.asarray(variances)
    solution = optimize.nnls(np.column_stack([np.ones_like(intensity), intensity]), variance)[0]
    read_variance, gain = float(solution[0]), float(solution[1])
    if gain == 0.0 and read_variance == 0.0:
        read_variance = float(np.mean(variance))
    return gain, read_variance


def _with_distortion(model: TwinModel, assessment: Assessment | None) -> TwinModel:
    """``model`` with the scan distortion that the image shows beyond what its noise fakes.

    The distortion estimator also reads noise as shifts; the twin rendered without
    distortion is the null: an axis is detected when the image's estimate exceeds the
    null twin's by :data:`DETECTED_PX` and by twice its uncertainty, and is at least
    twice the null's. Then the image's
    per-line shifts are taken out of the positions and the excess (in quadrature) is
    rendered as a new realisation.
    """
    from stembench.dataset_publish.simulate.twin import TwinVariant, render_twin
    from stembench.imaging.estimate import estimate_distortion

    if assessment is None:
        return model
    null = render_twin(model, TwinVariant("null", "reference", 0, 0)).image
    null_flyback, null_drift, _ = estimate_distortion(np.asarray(null, np.float64),
                                                      assessment.lattice)
    kept = []
    for axis, null_value in (("flyback", null_flyback), ("drift", null_drift)):
        est = assessment.estimates.get(axis)
        base = null_value if math.isfinite(null_value) else 0.0
        ok = est is not None and math.isfinite(est.value) \
            and est.value - base > max(DETECTED_PX, 2.0 * est.uncertainty) \
            and est.value > 2.0 * base
        kept.append(math.sqrt(est.value**2 - base**2) if ok and est is not None else 0.0)
    if not any(kept):
        return model
    shifts = np.nan_to_num(np.asarray(assessment.line_shifts_px, np.float64))
    rows = np.clip(np.rint(model.xy_px[:, 1]).astype(np.int64), 0, len(shifts) - 1)
    xy = model.xy_px.copy()
    xy[:, 0] -= shifts[rows] - float(np.median(shifts))
    return replace(model, xy_px=xy, flyback_px=kept[0], drift_px_per_line=kept[1])


@dataclass(frozen=True)
class _Columns:
    """The column part of a fit: positions, shared width, amplitudes and background."""

    proposal: LabelProposal
    xy: NDArray[np.float64]
    sigma: float
    amplitude: NDArray[np.float64]
    background: NDArray[np.float64]
    fitted: NDArray[np.float64]


def _fit_columns(data: NDArray[np.float64], pixel_size: float, assessment: Assessment | None,
                 name: str, offset: tuple[float, float] = (0.0, 0.0)) -> _Columns:
    """Positions (assistant, completed by the lattice), shared width, amplitudes, background;
    ``data`` may be a crop of the assessed image whose first pixel lies at ``offset`` (x, y)."""
    from stembench.dataset_publish.labelling.propose import propose_labels

    proposal = propose_labels(data, pixel_size=pixel_size)
    if len(proposal.coords) < 3:
        raise InputError(f"{name}: only {len(proposal.coords)} column(s) found; a twin needs "
                         "a lattice of columns")
    rows, cols = data.shape
    xy = _complete(proposal.coords, assessment, (rows, cols), offset)
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    step = max(4.0 * spacing, 32.0)
    grid = (max(2, round(rows / step) + 1), max(2, round(cols / step) + 1))
    start = float(np.median(proposal.sigma_px[proposal.sure])) if proposal.sure.any() \
        else float(np.median(proposal.sigma_px))
    sigma = _shared_width(data, xy, start)
    coef, _, matrix = _solve(data, xy, sigma, grid, np.arange(rows * cols))
    fitted = np.asarray(matrix @ coef).reshape(rows, cols)
    return _Columns(proposal, xy, sigma, np.clip(coef[:len(xy)], 0.0, None),
                    coef[len(xy):].reshape(grid), fitted)


def fit_twin(image: NDArray[np.floating], *, pixel_size: float,
             assessment: Assessment | None = None, name: str = "image") -> TwinFit:
    """Fit the twin model of ``image`` (see the module docstring).

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        The image, any intensity scale.
    pixel_size : float
        A/px.
    assessment : Assessment, optional
        The image's assessment: its distortion estimates and line shifts, and the
        uncertainties the twins sample. Without it no distortion is modelled.
    name : str
        Name of the image.

    Raises
    ------
    InputError
        If no column is found or fewer than three are.
    """
    data = np.asarray(image, np.float64)
    rows, cols = data.shape
    columns = _fit_columns(data, pixel_size, assessment, name)
    proposal, xy, sigma = columns.proposal, columns.xy, columns.sigma
    fitted, amplitude, background = columns.fitted, columns.amplitude, columns.background
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    gain, read_variance = _noise_model(data, fitted)
    noise_variance = np.maximum(read_variance + gain * fitted, 1e-300)
    window = max(3.0, 2.0 * spacing)
    excess = ndimage.uniform_filter((data - fitted) ** 2 / noise_variance, int(window))
    excess = excess / max(float(np.median(excess)), 1.0)
    model = TwinModel((rows, cols), float(pixel_size), xy, amplitude,
                      np.full(len(xy), sigma), background, gain, read_variance, 0.0, 0.0,
                      _uncertainty(assessment), name)
    model = debiased(model, lambda twin, offset: _fit_columns(twin, pixel_size, assessment,
                                                              name, offset))
    model = _with_distortion(model, assessment)
    distances = cKDTree(xy).query(xy, k=2)[0][:, 1]
    unmodelled = excess > EXCESS_FACTOR
    edge = int(window)  # the fit is poorer within a window of the edge: not judged there
    unmodelled[:edge], unmodelled[-edge:], unmodelled[:, :edge], unmodelled[:, -edge:] = (
        False, False, False, False)
    return TwinFit(model, xy, fitted, noise_variance, unmodelled,
                   float(distances.min() / sigma), int((~proposal.sure).sum()),
                   len(xy) - len(proposal.coords), _merged(proposal))


def _uncertainty(assessment: Assessment | None) -> dict[str, float]:
    """One-sigma uncertainties the twins sample (see :class:`TwinModel`)."""
    out = {"sigma": 0.05, "gain": 0.1, "flyback": 0.0, "drift": 0.0}
    if assessment is None:
        return out
    est = assessment.estimates
    resolution, noise = est.get("resolution"), est.get("noise")
    if resolution is not None and math.isfinite(resolution.value) and resolution.value > 0:
        out["sigma"] = float(resolution.uncertainty / resolution.value)
    if noise is not None and math.isfinite(noise.uncertainty):
        out["gain"] = float(math.log(10.0) / 10.0 * noise.uncertainty)
    for axis in ("flyback", "drift"):
        value = est.get(axis)
        if value is not None and math.isfinite(value.uncertainty):
            out[axis] = float(value.uncertainty)
    return out


def _merged(proposal: LabelProposal) -> int:
    from stembench.dataset_publish.labelling.propose import MAX_CHI2

    median = float(np.median(proposal.sigma_px))
    merged = (proposal.sigma_px > MERGED_WIDTH * median) | (proposal.chi2 > MAX_CHI2)
    return int(merged.sum())


def limitations(fit: TwinFit) -> list[str]:
    """What the fitted model cannot represent in this image, one sentence each."""
    notes = []
    if fit.closest_pair_widths < 2.0:
        close = cKDTree(fit.model.xy_px).query_pairs(2.0 * float(fit.model.sigma_px[0]))
        notes.append(f"overlapping columns: {len(close)} pair(s) closer than two column widths "
                     f"({2.0 * fit.model.sigma_px[0]:.1f} px); the Gaussian model blurs each "
                     "pair into one, so the twin is unreliable there")
    if fit.n_merged > max(2, 0.02 * len(fit.observed_xy)):
        notes.append(f"overlapping columns: {fit.n_merged} found column(s) are wider than "
                     f"{MERGED_WIDTH:g} x the median or fit one Gaussian poorly, as two "
                     "merged columns do; the twin renders each as one column")
    fraction = float(fit.unmodelled.mean())
    if fraction > 0.02:
        notes.append(f"unmodelled structure over {fraction:.0%} of the image (residual "
                     f"{EXCESS_FACTOR:g} times the typical: amorphous regions, contamination, "
                     "columns the assistant did not find); the twin shows a clean lattice "
                     "there")
    if fit.n_completed:
        notes.append(f"{fit.n_completed} lattice site(s) where the assistant found no column "
                     "were added and fitted; the twin labels those the visibility rule finds "
                     "visible")
    if fit.n_unsure:
        notes.append(f"{fit.n_unsure} column(s) the labelling assistant was unsure of are "
                     "rendered as fitted (faint ones unlabelled)")
    return notes
