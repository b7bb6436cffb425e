"""Assess makes no prediction when the twin does not resemble the image."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from stembench.client.assess.assessment import assess_image
from stembench.client.assess.twin.fit import fit_twin
from stembench.client.assess.twin.likeness import MAX_UNEXPLAINED, likeness
from stembench.client.assess.twin.report import twin_html, twin_summary
from stembench.client.assess.twin.run import assess_by_twin
from stembench.client.assess.twin.score import ModelChoice
from stembench.client.orchestrate import Target
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin


def pairs_image(separation_px: float) -> tuple[np.ndarray, int]:
    """A square lattice (12 px) whose every site is a pair of equal columns (width 1.6 px),
    ``separation_px`` apart; the image and its number of labelled columns."""
    grid = np.arange(4.0, 127.0, 12.0)
    xx, yy = np.meshgrid(grid, grid)
    sites = np.column_stack([xx.ravel(), yy.ravel()])
    xy = np.vstack([sites, sites + np.array([separation_px, 0.5 * separation_px])])
    model = TwinModel((128, 128), 0.2, xy, np.ones(len(xy)), np.full(len(xy), 1.6),
                      np.full((3, 3), 0.1), 0.002, 1e-4, name="pairs")
    image = render_twin(model, TwinVariant("pairs", "reference", 0, 1))
    return image.image.astype(np.float64), len(image.coords)


def test_a_twin_that_merges_resolved_pairs_is_no_likeness(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs 2.5 widths apart are resolved in the image (231 labelled columns) but the
    assistant finds one column per pair: the twin holds 121 and leaves the pairs' second
    halves unexplained. Assess refuses to predict, in the JSON, the text and the HTML."""
    data, labelled = pairs_image(4.0)
    assessment = assess_image(data, pixel_size_angstrom=0.2, name="pairs")
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "twins"))
    with cf.ThreadPoolExecutor(1) as pool:  # a model and a target: only the refusal stops them
        result = assess_by_twin(data, pixel_size=0.2, assessment=assessment,
                                models=[ModelChoice("log-blob")],
                                targets=[Target("threads", pool, max_in_flight=1)],
                                results_dir=tmp_path / "results", n_twins=1, series=False)
    assert labelled > 1.5 * result.likeness.n_columns
    assert result.likeness.unexplained > MAX_UNEXPLAINED
    assert result.predictions == [] and result.recommended is None
    assert result.verdict.startswith("no prediction: the twin does not resemble the image "
                                     "because it leaves")
    report = result.to_dict()
    assert report["likeness"]["resembles"] is False and report["predictions"] == []
    assert "No prediction: the twin does not resemble the image" in twin_summary(result)
    assert "No prediction: the twin does not resemble the image" in twin_html(result)


def test_the_same_lattice_with_pairs_the_assistant_resolves_is_a_likeness() -> None:
    data, labelled = pairs_image(5.0)
    fit = fit_twin(data, pixel_size=0.2, assessment=assess_image(data, pixel_size_angstrom=0.2))
    like = likeness(fit, data)
    assert like.n_columns == labelled
    assert like.ok and like.unexplained < 0.5 * MAX_UNEXPLAINED


def test_the_measure_counts_structure_beyond_noise_not_the_noise() -> None:
    """The twin against its own noise-free image is a perfect likeness (0), as is the noisy
    image it was fitted to (the noise does not count); against that image with a seventh of
    its area emptied of columns it is not."""
    data, _ = pairs_image(5.0)
    fit = fit_twin(data, pixel_size=0.2, assessment=assess_image(data, pixel_size_angstrom=0.2))
    assert likeness(fit, data).unexplained == pytest.approx(0.0, abs=0.02)
    cleaner = replace(fit, noise_variance=fit.noise_variance * 1e-6)
    assert likeness(cleaner, fit.fitted).unexplained == pytest.approx(0.0, abs=1e-9)
    holes = data.copy()
    holes[40:88, 40:88] = np.median(data)  # a region of the image without its columns
    assert not likeness(fit, holes).ok


def test_the_likeness_figure_says_what_each_mark_means_and_counts_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person judging the likeness is told what the marks are: labelled and faint fitted
    columns, columns the twin lacks, unmodelled structure, each with its count."""
    from stembench.client.assess.twin.report import plot_likeness

    data, _ = pairs_image(4.0)
    assessment = assess_image(data, pixel_size_angstrom=0.2, name="pairs")
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "twins"))
    with cf.ThreadPoolExecutor(1) as pool:
        result = assess_by_twin(data, pixel_size=0.2, assessment=assessment,
                                models=[ModelChoice("log-blob")],
                                targets=[Target("threads", pool, max_in_flight=1)],
                                results_dir=tmp_path / "results", n_twins=1, series=False)
    lacking = np.array([[20.0, 30.0], [64.0, 64.0], [100.0, 40.0]])  # as the check reports them
    unmodelled = np.zeros(data.shape, bool)
    unmodelled[:32] = True  # a quarter of the image
    result = replace(result, likeness=replace(result.likeness, missing_xy=lacking),
                     fit=replace(result.fit, unmodelled=unmodelled))
    figure = plot_likeness(data, result)
    assert len(figure.legends) == 1
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    labelled = result.fit.model.labelled
    assert texts[0] == ("fitted column, labelled in the twin "
                        f"({int(labelled.sum())} in the whole image)")
    assert texts[1] == f"fitted column, too faint to label in the twin ({int((~labelled).sum())})"
    assert texts[2] == "column the image shows and the twin lacks (3)"
    assert texts[3] == "outline: structure the twin does not model (25% of the area)"
    unmodelled[:] = False
    unmodelled[:1, :64] = True  # 64 of 16384 pixels: a little, not nothing
    texts = [t.get_text() for t in plot_likeness(data, result).legends[0].get_texts()]
    assert texts[3] == "outline: structure the twin does not model (0.4% of the area)"
