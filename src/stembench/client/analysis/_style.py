"""Shared figure style: one colour per model, consistent across every figure."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")

__all__ = ["model_colors"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def model_colors(models: Iterable[str]) -> dict[str, str]:
    """Colour per model name, assigned in sorted-name order (stable across figures)."""
    names = sorted(set(models))
    return {name: _PALETTE[index % len(_PALETTE)] for index, name in enumerate(names)}
