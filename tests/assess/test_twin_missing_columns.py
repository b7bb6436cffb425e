"""The likeness check counts the columns the twin lacks, faint ones beside bright ones included."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from stembench.client.assess.assessment import assess_image
from stembench.client.assess.twin import run as twin_run
from stembench.client.assess.twin.fit import TwinFit, fit_twin
from stembench.client.assess.twin.likeness import MAX_MISSING, MAX_UNEXPLAINED, likeness
from stembench.client.assess.twin.report import twin_summary
from stembench.client.assess.twin.score import ModelChoice
from stembench.client.orchestrate import Target
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin

GRID = np.arange(4.0, 127.0, 12.0)
SITES = np.column_stack([c.ravel() for c in np.meshgrid(GRID, GRID)])


def lattice_image(*, partner: tuple[float, float] | None = None, brightness: float = 1.0,
                  gain: float = 0.002) -> tuple[np.ndarray, TwinModel, np.ndarray]:
    """A square lattice (12 px) of bright columns (amplitude ``brightness``, width 1.6 px),
    each with, if ``partner`` = (amplitude, separation px), a fainter partner beside it: the
    image, its model and the partners' positions."""
    xy, amp = SITES, np.full(len(SITES), brightness)
    partners = np.empty((0, 2))
    if partner is not None:
        partners = SITES + np.array([partner[1], 0.5 * partner[1]])
        xy, amp = np.vstack([SITES, partners]), np.r_[amp, np.full(len(SITES), partner[0])]
    model = TwinModel((128, 128), 0.2, xy, amp, np.full(len(xy), 1.6), np.full((3, 3), 0.1),
                      gain, 1e-4, name="lattice")
    image = render_twin(model, TwinVariant("lattice", "reference", 0, 1)).image
    return image.astype(np.float64), model, partners


def fitted(image: np.ndarray) -> TwinFit:
    return fit_twin(image, pixel_size=0.2, assessment=assess_image(image, pixel_size_angstrom=0.2))


@pytest.fixture(scope="module")
def bright_twin() -> TwinFit:
    """The twin of the lattice without partners: the bright columns only."""
    image, _, _ = lattice_image()
    fit = fitted(image)
    assert len(fit.model.xy_px) == len(SITES)
    return fit


def test_a_twin_lacking_visible_faint_partners_is_no_likeness(bright_twin: TwinFit) -> None:
    """Every bright column has a partner of a fifth its amplitude, 6.7 px away, which the
    benchmark's rule labels (the image holds 231 columns, the twin 121). Their power is small:
    the unexplained fraction stays under its limit; counted as columns, they are missing."""
    image, model, partners = lattice_image(partner=(0.2, 6.0))
    inside = (partners < 128).all(axis=1)
    assert model.labelled[len(SITES):][inside].all()
    like = likeness(bright_twin, image)
    assert like.unexplained <= MAX_UNEXPLAINED
    assert like.missing > MAX_MISSING and not like.ok
    assert len(like.missing_xy) >= 30
    assert np.all(cKDTree(partners).query(like.missing_xy)[0] <= 1.5)  # each one a partner
    assert "because it lacks" in like.refusal()
    assert "unexplained" not in like.refusal()


def test_a_shoulder_the_image_does_not_resolve_is_not_a_missing_column(
        bright_twin: TwinFit) -> None:
    """Partners too faint and close to own a maximum (the rule labels none of them) leave a
    significant residual, but the image shows no column there: nothing is missing."""
    image, model, _ = lattice_image(partner=(0.15, 4.0))
    assert int(model.labelled.sum()) == len(SITES)
    like = likeness(bright_twin, image)
    assert len(like.missing_xy) == 0 and like.ok


def test_a_significant_shoulder_in_a_noisy_image_is_not_a_missing_column(
        bright_twin: TwinFit) -> None:
    """Partners a fifth as bright, 5.6 px away, stay shoulders of their bright columns (the
    benchmark's rule labels none), but at this dose their residual is significant and
    visible, and in the noisy image a maximum lies within a pixel or two of almost any
    point: only the test on the noise-free twin with the candidate added rejects them (the
    high-dose false columns of the Gaussian's misfit to the probe are of this kind)."""
    image, model, _ = lattice_image(partner=(0.2, 5.0), gain=0.0005)
    assert int(model.labelled.sum()) == len(SITES)
    like = likeness(bright_twin, image)
    assert len(like.missing_xy) == 0 and like.ok


def test_a_misfit_of_the_twins_own_columns_is_not_a_missing_column(bright_twin: TwinFit) -> None:
    """Columns 20 % brighter than the twin's leave a residual at every column: a misfit of
    the columns the twin holds, not a column it lacks."""
    image, _, _ = lattice_image(brightness=1.2)
    assert len(likeness(bright_twin, image).missing_xy) == 0


def test_noise_alone_gives_no_missing_column(bright_twin: TwinFit) -> None:
    """At a dose so low (shot-noise variance 250 times the default) that the noise's maxima are
    as bright as the visibility contrast, the twin that knows that noise finds no column
    missing: they are not significant."""
    gain = 0.5
    image, _, _ = lattice_image(gain=gain)
    noisy_twin = replace(bright_twin, noise_variance=gain * bright_twin.fitted + 1e-4)
    like = likeness(noisy_twin, image)
    assert len(like.missing_xy) == 0 and like.missing == 0.0


def test_assess_refuses_and_says_which_columns_the_twin_lacks(
        bright_twin: TwinFit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assess, given the twin without partners for the image with them, makes no prediction;
    the verdict, the summary and the JSON say the twin lacks columns and where."""
    image, _, _ = lattice_image(partner=(0.2, 6.0))
    monkeypatch.setattr(twin_run, "fit_twin", lambda *_a, **_k: bright_twin)
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "twins"))
    with cf.ThreadPoolExecutor(1) as pool:
        result = twin_run.assess_by_twin(
            image, pixel_size=0.2, assessment=assess_image(image, pixel_size_angstrom=0.2),
            models=[ModelChoice("log-blob")], targets=[Target("threads", pool, max_in_flight=1)],
            results_dir=tmp_path / "results", n_twins=1, series=False)
    assert result.predictions == [] and result.recommended is None
    assert result.verdict.startswith("no prediction: the twin does not resemble the image "
                                     "because it lacks")
    report = result.to_dict()["likeness"]
    assert report["resembles"] is False and report["missing"] > MAX_MISSING
    assert len(report["missing_xy_px"]) == len(result.likeness.missing_xy) >= 30
    assert "lacks" in twin_summary(result)
