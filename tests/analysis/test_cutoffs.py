"""Cutoffs on synthetic score curves with hand-computed crossings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from stembench.client.analysis import CutoffCriteria, compute_cutoffs
from stembench.errors import InputError

RESOLUTIONS = np.arange(100.0, 201.0, 10.0)


def only(cutoffs, method="pchip"):
    family = {"pchip"} if method == "pchip" else {"sigmoid", "linear"}
    (chosen,) = [c for c in cutoffs if c.method in family]
    return chosen


def cutoffs_of(records, **options):
    options.setdefault("bootstrap", 0)
    options.setdefault("progress", False)
    return compute_cutoffs(records, **options)


def test_linear_recall_crossing_is_exact_with_pchip(records_builder):
    # recall = 1 - (v - 100)/250 equals 0.9 at v = 125, between steps 120 and 130
    records = records_builder(RESOLUTIONS, recall=lambda v, s: 1.0 - (v - 100.0) / 250.0)
    cutoff = only(cutoffs_of(records))
    assert cutoff.status == "crossed"
    assert cutoff.criterion == "recall"
    assert cutoff.value == pytest.approx(125.0, abs=1e-6)
    assert cutoff.direction == "larger is worse"
    assert cutoff.tested_range == (100.0, 200.0)
    assert (cutoff.n_steps, cutoff.n_seeds) == (11, 1)


def test_piecewise_linear_crossings_with_steps_at_the_crossing(records_builder):
    # flat at 1 up to 120, then slope -1/100: 0.9 exactly at the step 130
    on_step = records_builder(RESOLUTIONS, recall=lambda v, s: 1.0 - max(v - 120.0, 0.0) / 100.0)
    assert only(cutoffs_of(on_step)).value == pytest.approx(130.0, abs=1e-6)
    # kink at 120, slope -1/150 afterwards: 0.9 at 135, inside a straight stretch
    inside = records_builder(RESOLUTIONS, recall=lambda v, s: 1.0 - max(v - 120.0, 0.0) / 150.0)
    assert only(cutoffs_of(inside)).value == pytest.approx(135.0, abs=1e-6)


def test_sigmoid_fit_recovers_known_crossing(records_builder):
    # expit(-(v - 150)/8) = 0.9  <=>  v = 150 - 8 ln 9
    expected = 150.0 - 8.0 * math.log(9.0)
    records = records_builder(RESOLUTIONS, recall=lambda v, s: float(expit(-(v - 150.0) / 8.0)))
    cutoffs = cutoffs_of(records)
    fitted = only(cutoffs, "sigmoid")
    assert fitted.method == "sigmoid"
    assert fitted.fits["recall"] == "sigmoid"
    assert fitted.value == pytest.approx(expected, abs=0.05)
    assert only(cutoffs).value == pytest.approx(expected, abs=1.0)


def test_sigmoid_falls_back_to_linear_with_too_few_steps(records_builder):
    records = records_builder([100.0, 150.0, 200.0], recall=lambda v, s: 1.0 - (v - 100.0) / 250.0)
    fitted = only(cutoffs_of(records), "sigmoid")
    assert fitted.method == "linear"
    assert fitted.value == pytest.approx(125.0, abs=1e-6)


def test_not_reached_and_fails_from_start(records_builder):
    never = only(cutoffs_of(records_builder(RESOLUTIONS, recall=lambda v, s: 0.99)))
    assert (never.status, never.value, never.criterion) == ("not reached", None, None)
    broken = only(cutoffs_of(records_builder(RESOLUTIONS, precision=lambda v, s: 0.5)))
    assert (broken.status, broken.value, broken.criterion) == (
        "fails from start",
        None,
        "precision",
    )


def test_criterion_that_fails_first_wins(records_builder):
    # recall crosses 0.9 at 150; precision crosses 0.95 at 130; RMS crosses 0.3 at 170
    records = records_builder(
        RESOLUTIONS,
        recall=lambda v, s: 1.0 - (v - 100.0) / 500.0,
        precision=lambda v, s: 1.0 - (v - 100.0) / 600.0,
        rms=lambda v, s: 0.1 + (v - 100.0) / 350.0,
    )
    cutoff = only(cutoffs_of(records))
    assert cutoff.criterion == "precision"
    assert cutoff.value == pytest.approx(130.0, abs=1e-6)
    assert cutoff.criterion_values["recall"] == pytest.approx(150.0, abs=1e-6)
    assert cutoff.criterion_values["rms"] == pytest.approx(170.0, abs=1e-6)
    looser = only(cutoffs_of(records, criteria=CutoffCriteria(precision_min=0.8)))
    assert looser.criterion == "recall"
    assert looser.value == pytest.approx(150.0, abs=1e-6)


def test_rms_rising_above_threshold(records_builder):
    records = records_builder(RESOLUTIONS, rms=lambda v, s: 0.1 + (v - 100.0) / 250.0)
    cutoff = only(cutoffs_of(records))
    assert (cutoff.criterion, cutoff.value) == ("rms", pytest.approx(150.0, abs=1e-6))


def test_smaller_is_worse_axis_walks_from_large_values(records_builder):
    psnr = [5.0, 30.0, 10.0, 25.0, 15.0, 20.0]  # step order need not follow the axis
    records = records_builder(psnr, series="noise", recall=lambda v, s: 1.0 - (30.0 - v) * 0.0125)
    cutoff = only(cutoffs_of(records))
    assert cutoff.direction == "smaller is worse"
    assert cutoff.tested_range == (30.0, 5.0)
    assert cutoff.value == pytest.approx(22.0, abs=1e-6)


def test_log_axis_dose(records_builder):
    # recall linear in log10(dose): 0.9 at dose = 8000 / sqrt(2)
    doses = [8000.0, 4000.0, 2000.0, 1000.0, 500.0]
    records = records_builder(
        doses,
        series="dose",
        recall=lambda v, s: 1.0 - 0.2 * math.log10(8000.0 / v) / math.log10(2.0),
    )
    assert only(cutoffs_of(records)).value == pytest.approx(8000.0 / math.sqrt(2.0), rel=1e-9)


def test_non_monotone_curve_counts_first_crossing_from_clean_end(records_builder):
    values = dict(
        zip(
            [100.0, 110.0, 120.0, 130.0, 140.0, 150.0],
            [1.0, 0.95, 0.85, 0.95, 0.80, 0.5],
            strict=True,
        )
    )
    records = records_builder(list(values), recall=lambda v, s: values[v])
    # PCHIP on [110, 120]: slope at 110 = harmonic mean of -0.005 and -0.01 = -1/150 per unit,
    # slope at 120 = 0 (local minimum). Solve the Hermite cubic for 0.9.
    h, y0, y1, m0, m1 = 10.0, 0.95, 0.85, -1.0 / 150.0, 0.0
    cubic = np.array(
        [
            2 * y0 - 2 * y1 + h * m0 + h * m1,
            -3 * y0 + 3 * y1 - 2 * h * m0 - h * m1,
            h * m0,
            y0 - 0.9,
        ]
    )
    roots = [r.real for r in np.roots(cubic) if abs(r.imag) < 1e-12 and 0 <= r.real <= 1]
    expected = 110.0 + h * roots[0]
    cutoff = only(cutoffs_of(records))
    assert cutoff.value == pytest.approx(expected, abs=1e-9)
    assert 110.0 < cutoff.value < 120.0


def test_bootstrap_interval_contains_true_crossing(records_builder):
    # seed noise sd 0.02 over 8 seeds: crossing sd ~ 0.02 / sqrt(8) * 250 = 1.8
    rng = np.random.default_rng(1)
    noise = {(v, s): rng.normal(0.0, 0.02) for v in RESOLUTIONS for s in range(8)}
    records = records_builder(
        RESOLUTIONS,
        seeds=range(8),
        recall=lambda v, s: 1.0 - (v - 100.0) / 250.0 + noise[(v, s)],
    )
    first = only(cutoffs_of(records, bootstrap=200, seed=3, methods=("pchip",)))
    again = only(cutoffs_of(records, bootstrap=200, seed=3, methods=("pchip",)))
    assert first.interval == again.interval
    low, high = first.interval
    assert low < 125.0 < high
    assert 1.0 < high - low < 6.0
    assert first.crossed_fraction == 1.0
    assert first.n_bootstrap == 200


def test_bootstrap_fraction_reflects_marginal_crossing(records_builder):
    # the mean dips to 0.9 +- noise only at the last step: some samples cross, some do not
    records = records_builder(
        RESOLUTIONS,
        seeds=range(4),
        recall=lambda v, s: 0.95 if v < 200 else 0.9 + (0.03 if s % 2 else -0.03),
    )
    cutoff = only(cutoffs_of(records, bootstrap=200, seed=0, methods=("pchip",)))
    assert cutoff.status == "not reached"
    assert 0.0 < cutoff.crossed_fraction < 1.0


def test_duplicate_axis_values_and_bad_options_are_rejected(records_builder):
    records = records_builder([100.0, 100.0, 120.0])
    with pytest.raises(InputError, match="share one axis value"):
        cutoffs_of(records)
    with pytest.raises(InputError, match="unknown cutoff method"):
        cutoffs_of(records_builder(RESOLUTIONS), methods=("spline",))
