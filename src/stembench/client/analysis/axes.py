"""The image-quality axes of the radar plots, with units and the direction of "worse".

Each degradation series of the benchmark varies one image-quality metric; the record field
``axis_value`` carries its value (which metadata field that is, the generator decides:
:mod:`stembench.dataset_publish.simulate.series`). The table below gives each axis a label
with units and whether larger values are worse. Cutoffs are
searched from the clean end of an axis toward its worse end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stembench.errors import InputError

__all__ = ["AXES", "RADAR_AXES", "Axis", "axis_for_series"]


@dataclass(frozen=True)
class Axis:
    """One image-quality axis.

    Attributes
    ----------
    series : str
        The series name in the score records (``"pixel_size"``, ``"noise"``, ...).
    label : str
        Human-readable label with units, used on figures and in reports.
    larger_is_worse : bool
        True when larger values mean a harder image (resolution in pm), False when smaller
        values do (PSNR in dB).
    log_scale : bool
        True when the axis is best read on a logarithmic scale (dose).
    """

    series: str
    label: str
    larger_is_worse: bool
    log_scale: bool = False

    @property
    def direction(self) -> str:
        """``"larger is worse"`` or ``"smaller is worse"``."""
        return "larger is worse" if self.larger_is_worse else "smaller is worse"

    def badness(self, value: float) -> float:
        """Map an axis value to a coordinate that grows toward the worse end.

        Parameters
        ----------
        value : float
            A value in the axis' units.

        Returns
        -------
        float
            ``value`` (or its log10 for log-scale axes), negated when smaller is worse.
        """
        scaled = math.log10(value) if self.log_scale else value
        return scaled if self.larger_is_worse else -scaled

    def from_badness(self, badness: float) -> float:
        """Inverse of :meth:`badness`: the axis value, in the axis' units."""
        scaled = badness if self.larger_is_worse else -badness
        return float(10.0**scaled) if self.log_scale else float(scaled)


AXES: dict[str, Axis] = {
    axis.series: axis
    for axis in (
        Axis("pixel_size", "atoms / 100 px", larger_is_worse=True),
        Axis("contrast", "contrast", larger_is_worse=False),
        Axis("noise", "PSNR (dB)", larger_is_worse=False),
        Axis("resolution", "resolution (pm)", larger_is_worse=True),
        Axis("flyback", "fly-back (px)", larger_is_worse=True),
        Axis("drift", "drift (px/line)", larger_is_worse=True),
        Axis("dose", "dose (e⁻/Å²)", larger_is_worse=False, log_scale=True),
    )
}
"""The quality axes keyed by series name, in the published radar order (dose last)."""

RADAR_AXES: tuple[str, ...] = tuple(AXES)
"""Series names in the order they appear around the radar plots."""


def axis_for_series(series: str) -> Axis:
    """Return the :class:`Axis` of a degradation series.

    Raises
    ------
    InputError
        If ``series`` is not a quality axis (``"reference"`` and ``"generality"`` are not).
    """
    try:
        return AXES[series]
    except KeyError:
        raise InputError(
            f"series {series!r} is not a quality axis; expected one of {sorted(AXES)}"
        ) from None
