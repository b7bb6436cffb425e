"""Radar, trend and failure figures: checked through their artists, not pixels."""

from __future__ import annotations

import numpy as np
import pytest

from stembench.client.analysis import compute_cutoffs
from stembench.client.analysis.failures import plot_failure
from stembench.client.analysis.radar import plot_radar
from stembench.client.analysis.trends import plot_trends
from stembench.errors import InputError

RESOLUTIONS = np.arange(100.0, 201.0, 10.0)
PSNR = np.arange(30.0, 4.0, -5.0)
FLYBACK = np.linspace(0.0, 2.0, 5)


@pytest.fixture
def two_model_records(records_builder):
    """Model 'a': crosses everywhere; model 'b': not reached on resolution, fails on flyback."""
    records = []
    records += records_builder(RESOLUTIONS, model="a", recall=lambda v, s: 1 - (v - 100) / 250)
    records += records_builder(
        PSNR, series="noise", model="a", recall=lambda v, s: 1 - (30 - v) * 0.0125
    )
    records += records_builder(FLYBACK, series="flyback", model="a", rms=lambda v, s: 0.1 + 0.2 * v)
    records += records_builder(RESOLUTIONS, model="b", recall=lambda v, s: 0.99)
    records += records_builder(
        PSNR, series="noise", model="b", recall=lambda v, s: 1 - (30 - v) * 0.005
    )
    records += records_builder(FLYBACK, series="flyback", model="b", precision=lambda v, s: 0.5)
    return records


def by_gid(ax, prefix):
    return {line.get_gid(): line for line in ax.lines if (line.get_gid() or "").startswith(prefix)}


def test_radar_polygons_and_marker_positions(two_model_records):
    cutoffs = compute_cutoffs(two_model_records, bootstrap=0, progress=False)
    figure = plot_radar(cutoffs)
    (ax,) = figure.axes
    assert set(by_gid(ax, "polygon")) == {"polygon|a", "polygon|b"}
    markers = by_gid(ax, "marker")
    # resolution range 100..200, cutoff 125 -> 0.25; PSNR 30..5, cutoff 22 -> 0.32
    assert markers["marker|a|resolution|crossed"].get_ydata()[0] == pytest.approx(0.25, abs=1e-6)
    assert markers["marker|a|noise|crossed"].get_ydata()[0] == pytest.approx(0.32, abs=1e-6)
    # flyback 0..2, rms 0.3 at 1.0 -> 0.5
    assert markers["marker|a|flyback|crossed"].get_ydata()[0] == pytest.approx(0.5, abs=1e-6)
    not_reached = markers["marker|b|resolution|not reached"]
    assert not_reached.get_ydata()[0] == 1.0
    assert not_reached.get_markerfacecolor() == "white"
    failed = markers["marker|b|flyback|fails from start"]
    assert failed.get_ydata()[0] == 0.0 and failed.get_marker() == "X"
    # PSNR for b: 1 - (30 - v)/200 = 0.9 at v = 10 -> (30 - 10)/25 = 0.8
    assert markers["marker|b|noise|crossed"].get_ydata()[0] == pytest.approx(0.8, abs=1e-6)
    ends = {text.get_gid(): text.get_text() for text in ax.texts}
    assert (ends["end|resolution|0"], ends["end|resolution|1"]) == ("100", "200")
    assert (ends["end|noise|0"], ends["end|noise|1"]) == ("30", "5")
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "PSNR (dB)",
        "resolution (pm)",
        "fly-back (px)",
    ]


def test_radar_one_panel_per_group(records_builder):
    records = records_builder(RESOLUTIONS, group="g1") + records_builder(RESOLUTIONS, group="g2")
    cutoffs = compute_cutoffs(records, bootstrap=0, progress=False)
    figure = plot_radar(cutoffs, method="sigmoid")
    assert [ax.get_title() for ax in figure.axes] == ["g1", "g2"]
    with pytest.raises(InputError, match="no pchip cutoffs"):
        plot_radar(cutoffs, groups=["g3"])


