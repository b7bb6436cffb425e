"""One cutoff per series, flagged when the methods disagree or the series is not monotonic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stembench.client.analysis import compute_cutoffs
from stembench.client.analysis.report import write_report
from stembench.client.analysis.stability import (
    DISAGREEMENT_TOLERANCE,
    LEAD_METHOD,
    series_cutoffs,
)

PROVENANCE = {"dataset_name": "synthetic-test", "dataset_version": "9.9",
              "dataset_sha256": "ab" * 32, "scorer_version": "scorer-1"}


def _series(records):
    cutoffs = compute_cutoffs(records, bootstrap=0, progress=False)
    (series,) = series_cutoffs(cutoffs, records)
    return series


def _table(values):
    return lambda v, s: dict(values)[v]


def test_smooth_series_is_stable(records_builder):
    axis = np.arange(100.0, 201.0, 10.0)
    series = _series(records_builder(axis, seeds=(0, 1), recall=lambda v, s: 1 - (v - 100) / 200))
    assert series.lead.method == LEAD_METHOD and series.check is not None
    assert not series.unstable and series.reasons == ()
    assert series.lead.value == pytest.approx(120.0)  # recall 0.9 at 120 pm
    assert [s.axis_value for s in series.steps] == list(axis)
    assert series.steps[-1].recall == pytest.approx(0.5) and series.steps[0].n_images == 2


def test_methods_disagreeing_beyond_tolerance_is_flagged(records_builder):
    # three steps: the logistic fit falls back to a line that crosses at ~127 pm, while
    # PCHIP crosses between the last passing step (150 pm) and the failing one (200 pm)
    records = records_builder([100.0, 150.0, 200.0],
                              recall=_table({100.0: 1.0, 150.0: 1.0, 200.0: 0.0}))
    series = _series(records)
    assert series.check is not None and series.check.method == "linear"
    assert 150.0 < series.lead.value < 200.0 and series.check.value < 130.0
    assert series.unstable
    (reason,) = series.reasons
    assert f"more than {DISAGREEMENT_TOLERANCE:.0%} of the tested range" in reason


def test_series_that_fails_and_recovers_is_flagged(records_builder):
    recalls = {100.0: 1.0, 120.0: 0.8, 140.0: 0.99, 160.0: 0.98, 180.0: 0.97, 200.0: 0.5}
    series = _series(records_builder(list(recalls), recall=_table(recalls)))
    assert series.lead.value == pytest.approx(110.0, abs=5.0)  # the first crossing counts
    assert any(r == "not monotonic: mean recall fails at 120 and passes again at 140"
               for r in series.reasons)
    assert series.unstable


def test_report_leads_with_one_method_and_shows_doubt(records_builder, tmp_path):
    records = records_builder([100.0, 150.0, 200.0],
                              recall=_table({100.0: 1.0, 150.0: 1.0, 200.0: 0.0}),
                              seeds=(0, 1))
    for record in records:  # the model failed on one image of the worst step
        if record["step"] == 2 and record["seed"] == 1:
            record.update(failed=True, error="model raised")
    html = write_report(records, out_dir=tmp_path, provenance=PROVENANCE, bootstrap=0)
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["cutoff_method"]["lead"] == "pchip" and "never overshoots" in \
        data["cutoff_method"]["why"]
    (series,) = data["series_cutoffs"]
    assert series["unstable"] and series["check_method"] == "linear"
    assert (series["n_images"], series["n_failed"]) == (6, 1)
    assert [s["n_failed"] for s in series["steps"]] == [0, 0, 1]
    (summary,) = data["group_summary"]
    assert (summary["n_images"], summary["n_failed"]) == (6, 1)
    text = html.read_text()
    assert "⚠ unstable" in text and "6 images, 1 failed" in text
    assert "200: recall 0, precision 1, RMS 0.1 Å (2 images, 1 failed)" in text
    assert text.count("<th>pchip</th>") == 0  # one cutoff per series, not two columns
