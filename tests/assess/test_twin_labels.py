"""The twin labels its columns by the benchmark's one visibility rule, not by a second cut."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin


def _model(extra_xy: list[tuple[float, float]], extra_amplitude: list[float]) -> TwinModel:
    """A square lattice of unit columns (20 px apart, width 1.8 px, background 0.1) and extras."""
    grid = np.arange(4.0, 127.0, 20.0)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.vstack([np.column_stack([xx.ravel(), yy.ravel()]), np.array(extra_xy)])
    amplitude = np.concatenate([np.ones(xx.size), extra_amplitude])
    return TwinModel((128, 128), 0.2, xy, amplitude, np.full(len(xy), 1.8),
                     np.full((3, 3), 0.1), 0.0, 1e-4, name="lattice")


def _near(points: np.ndarray, where: tuple[float, float]) -> bool:
    return bool(len(points)) and float(np.min(np.hypot(*(points - where).T))) < 1.0


def test_a_faint_but_visible_column_is_labelled_and_a_shoulder_column_is_not() -> None:
    """Prominence over the image's range decides, as in the benchmark (threshold 0.075).

    A column of amplitude 0.3, 1.4 widths from a bright one, makes no maximum of its own (the
    pair's one maximum is 0.3 px from the bright column, which owns it): faint, although its
    amplitude is 0.3 of the brightest. It lifts that maximum to 1.13 above the background, the
    image's range. An isolated column of amplitude 0.095 rises 0.095 above its surroundings,
    0.084 of the range: visible, although its amplitude is under a tenth of the brightest. An
    isolated one of 0.06 (0.053 of the range) is faint by either measure.
    """
    faint_but_visible, shoulder, too_faint = (54.0, 54.0), (46.52, 44.0), (94.0, 94.0)
    model = _model([faint_but_visible, shoulder, too_faint], [0.095, 0.3, 0.06])
    image = render_twin(model, TwinVariant("t", "reference", 0, 1))
    assert _near(image.coords, faint_but_visible)
    assert not _near(image.faint_coords, faint_but_visible)
    assert _near(image.faint_coords, shoulder) and not _near(image.coords, shoulder)
    assert _near(image.faint_coords, too_faint) and not _near(image.coords, too_faint)
    assert len(image.coords) == 49 + 1  # every lattice column and the faint-but-visible one


def test_visibility_is_judged_once_per_model_not_per_rendering() -> None:
    """Like the benchmark's labels along a series: a worse resolution or a crop changes
    where the image is recorded, not which columns are labelled."""
    model = _model([(54.0, 54.0)], [0.095])
    sharp = render_twin(model, TwinVariant("a", "reference", 0, 1))
    blurred = render_twin(model, TwinVariant("b", "resolution", 1, 1, sigma_scale=1.6))
    assert len(blurred.coords) == len(sharp.coords) == 50
    assert _near(blurred.coords, (54.0, 54.0))
    # the model's verdict is the rule's on its own image: twice as bright, still labelled
    brighter = replace(model, amplitude=model.amplitude * 2.0)
    assert np.array_equal(brighter.labelled, model.labelled)