def test_trends_draw_thresholds_cutoffs_and_direction(two_model_records):
    cutoffs = compute_cutoffs(two_model_records, bootstrap=0, progress=False)
    figure = plot_trends(two_model_records, group="SrTiO3-simulated", cutoffs=cutoffs)
    axes = np.array(figure.axes).reshape(3, 3)  # rows: noise, resolution, flyback (radar order)
    recall_resolution = axes[1, 0]
    assert by_gid(recall_resolution, "threshold")["threshold"].get_ydata()[0] == 0.9
    assert by_gid(axes[1, 2], "threshold")["threshold"].get_ydata()[0] == 0.3
    cutoff_lines = by_gid(recall_resolution, "cutoff")
    assert set(cutoff_lines) == {"cutoff|a"}  # b never crossed resolution
    assert cutoff_lines["cutoff|a"].get_xdata()[0] == pytest.approx(125.0, abs=1e-6)
    mean = by_gid(recall_resolution, "mean")["mean|a"]
    np.testing.assert_allclose(mean.get_xdata(), RESOLUTIONS)
    np.testing.assert_allclose(mean.get_ydata(), 1 - (RESOLUTIONS - 100) / 250)
    assert axes[0, 0].xaxis_inverted() and not recall_resolution.xaxis_inverted()


def test_failure_picture_marks_each_kind():
    truth = np.array([[10.0, 10.0], [30.0, 10.0], [10.0, 30.0], [30.0, 30.0]])
    predicted = np.array([[30.5, 30.0], [20.0, 20.0], [10.0, 10.5]])
    figure = plot_failure(
        np.zeros((40, 40)),
        truth,
        predicted,
        matched_truth_index=[3, 0],
        matched_predicted_index=[0, 2],
        image_id="img-7",
        model="net",
        pixel_size=0.1,
    )
    (ax,) = figure.axes
    offsets = {c.get_gid(): c.get_offsets() for c in ax.collections}
    np.testing.assert_array_equal(offsets["truth"], truth)
    np.testing.assert_array_equal(offsets["true positive"], predicted[[0, 2]])
    np.testing.assert_array_equal(offsets["false positive"], predicted[[1]])
    np.testing.assert_array_equal(offsets["missed"], truth[[1, 2]])
    # recall 2/4, precision 2/3, RMS sqrt((0.5^2 + 0.5^2)/2) px * 0.1 A/px = 0.05 A
    assert ax.get_title() == "img-7 — net\nrecall 0.500, precision 0.667, RMS 0.050 Å"
    assert ax.get_legend() is not None


@pytest.mark.parametrize(
    ("truth_index", "predicted_index", "message"),
    [([0, 0], [0, 1], "repeats an index"), ([5], [0], "outside"), ([0], [0, 1], "has 1 entries")],
)
def test_failure_picture_rejects_bad_matching(truth_index, predicted_index, message):
    with pytest.raises(InputError, match=message):
        plot_failure(
            np.zeros((8, 8)),
            [[1.0, 1.0], [2.0, 2.0]],
            [[1.0, 1.0], [5.0, 5.0]],
            matched_truth_index=truth_index,
            matched_predicted_index=predicted_index,
        )


@pytest.mark.parametrize(("image", "message"), [
    (np.full((8, 8), np.nan), r"image 'img-1': 64 non-finite value\(s\)"),
    (np.zeros((2, 8, 8)), r"image 'img-1': expected a 2D image, got shape \(2, 8, 8\)"),
])
def test_failure_picture_refuses_an_unusable_image_in_one_line(image, message):
    with pytest.raises(InputError, match=message):
        plot_failure(image, [[1.0, 1.0]], [[1.0, 1.0]], matched_truth_index=[0],
                     matched_predicted_index=[0], image_id="img-1")
