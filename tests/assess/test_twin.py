"""The twin assessment: rendering with exact labels, the fit, the lattice completion, the
predictions, what the model cannot represent, and scoring through ``evaluate_models``."""

from __future__ import annotations

import concurrent.futures as cf
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from stembench.client.assess.assessment import assess_image
from stembench.client.assess.twin.fit import _complete, fit_twin, limitations
from stembench.client.assess.twin.predict import (
    NONE_RELIABLE,
    headroom,
    predict,
    recommendation,
)
from stembench.client.assess.twin.score import ModelChoice, score_on_twins
from stembench.client.orchestrate import Target
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin
from stembench.dataset_publish.simulate.twin_plan import twin_plan


def square_model(*, side: int = 128, spacing: float = 10.0, sigma: float = 1.8,
                 gain: float = 0.002, offset: float = 4.0) -> TwinModel:
    grid = np.arange(offset, side - 1, spacing)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    return TwinModel((side, side), 0.2, xy, np.ones(len(xy)), np.full(len(xy), sigma),
                     np.full((3, 3), 0.1), gain, 1e-4, name="square")


def test_labels_are_where_the_distorted_columns_appear() -> None:
    """With scan drift, the noise-free image peaks (amplitude + background) at every label."""
    model = replace(square_model(gain=0.0), read_variance=0.0)
    image = render_twin(model, TwinVariant("t", "reference", 0, 3, drift_px_per_line=0.15))
    assert image.raw is not None and len(image.coords) == len(model.xy_px)
    raw = image.raw.astype(float)
    interior = ((image.coords > 6) & (image.coords < 121)).all(axis=1)
    at_labels = ndimage.map_coordinates(raw, image.coords[interior][:, ::-1].T, order=3)
    at_specimen = ndimage.map_coordinates(raw, model.xy_px[interior][:, ::-1].T, order=3)
    assert np.abs(at_labels - 1.1).max() < 0.02
    assert at_specimen.min() < 1.0  # the drift moved columns: the specimen sites are off-peak


def test_fit_recovers_the_model_it_was_rendered_from() -> None:
    truth = square_model()
    image = render_twin(truth, TwinVariant("t", "reference", 0, 1))
    fit = fit_twin(image.image, pixel_size=truth.pixel_size)
    model = fit.model
    assert len(model.xy_px) == len(truth.xy_px)
    assert model.sigma_px[0] == pytest.approx(1.8, rel=0.05)
    assert np.median(model.amplitude) == pytest.approx(1.0, rel=0.05)
    noise_truth = math.sqrt(truth.gain * 0.6 + truth.read_variance)
    noise_fit = math.sqrt(model.gain * 0.6 + model.read_variance)
    assert noise_fit == pytest.approx(noise_truth, rel=0.15)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_low_dose_twin_is_neither_sharper_nor_brighter_than_the_image(seed: int) -> None:
    """At about 6 counts per column the assistant puts each column on a noise maximum and the
    fit at those positions makes columns about 4 % too bright and 9 % too narrow; the refit
    of the fit's own twin (twin.bias) measures that, and the twin is rendered without it."""
    truth = square_model(gain=0.2)
    image = render_twin(truth, TwinVariant("t", "reference", 0, seed))
    model = fit_twin(image.image, pixel_size=truth.pixel_size).model
    assert float(np.median(model.sigma_px)) / 1.8 == pytest.approx(1.0, abs=0.03)
    assert float(np.median(model.amplitude)) == pytest.approx(1.0, abs=0.035)


