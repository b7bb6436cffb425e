"""Builders of synthetic score records with known metric curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest


def make_records(
    axis_values: Sequence[float],
    *,
    series: str = "resolution",
    recall: Callable[[float, int], float] = lambda v, s: 1.0,
    precision: Callable[[float, int], float] = lambda v, s: 1.0,
    rms: Callable[[float, int], float] = lambda v, s: 0.1,
    seeds: Sequence[int] = (0,),
    model: str = "net",
    group: str = "SrTiO3-simulated",
) -> list[dict[str, Any]]:
    """One record per (step, seed); metric functions take (axis value, seed)."""
    records = []
    for step, value in enumerate(axis_values):
        for seed in seeds:
            r, p = recall(value, seed), precision(value, seed)
            records.append(
                {
                    "model": model,
                    "model_version": "1",
                    "weights_sha256": "0" * 64,
                    "group": group,
                    "series": series,
                    "step": step,
                    "axis_value": float(value),
                    "seed": seed,
                    "image_id": f"{series}-{step}-{seed}",
                    "recall": r,
                    "precision": p,
                    "f1": 2 * r * p / (r + p) if r + p else 0.0,
                    "rms_angstrom": rms(value, seed),
                    "tp": 10,
                    "fp": 0,
                    "fn": 0,
                }
            )
    return records


@pytest.fixture
def records_builder() -> Callable[..., list[dict[str, Any]]]:
    return make_records
