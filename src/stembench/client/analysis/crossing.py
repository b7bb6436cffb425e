"""Where a metric curve first crosses its threshold, by PCHIP interpolation or a fitted curve.

Curves are given on a "badness" coordinate that grows from the clean end of an axis toward
its worse end (see :meth:`stembench.client.analysis.axes.Axis.badness`), together with a
*margin*: the metric minus its threshold, signed so that a passing image has a margin
``>= 0`` and a failing one a margin ``< 0``.

Rule for noisy, non-monotone curves: the crossing reported is the *first* one met when
walking from the clean end toward the worse end. A curve that dips below the threshold and
recovers further on has crossed at the dip; later recoveries are ignored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import PchipInterpolator
from scipy.optimize import OptimizeWarning, brentq, curve_fit
from scipy.special import expit

__all__ = ["Crossing", "crossing_by_fit", "crossing_by_pchip", "sigmoid"]

Status = Literal["crossed", "not reached", "fails from start"]

_FIT_GRID_POINTS = 2001


@dataclass(frozen=True)
class Crossing:
    """The first threshold crossing of one metric curve.

    Attributes
    ----------
    status : {"crossed", "not reached", "fails from start"}
        ``"fails from start"`` when the cleanest step already fails, ``"not reached"`` when
        no crossing lies inside the tested range.
    badness : float or None
        Badness coordinate of the crossing (None unless ``status == "crossed"``).
    fit : {"pchip", "sigmoid", "linear"}
        The curve model used.
    """

    status: Status
    badness: float | None
    fit: str


def _finite_points(
    badness: ArrayLike, values: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(badness, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def crossing_by_pchip(badness: ArrayLike, margin: ArrayLike) -> Crossing:
    """First crossing of ``margin = 0`` by monotone cubic (PCHIP) interpolation.

    PCHIP never overshoots the data between two knots, so the interpolant first drops below
    zero inside the interval between the last passing step and the first failing step; the
    root there is found with Brent's method. Steps with a NaN margin (for RMS: no matched
    pair at that step) are left out.

    Parameters
    ----------
    badness : array_like, shape (S,)
        Strictly increasing badness coordinate of the steps.
    margin : array_like, shape (S,)
        Per-step mean metric minus threshold, ``>= 0`` where the step passes.

    Returns
    -------
    Crossing
    """
    x, m = _finite_points(badness, margin)
    if x.size == 0:
        return Crossing("not reached", None, "pchip")
    failing = np.flatnonzero(m < 0)
    if failing.size == 0:
        return Crossing("not reached", None, "pchip")
    first = int(failing[0])
    if first == 0:
        return Crossing("fails from start", None, "pchip")
    if m[first - 1] == 0:
        return Crossing("crossed", float(x[first - 1]), "pchip")
    interpolant = PchipInterpolator(x, m)
    root = brentq(lambda t: float(interpolant(t)), x[first - 1], x[first], xtol=1e-12)
    return Crossing("crossed", float(root), "pchip")


def sigmoid(
    u: NDArray[np.float64], low: float, high: float, centre: float, width: float
) -> NDArray[np.float64]:
    """Logistic step from ``high`` (``u << centre``) to ``low`` (``u >> centre``).

    A negative ``width`` gives a rising step, so one form fits falling recall and rising RMS.

    Parameters
    ----------
    u : numpy.ndarray
        Where to evaluate the step (the axis' badness coordinate).
    low, high : float
        The step's values far above and far below ``centre``.
    centre : float
        Where the step is halfway, in the units of ``u``.
    width : float
        The step's width in the units of ``u`` (negative: a rising step).
    """
    return low + (high - low) * expit(-(u - centre) / width)


def _sigmoid_jacobian(
    u: NDArray[np.float64], low: float, high: float, centre: float, width: float
) -> NDArray[np.float64]:
    """Derivatives of :func:`sigmoid` with respect to (low, high, centre, width)."""
    step = expit(-(u - centre) / width)
    slope = (high - low) * step * (1.0 - step) / width
    return np.column_stack([1.0 - step, step, slope, slope * (u - centre) / width])


def _fit_sigmoid(u: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, ...] | None:
    """Least-squares logistic fit on ``u`` in [0, 1]; None when the fit fails."""
    if u.size < 4 or np.ptp(y) == 0:
        return None
    falling = y[0] >= y[-1]
    middle = 0.5 * (y.min() + y.max())
    guess = (
        float(y.min()) if falling else float(y.max()),
        float(y.max()) if falling else float(y.min()),
        float(u[np.argmin(np.abs(y - middle))]),
        0.1,
    )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(sigmoid, u, y, p0=guess, jac=_sigmoid_jacobian, maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite(params)) or params[3] == 0:
        return None
    return tuple(float(p) for p in params)


def crossing_by_fit(
    badness: ArrayLike, values: ArrayLike, *, threshold: float, fail_below: bool
) -> Crossing:
    """First threshold crossing of a logistic fitted to a curve, with a linear fallback.

    The per-step means are fitted with :func:`sigmoid` by ``scipy.optimize.curve_fit``.
    When the fit fails (fewer than four steps, a flat curve, no convergence, non-finite
    parameters) a straight line is fitted instead, and the returned ``fit`` says so. The
    fitted curve is then searched from the clean end for its first crossing inside the tested
    range (a dense grid brackets it, Brent's method refines it).

    Parameters
    ----------
    badness : array_like, shape (S,)
        Strictly increasing badness coordinate of the steps.
    values : array_like, shape (S,)
        Per-step mean metric values (NaN steps are left out).
    threshold : float
        The metric's threshold.
    fail_below : bool
        True when values below ``threshold`` fail (recall, precision), False when values
        above it fail (RMS).

    Returns
    -------
    Crossing
    """
    x, y = _finite_points(badness, values)
    if x.size == 0:
        return Crossing("not reached", None, "linear")
    span = float(x[-1] - x[0]) if x.size > 1 else 1.0
    u = (x - x[0]) / span
    params = _fit_sigmoid(u, y)
    if params is not None:
        fit = "sigmoid"

        def model(t: NDArray[np.float64]) -> NDArray[np.float64]:
            return sigmoid(t, *params)
    else:
        fit = "linear"
        slope, intercept = np.polyfit(u, y, 1) if x.size > 1 else (0.0, float(y[0]))

        def model(t: NDArray[np.float64]) -> NDArray[np.float64]:
            return slope * t + intercept

    sign = 1.0 if fail_below else -1.0

    def margin(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return sign * (model(t) - threshold)

    grid = np.linspace(0.0, 1.0 if x.size > 1 else 0.0, _FIT_GRID_POINTS)
    on_grid = margin(grid)
    failing = np.flatnonzero(on_grid < 0)
    if failing.size == 0:
        return Crossing("not reached", None, fit)
    first = int(failing[0])
    if first == 0:
        return Crossing("fails from start", None, fit)
    root = brentq(lambda t: float(margin(np.asarray(t))), grid[first - 1], grid[first], xtol=1e-12)
    return Crossing("crossed", float(x[0] + root * span), fit)