def test_shot_noise_is_rendered_as_counts() -> None:
    """At a few counts per pixel the twin's shot noise is Poisson counts times the gain (its
    discreteness and its zeros make detection harder than Gaussian noise of that variance)."""
    model = replace(square_model(gain=0.5), read_variance=0.0)
    image = render_twin(model, TwinVariant("t", "reference", 0, 4))
    assert image.raw is not None
    counts = image.image.astype(float) / 0.5
    assert np.allclose(counts, np.round(counts), atol=1e-4)
    dark = image.raw < 0.15  # about 0.2 counts expected: mostly zeros
    expected_zeros = float(np.mean(np.exp(-image.raw[dark].astype(float) / 0.5)))
    assert float(np.mean(counts[dark] == 0)) == pytest.approx(expected_zeros, abs=0.03)


def test_missing_lattice_sites_are_added() -> None:
    """Sites of the assessed lattice that the assistant missed join the twin's columns."""
    truth = square_model()
    image = render_twin(truth, TwinVariant("t", "reference", 0, 1))
    assessment = assess_image(image.image, pixel_size_angstrom=0.2)
    found = np.delete(truth.xy_px, [5, 40, 77], axis=0)
    completed = _complete(found, assessment, (128, 128))
    assert len(completed) == len(truth.xy_px)
    added = completed[len(found):]
    for index in (5, 40, 77):
        assert np.min(np.hypot(*(added - truth.xy_px[index]).T)) < 1.0
    off_lattice = found[:40] + 5.0  # columns the lattice does not explain: nothing is added
    assert len(_complete(np.vstack([off_lattice, found[:5]]), assessment, (128, 128))) == 45


def _records(f1_by_step: dict[str, list[float]], reference: list[float]) -> list[dict]:
    rows = [{"series": "reference", "step": 0, "recall": f, "precision": f, "f1": f,
             "rms_angstrom": 0.05, "failed": False, "axis_value": 80.0} for f in reference]
    for axis, values in f1_by_step.items():
        rows += [{"series": axis, "step": k + 1, "recall": f, "precision": f, "f1": f,
                  "rms_angstrom": 0.05, "failed": False, "axis_value": 80.0 * (k + 2)}
                 for k, f in enumerate(values)]
    return rows


def test_predictions_margins_ranking_and_recommendation() -> None:
    records = {"good": _records({"resolution": [1.0, 0.97, 0.5]}, [1.0, 0.98]),
               "weak": _records({"resolution": [0.5, 0.4, 0.3]}, [0.93, 0.96])}
    ranked = predict(records, twin_values={"resolution": 80.0})
    assert [p.model for p in ranked] == ["good", "weak"]
    good, weak = ranked
    assert good.mean["f1"] == pytest.approx(0.99) and good.low["f1"] == 0.98
    assert good.reliable and not weak.reliable  # weak's first twin has precision 0.93
    (margin,) = good.margins
    # worst slack: 0.4 (precision 0.97) at 240 pm, -9 (precision 0.5) at 320 pm
    assert margin.failure_value == pytest.approx(240.0 + 80.0 * 0.4 / 9.4)
    assert margin.margin == pytest.approx(margin.failure_value - 80.0)
    assert recommendation(ranked)[0] == "good"
    assert recommendation([weak]) == (None, NONE_RELIABLE)


def test_among_models_the_twins_cannot_tell_apart_the_one_with_most_headroom_is_recommended(
        ) -> None:
    """``sharp`` is ranked first (0.995 against 0.985) but its twins (0.99-1.00) overlap
    ``steady``'s (0.98-0.99): a tie. ``steady`` passes its whole resolution series, ``sharp``
    fails on it: ``steady`` is recommended, and the sentence says why."""
    records = {"sharp": _records({"resolution": [1.0, 0.5, 0.4]}, [1.0, 0.99]),
               "steady": _records({"resolution": [1.0, 1.0, 1.0]}, [0.99, 0.98])}
    ranked = predict(records, twin_values={"resolution": 80.0})
    assert [p.model for p in ranked] == ["sharp", "steady"]
    assert headroom(ranked[1]) == 1.0 and headroom(ranked[0]) < 1.0
    model, sentence = recommendation(ranked)
    assert model == "steady"
    assert "sharp ties with it on the twins: it keeps meeting the criteria furthest as the " \
           "image gets worse (headroom 1.000, the others' at most 0.362)" in sentence


