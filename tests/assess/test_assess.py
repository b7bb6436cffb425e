"""Assessment: estimators on synthetic lattices, recommendation logic, errors, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.client.analysis.cutoffs import Cutoff
from stembench.client.assess.assessment import assess_image, raw_estimates
from stembench.client.assess.nearest import LatticeSignature
from stembench.client.assess.recommend import choose_group, load_cutoffs, recommend
from stembench.client.run import BUILTIN_MODELS
from stembench.errors import InputError
from stembench.imaging.estimate import Estimate
from stembench.imaging.lattice import Lattice2D, check_image, find_lattice

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_lattice(*, shape: int = 128, spacing_px: float = 12.0, fwhm_px: float = 5.0,
                     hexagonal: bool = False, peak_counts: float | None = None,
                     seed: int = 0) -> np.ndarray:
    """Gaussian columns on a square or triangular lattice; Poisson counts if peak given."""
    sigma = fwhm_px / FWHM_PER_SIGMA
    a1 = np.array([spacing_px, 0.0])
    a2 = np.array([spacing_px / 2, spacing_px * math.sqrt(3) / 2]) if hexagonal \
        else np.array([0.0, spacing_px])
    y, x = np.mgrid[0:shape, 0:shape].astype(float)
    image = np.zeros((shape, shape))
    n = int(shape / spacing_px) + 4
    for i in range(-n, 2 * n):
        for j in range(-n, n + 2):
            cx, cy = 3.3 + i * a1 + j * a2
            if -10 < cx < shape + 10 and -10 < cy < shape + 10:
                image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    image = 0.05 + image / image.max()
    if peak_counts is not None:
        expected = image / image.max() * peak_counts
        image = np.random.default_rng(seed).poisson(expected).astype(float)
    return image


def test_square_lattice_spacing_and_resolution() -> None:
    image = gaussian_lattice(spacing_px=12.0, fwhm_px=5.0)
    lattice, values, _ = raw_estimates(image, pixel_size_angstrom=0.2)
    assert lattice.kind == "square"
    assert values["pixel_size"] == pytest.approx(100 / 12.0, rel=0.03)
    # Gaussian columns: the fit returns their FWHM, 5 px = 100 pm, then the probe calibration
    # sqrt(fit^2 - 75^2 + 75^2) leaves it unchanged.
    assert values["resolution"] == pytest.approx(100.0, rel=0.05)
    assert values["contrast"] == pytest.approx((image.max() - image.min()) / image.max())


def test_hexagonal_lattice_is_recognised() -> None:
    lattice = find_lattice(check_image(gaussian_lattice(spacing_px=14.0, hexagonal=True)))
    assert lattice.kind == "hexagonal"
    assert lattice.spacing_px == pytest.approx(14.0, rel=0.03)


@pytest.mark.parametrize("peak_counts", [20.0, 200.0])
def test_psnr_of_poisson_counts_within_2_db(peak_counts: float) -> None:
    clean = gaussian_lattice(spacing_px=12.0, fwhm_px=5.0)
    expected = clean / clean.max() * peak_counts
    noisy = np.random.default_rng(1).poisson(expected).astype(float)
    true_psnr = 20 * math.log10(expected.max() / math.sqrt(np.mean((noisy - expected) ** 2)))
    _, values, _ = raw_estimates(noisy, pixel_size_angstrom=0.2)
    assert abs(values["noise"] - true_psnr) < 2.0


def test_flyback_is_detected() -> None:
    rng = np.random.default_rng(3)
    image = gaussian_lattice(spacing_px=16.0, fwhm_px=5.0)
    shifted = np.array([np.interp(np.arange(128) - s, np.arange(128), row)
                        for row, s in zip(image, rng.normal(0, 1.5, 128), strict=True)])
    _, clean_values, _ = raw_estimates(image, pixel_size_angstrom=0.2)
    _, values, _ = raw_estimates(shifted, pixel_size_angstrom=0.2)
    assert clean_values["flyback"] < 0.2
    assert values["flyback"] == pytest.approx(1.5, abs=0.5)


def test_assessment_has_uncertainties() -> None:
    result = assess_image(gaussian_lattice(), pixel_size_angstrom=0.2, name="synthetic")
    assert result.n_quadrants == 4
    assert all(e.uncertainty > 0 for k, e in result.estimates.items() if k != "contrast")
    assert result.to_dict()["lattice"]["kind"] == "square"


@pytest.mark.parametrize(("image", "message"), [
    (np.zeros((4, 80, 80)), "2D"),
    (np.ones((40, 200)), "too small"),
    (np.full((80, 80), np.nan), "non-finite"),
    (np.ones((80, 80)), "constant"),
])
def test_unassessable_images(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        assess_image(image, pixel_size_angstrom=0.1)


def test_no_lattice_in_noise() -> None:
    noise = np.random.default_rng(0).normal(10.0, 1.0, (96, 96))
    with pytest.raises(InputError, match="no lattice"):
        assess_image(noise, pixel_size_angstrom=0.1)


def _cutoff(model: str, axis: str, status: str, value: float | None,
            tested: tuple[float, float]) -> Cutoff:
    return Cutoff(model=model, model_version="1", weights_sha256="", group="SrTiO3-simulated",
                  axis=axis, method="pchip", status=status, value=value, criterion=None,
                  direction="", tested_range=tested, n_steps=3, n_seeds=2,
                  criterion_values={}, criterion_status={}, fits={}, interval=None,
                  crossed_fraction=None, n_bootstrap=0)


def test_recommendation_inside_outside_borderline() -> None:
    cutoffs = [
        _cutoff("good", "resolution", "crossed", 200.0, (75.0, 320.0)),
        _cutoff("good", "noise", "not reached", None, (30.0, 2.0)),
        _cutoff("bad", "resolution", "crossed", 120.0, (75.0, 320.0)),
        _cutoff("edge", "resolution", "crossed", 155.0, (75.0, 320.0)),
    ]
    estimates = {"resolution": Estimate("resolution", 150.0, 10.0, "pm", ""),
                 "noise": Estimate("noise", 20.0, 1.0, "dB", "")}
    verdicts = {v.model: v for v in recommend(estimates, cutoffs, group="SrTiO3-simulated")}
    good = verdicts["good"]
    assert good.verdict == "recommended"
    assert good.axes[1].margin == pytest.approx(50.0)  # resolution: 200 - 150 pm
    assert good.axes[0].margin == pytest.approx(18.0)  # PSNR: 20 - 2 dB (tested to 2 dB)
    bad = verdicts["bad"]
    assert bad.verdict == "not recommended" and bad.failing_axes == ("resolution",)
    assert bad.axes[0].margin == pytest.approx(-30.0)
    assert bad.axes[0].margin_fraction == pytest.approx(-0.25)
    assert verdicts["edge"].verdict == "borderline"  # 5 pm margin < 10 pm uncertainty


def test_group_choice_and_builtin_file() -> None:
    cutoffs = load_cutoffs()
    srtio3 = LatticeSignature("square", 2.7, 2, 0.45)
    assert choose_group(srtio3, cutoffs)[0] == "SrTiO3-simulated"
    ws2 = LatticeSignature("hexagonal", 1.8, 2, 0.15)
    group, matches = choose_group(ws2, cutoffs)
    assert group == "WS2-simulated" and matches[0].close_enough
    oblique = LatticeSignature("oblique", 3.3, 1, 1.0)  # e.g. CeO2 [110]: Ce columns only
    group, matches = choose_group(oblique, cutoffs)
    assert not any(m.close_enough for m in matches)
    assert "too far" in matches[0].summary
    assert choose_group(oblique, cutoffs, group="WS2-simulated")[0] == "WS2-simulated"
    with pytest.raises(InputError, match="group 'x' has no cutoffs"):
        choose_group(oblique, cutoffs, group="x")


@pytest.mark.parametrize("version", ["2.0.0", None])
def test_cutoffs_of_another_dataset_version_are_refused(tmp_path: Path,
                                                       version: str | None) -> None:
    """Cutoffs measured on another version's series (other labels) are not this benchmark's."""
    from stembench.client.assess.recommend import BUILTIN_CUTOFFS_PATH
    from stembench.dataset_publish.simulate.build import DATASET_VERSION

    builtin = json.loads(BUILTIN_CUTOFFS_PATH.read_text(encoding="utf-8"))
    assert builtin["dataset_version"] == DATASET_VERSION  # the shipped file is current
    cutoffs = {key: value for key, value in builtin.items() if key != "dataset_version"}
    if version is not None:
        cutoffs["dataset_version"] = version
    path = tmp_path / "cutoffs.json"
    path.write_text(json.dumps(cutoffs), encoding="utf-8")
    found = f"dataset {version}" if version else "a dataset version it does not name"
    with pytest.raises(InputError, match=f"cutoffs of {found}, but this stembench's "
                                         f"benchmark is dataset {DATASET_VERSION}"):
        load_cutoffs(path)
    report = {"provenance": {"dataset_version": version}, "cutoffs": builtin["cutoffs"]}
    path.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(InputError, match=f"cutoffs of {found}"):
        load_cutoffs(path)


def test_cli_end_to_end(tmp_path: Path) -> None:
    import typer

    from stembench.client.assess.cli import assess_command

    app = typer.Typer()
    app.command()(assess_command)
    path = tmp_path / "image.npy"
    np.save(path, gaussian_lattice(spacing_px=12.0, peak_counts=200.0))
    result = CliRunner().invoke(app, [str(path), "--pixel-size", "0.2", "--out",
                                      str(tmp_path / "out"), "--run", "log-blob", "--no-twin"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "image_assess.json").read_text())
    assert data["assessment"]["lattice"]["kind"] == "square"
    assert data["assessment"]["estimates"]["pixel_size"]["value"] == pytest.approx(8.33, rel=0.05)
    assert {v["model"] for v in data["recommendation"]} == set(BUILTIN_MODELS)
    assert len(data["predictions"]["xy_px"]) > 50
    assert "base64" in (tmp_path / "out" / "image_assess.html").read_text()


def weighted_lattice(*, a1: tuple[float, float], a2: tuple[float, float],
                     basis: list[tuple[float, float, float]], fwhm_px: float,
                     shape: int = 160) -> np.ndarray:
    """Gaussian columns at fractional ``(u, v)`` sites of weight ``w`` on lattice a1, a2."""
    sigma = fwhm_px / FWHM_PER_SIGMA
    y, x = np.mgrid[0:shape, 0:shape].astype(float)
    image = np.zeros((shape, shape))
    vec = np.array([a1, a2])
    n = int(2 * shape / min(np.hypot(*vec.T))) + 2
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            for u, v, weight in basis:
                cx, cy = np.array([i + u, j + v]) @ vec + 2.7
                if -15 < cx < shape + 15 and -15 < cy < shape + 15:
                    image += weight * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return 0.02 + image / image.max()


def test_too_few_periods_is_refused() -> None:
    image = gaussian_lattice(shape=128, spacing_px=36.0, fwhm_px=8.0)  # 3.6 periods
    with pytest.raises(InputError, match="periods"):
        find_lattice(check_image(image))


def test_dim_honeycomb_sublattice_is_counted_when_merged() -> None:
    # WS2-like: W at (0, 0), S2 (0.15 of W) at (1/3, 1/3) of a 60-degree basis; blurred so
    # much that the S2 columns are no longer maxima of the averaged unit cell.
    a = 20.0
    image = weighted_lattice(a1=(a, 0.0), a2=(a / 2, a * math.sqrt(3) / 2),
                             basis=[(0, 0, 1.0), (1 / 3, 1 / 3, 0.15)], fwhm_px=0.5 * a)
    lattice = find_lattice(check_image(image))
    assert len(lattice.columns_frac) == 2
    assert lattice.column_heights[1] == pytest.approx(0.15, abs=0.04)
    # the merged motif maximum is pulled towards the dim column, so the spacing is biased
    # low, but it is the W-S2 spacing (11.5 px), not W-W (20 px)
    assert lattice.spacing_px == pytest.approx(a / math.sqrt(3), rel=0.15)


def test_column_below_visibility_fraction_is_not_counted() -> None:
    # SrTiO3-like square lattice: a 0.05-weight column at the cell centre is not labelled by
    # the benchmark (weight < 0.1 of the brightest), so the spacing is the lattice period.
    image = weighted_lattice(a1=(16.0, 0.0), a2=(0.0, 16.0),
                             basis=[(0, 0, 1.0), (0.5, 0.5, 0.05)], fwhm_px=5.0)
    lattice = find_lattice(check_image(image))
    assert len(lattice.columns_frac) == 1
    assert lattice.spacing_px == pytest.approx(16.0, rel=0.01)


def test_voronoi_sites_of_square_and_hexagonal_lattices() -> None:
    from stembench.imaging.columns import voronoi_sites

    square = voronoi_sites(np.array([[10.0, 0.0], [0.0, 10.0]]))
    np.testing.assert_allclose(square, [[0.5, 0.5]], atol=1e-9)
    hexagonal = voronoi_sites(np.array([[10.0, 0.0], [-5.0, 5.0 * math.sqrt(3)]]))
    # 120-degree basis: the honeycomb sites are (1/3, 2/3) and (2/3, 1/3)
    np.testing.assert_allclose(sorted(map(tuple, hexagonal)), [(1 / 3, 2 / 3), (2 / 3, 1 / 3)],
                               atol=1e-9)


def test_lattice_period_is_refined_off_the_fft_grid() -> None:
    image = gaussian_lattice(shape=128, spacing_px=12.37, fwhm_px=4.0)
    lattice = find_lattice(check_image(image))
    lengths = np.hypot(lattice.real[:, 0], lattice.real[:, 1])
    assert lengths == pytest.approx([12.37, 12.37], rel=0.002)


#: An A15-like [100] motif (V3Si, Cr3Si): bright columns at the corners and the centre,
#: fainter ones on the cell edges' quarters and at the edge midpoints; its (100) and (010)
#: reflections are nearly extinct, so the two shortest strong ones span a centred subcell.
A15 = [(0.0, 0.0, 1.0), (0.5, 0.5, 1.0), (0.25, 0.0, 0.6), (0.75, 0.0, 0.6),
       (0.5, 0.25, 0.6), (0.5, 0.75, 0.6), (0.0, 0.5, 1.2)]
#: A NiAs-like [11-20] motif: columns c / 2 apart and two more at +-1/3 between them, whose
#: (001) reflection (along a2) is extinct.
NIAS = [(0.0, 0.0, 1.0), (0.0, 0.5, 1.0), (2 / 3, 0.25, 0.8), (1 / 3, 0.75, 0.8)]


def _cell(lattice: Lattice2D) -> tuple[float, float, float]:
    """Shorter and longer real basis length (px) and |cos| of their angle."""
    a1, a2 = lattice.real
    n1, n2 = float(np.hypot(*a1)), float(np.hypot(*a2))
    return min(n1, n2), max(n1, n2), abs(float(a1 @ a2)) / (n1 * n2)


def test_a_cell_whose_first_order_reflections_are_extinct_is_found_whole() -> None:
    """The two shortest strong reflections are (110)-type; the (210)-type strong ones sit at
    half-integer indices of them. The cell all strong reflections generate is the 32 px cell,
    not the centred 22.6 px subcell, nor a refusal."""
    image = weighted_lattice(a1=(32.0, 0.0), a2=(0.0, 32.0), basis=A15, fwhm_px=5.0,
                             shape=192)
    short, long, cosine = _cell(find_lattice(check_image(image)))
    assert short == pytest.approx(32.0, rel=0.01) and long == pytest.approx(32.0, rel=0.01)
    assert cosine < 0.01


@pytest.mark.parametrize(("fwhm_px", "shape"), [(4.0, 128), (6.0, 192)])
def test_the_cell_fits_every_strong_reflection_not_a_weak_first_order_one(
        fwhm_px: float, shape: int) -> None:
    """The NiAs-like motif's (001) reflection is extinct and (002) weak: a basis vector
    refined alone drifts to the noise and window leakage around it (a skewed cell, or one
    that no longer indexes the strongest peak, so the image is refused); the basis fitted to
    the strongest reflections keeps the rectangular 20 x 31 px cell."""
    rng = np.random.default_rng(0)
    image = weighted_lattice(a1=(20.0, 0.0), a2=(0.0, 31.0), basis=NIAS, fwhm_px=fwhm_px,
                             shape=shape)
    image = image + rng.normal(0.0, 0.03, image.shape)
    short, long, cosine = _cell(find_lattice(check_image(image)))
    assert short == pytest.approx(20.0, rel=0.005) and long == pytest.approx(31.0, rel=0.005)
    assert cosine < 0.005


def test_one_strong_reflection_off_the_lattice_does_not_subdivide_the_cell() -> None:
    """A single strong fringe at 3/2 of the lattice's first-order frequency (an artefact, not
    a 2D cell) is one reflection the lattice does not index: it does not double the cell."""
    image = weighted_lattice(a1=(14.0, 0.0), a2=(0.0, 14.0), basis=[(0.0, 0.0, 1.0)],
                             fwhm_px=4.0, shape=192)
    x = np.arange(image.shape[1])
    image = image + 0.08 * np.cos(2 * np.pi * x * 1.5 / 14.0)[None, :]
    short, long, _ = _cell(find_lattice(check_image(image)))
    assert short == pytest.approx(14.0, rel=0.01) and long == pytest.approx(14.0, rel=0.01)


def test_every_column_of_a_large_cell_with_many_is_kept() -> None:
    """The A15-like cell of 50 px holds seven columns 12.5 px or more apart; merging motif
    maxima closer than 0.4 of the cell (20 px) would keep three of them."""
    rng = np.random.default_rng(1)
    image = weighted_lattice(a1=(50.0, 0.0), a2=(0.0, 50.0), basis=A15, fwhm_px=6.0,
                             shape=256) + rng.normal(0.0, 0.05, (256, 256))
    lattice = find_lattice(check_image(image))
    assert len(lattice.columns_frac) == len(A15)