def test_a_model_ahead_beyond_the_twins_spread_stays_recommended() -> None:
    """``steady``'s best twin (0.97) is below ``sharp``'s worst (0.99): no tie, so the higher
    predicted F1 is recommended however much headroom the other has."""
    records = {"sharp": _records({"resolution": [1.0, 0.5, 0.4]}, [1.0, 0.99]),
               "steady": _records({"resolution": [1.0, 1.0, 1.0]}, [0.97, 0.96])}
    model, sentence = recommendation(predict(records, twin_values={"resolution": 80.0}))
    assert model == "sharp" and "tie" not in sentence


def test_without_a_series_a_tie_keeps_the_rankings_order() -> None:
    records = {"sharp": _records({}, [1.0, 0.99]), "steady": _records({}, [0.99, 0.98])}
    ranked = predict(records, twin_values={})
    assert [headroom(p) for p in ranked] == [0.0, 0.0]
    model, sentence = recommendation(ranked)
    assert model == "sharp" and "no series was rendered, so the ranking decides" in sentence
    both_pass = {"sharp": _records({"resolution": [1.0] * 3}, [1.0, 0.99]),
                 "steady": _records({"resolution": [1.0] * 3}, [0.99, 0.98])}
    model, sentence = recommendation(predict(both_pass, twin_values={"resolution": 80.0}))
    assert model == "sharp"
    assert "their headroom is equal (1.000), so the ranking decides" in sentence


def test_headroom_counts_series_steps_alike_on_every_axis() -> None:
    """Failing between the first and second of three steps is the same headroom on the
    resolution series (pm, multiplied) as on the fly-back series (px, added), whatever the
    axis values, and an image whose axis value was not recorded does not change it."""
    failing = [1.0, 0.5, 0.4]
    records = {"res": _records({"resolution": failing}, [1.0, 0.99]),
               "fly": _records({"flyback": failing}, [1.0, 0.99])}
    for row in records["fly"]:
        if row["series"] == "flyback":
            row["axis_value"] = 0.5 * row["step"]
    unknown = _records({"resolution": failing}, [1.0, 0.99])
    unknown[-1]["axis_value"] = None
    records["unknown"] = unknown
    ranked = {p.model: p for p in predict(records, twin_values={"resolution": 80.0,
                                                                 "flyback": 0.0})}
    # slack at the twins 0.817, step 1 0.833, step 2 -9: the crossing is 0.085 past step 1
    step = 1.0 + 0.8333333 / (0.8333333 + 9.0)
    for name in ("res", "fly", "unknown"):
        assert ranked[name].margins[0].failure_step == pytest.approx(step, rel=1e-6)
        assert headroom(ranked[name]) == pytest.approx(step / 3.0, rel=1e-6)


def test_a_series_image_without_an_axis_value_is_an_unknown_point() -> None:
    records = {"good": _records({"resolution": [1.0, 0.5]}, [1.0, 0.98])}
    records["good"][-1]["axis_value"] = None  # an image whose axis value was not recorded
    (prediction,) = predict(records, twin_values={"resolution": 80.0})
    (margin,) = prediction.margins
    assert margin.failure_value is not None and math.isnan(margin.failure_value)


def test_limitations_name_overlaps_and_amorphous_regions() -> None:
    rng = np.random.default_rng(0)
    pairs = square_model(spacing=16.0, sigma=1.6)
    xy = np.vstack([pairs.xy_px, pairs.xy_px[:12] + np.array([2.2, 0.0])])
    close = replace(pairs, xy_px=xy, amplitude=np.ones(len(xy)),
                    sigma_px=np.full(len(xy), 1.6))
    image = render_twin(close, TwinVariant("t", "reference", 0, 1)).image.astype(float)
    blob = ndimage.gaussian_filter(rng.normal(0, 1, (48, 48)), 1.2) * 2.0
    image[70:118, 70:118] += blob  # an amorphous patch
    notes = " | ".join(limitations(fit_twin(image, pixel_size=0.2)))
    assert "overlapping columns" in notes
    assert "unmodelled structure" in notes


def test_models_are_scored_on_the_twins_through_evaluate(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Twins rendered by the operation, scored by evaluate_models, read back per model."""
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "twins"))
    model = square_model()
    plan = twin_plan(model, n_twins=2)
    with cf.ThreadPoolExecutor(2) as pool:
        scores = score_on_twins(model, plan, [ModelChoice("log-blob"), ModelChoice("atomap-like")],
                                targets=[Target("threads", pool, max_in_flight=2)],
                                results_dir=tmp_path / "results")
    assert Path(scores.dataset_path).parent == tmp_path / "twins"
    for rows in scores.records.values():
        assert sorted(r["image_id"] for r in rows) == sorted(v.image_id for v in plan)
        reference = [r for r in rows if r["series"] == "reference"]
        assert all(r["f1"] > 0.95 for r in reference)
        worst_noise = next(r for r in rows if r["image_id"] == "noise-3")
        assert worst_noise["dose_e_per_A2"] < reference[0]["dose_e_per_A2"]
        coarse = next(r for r in rows if r["image_id"] == "pixel_size-3")
        assert coarse["pixel_size_angstrom"] == pytest.approx(0.2 / 0.4)
        assert coarse["axis_value"] == pytest.approx(10.0 / 0.4)  # atoms per 100 px


def test_labels_are_the_centroids_of_columns_of_different_widths_under_fly_back() -> None:
    """Each label is the centroid of its own column's image, weighted by its own width."""
    grid = np.arange(16.0, 96.0, 32.0)
    xy = np.column_stack([c.ravel() for c in np.meshgrid(grid, grid)])
    sigma = np.where(np.arange(len(xy)) % 2 == 0, 1.2, 3.0)
    model = TwinModel((96, 96), 0.2, xy, np.ones(len(xy)), sigma, np.zeros((2, 2)), 0.0, 0.0)
    image = render_twin(model, TwinVariant("t", "flyback", 1, 5, flyback_px=2.0))
    raw = image.raw.astype(float)
    rows, cols = np.indices(raw.shape)
    for label in image.coords:
        near = (np.abs(cols - label[0]) <= 14) & (np.abs(rows - label[1]) <= 14)
        centroid = np.array([(cols * raw)[near].sum(), (rows * raw)[near].sum()]) / raw[near].sum()
        np.testing.assert_allclose(label, centroid, atol=0.01)


class _FailingEndpoint(cf.Executor):
    """An executor whose tasks fail as a Globus Compute task does: the SDK's
    ``TaskExecutionFailed`` carrying the remote traceback."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        from globus_compute_sdk.errors import TaskExecutionFailed

        future: cf.Future[object] = cf.Future()
        future.set_exception(TaskExecutionFailed(
            "Traceback (most recent call last):\n  File \"twin_task.py\", line 1\n"
            "MemoryError: cannot allocate 12 GiB for the twins\n"))
        return future


def test_twins_that_fail_where_they_are_rendered_end_in_one_line(tmp_path: Path) -> None:
    from stembench.errors import StembenchError

    model = square_model(side=64)
    plan = twin_plan(model, n_twins=1, series=False)
    with pytest.raises(StembenchError) as raised:
        score_on_twins(model, plan, [ModelChoice("log-blob")],
                       targets=[Target("endpoint-x", _FailingEndpoint())],
                       results_dir=tmp_path)
    assert str(raised.value) == ("endpoint-x: the twins could not be rendered: "
                                 "TaskExecutionFailed: MemoryError: cannot allocate 12 GiB "
                                 "for the twins")
