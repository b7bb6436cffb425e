"""``stembench label``: proposals, confidence, review files, and the way back through import."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.cli import app
from stembench.dataset_publish.experimental.importer import import_labelled_image
from stembench.dataset_publish.labelling.propose import WINDOW_FRACTION, propose_labels
from stembench.dataset_publish.simulate.series import reference_image
from stembench.imaging.gaussian import fit_amplitudes
from stembench.scoring import dont_care_mask, score_image


def _gaussians(shape, columns, sigma=2.0, background=10.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = np.full(shape, background)
    for x, y, amplitude in columns:
        image += amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return image


def test_proposals_on_a_simulated_image_match_its_truth():
    truth = reference_image("SrTiO3[100]", axis="noise")
    noisy = np.random.default_rng(0).poisson(truth.image * 50.0).astype(np.float64)
    proposal = propose_labels(noisy, pixel_size=truth.pixel_size)
    score = score_image(proposal.coords, truth.coords, pixel_size=truth.pixel_size,
                        image_shape=truth.shape, image_id="ref")
    assert score.recall == 1.0
    assert score.precision == 1.0
    sure = proposal.sure
    assert sure.mean() > 0.85
    # every unsure column here is one cut by the edge, and said so
    assert all(r == "cut by the image edge" for r in np.array(proposal.reasons)[~sure])


def test_fit_reports_faint_merged_and_noise_columns():
    rng = np.random.default_rng(1)
    columns = [(x, y, 100.0) for y in (12, 28, 44) for x in (12, 28, 44, 60)]
    image = _gaussians((56, 72), columns) + rng.normal(0, 1.0, (56, 72))
    xy = np.array([[x, y] for x, y, _ in columns], float)
    _, sigma, chi2, t_value, whole = fit_amplitudes((image - image.min()) / np.ptp(image), xy,
                                                    window_fraction=WINDOW_FRACTION)
    assert np.allclose(sigma, 2.0, rtol=0.15)
    assert (t_value > 20).all()
    assert (chi2 < 2.0).all()
    assert whole.all()
    merged = _gaussians((56, 72), [(26.5, 28, 100.0), (31.5, 28, 100.0)])
    merged += rng.normal(0, 1.0, merged.shape)
    _, _, chi2_merged, _, _ = fit_amplitudes((merged - merged.min()) / np.ptp(merged),
                                             np.array([[29.0, 28.0], [60.0, 28.0]]),
                                             window_fraction=WINDOW_FRACTION)
    assert chi2_merged[0] > 2.0  # two columns 5 px apart fitted as one: not noise


def test_noise_detections_are_unsure_and_columns_sure():
    rng = np.random.default_rng(0)
    columns = [(x, y, 100.0) for y in range(10, 90, 16) for x in range(10, 60, 16)]
    image = _gaussians((96, 128), columns) + rng.normal(0, 8.0, (96, 128))  # right: no columns
    proposal = propose_labels(image, pixel_size=0.2, min_spacing_angstrom=2.0)
    true = np.array([[x, y] for x, y, _ in columns], float)
    distance = np.hypot(*(proposal.coords[:, None, :] - true[None]).transpose(2, 0, 1)).min(1)
    noise = distance > 2.0
    assert noise.sum() == 2  # two noise peaks in the empty half pass the detector
    assert not proposal.sure[noise].any()
    reasons = " ".join(np.array(proposal.reasons)[noise])
    assert "weak (amplitude 3.0 standard errors)" in reasons
    assert "faint (0.09 of the brightest columns)" in reasons
    assert proposal.sure[~noise].all() and (~noise).sum() == len(columns)


def _hspy(path, image, pixel_size_angstrom):
    from rsciio.hspy import file_writer

    axes = [{"name": n, "size": s, "scale": pixel_size_angstrom / 10.0, "offset": 0.0,
             "units": "nm", "navigate": False} for n, s in zip(("y", "x"), image.shape,
                                                              strict=True)]
    file_writer(str(path), {"data": image.astype(np.float32), "axes": axes,
                            "metadata": {"General": {"title": "HAADF"},
                                         "Signal": {"signal_type": ""}},
                            "original_metadata": {}, "attributes": {"_lazy": False},
                            "tmp_parameters": {}, "package_info": {}, "learning_results": {},
                            "models": {}})
    return path


def test_label_cli_then_import_and_score(tmp_path):
    pytest.importorskip("rsciio")
    truth = reference_image("WS2", axis="noise", shape=(600, 520))
    noisy = np.random.default_rng(3).poisson(truth.image * 40.0).astype(np.float64)
    source = _hspy(tmp_path / "ws2.hspy", noisy, truth.pixel_size)
    out = tmp_path / "review" / "ws2_labels.csv"
    result = CliRunner().invoke(app, ["label", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"at {truth.pixel_size:.4g} A/px" in result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["confidence"] for r in rows} <= {"sure", "unsure"}
    assert all(bool(r["reason"]) == (r["confidence"] == "unsure") for r in rows)
    assert (tmp_path / "review" / "ws2_labels.png").stat().st_size > 10_000
    page = (tmp_path / "review" / "ws2_labels.html").read_text()
    assert "ws2_labels_tiles/tile_r00512_c00512.png" in page  # 600 x 520 px: 4 tiles
    assert len(list((tmp_path / "review" / "ws2_labels_tiles").glob("*.png"))) == 4
    # a person deletes one false column and marks one doubtful column unsure
    rows[5]["confidence"] = "unsure"
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[1:])
    image = import_labelled_image(source, out)
    assert image.pixel_size == pytest.approx(truth.pixel_size, rel=1e-6)
    unsure = sum(r["confidence"] == "unsure" for r in rows[1:])
    assert image.column_types.count("unsure") == unsure >= 1
    mask = dont_care_mask(image.column_types)
    assert mask is not None
    sure_coords = image.coords[~mask]
    score = score_image(sure_coords, image.coords, pixel_size=image.pixel_size,
                        image_shape=image.shape, image_id="ws2", dont_care=mask)
    assert (score.fp, score.fn) == (0, 0)
    assert score.faint_by_type["unsure"].n_truth == int(
        (mask & (image.coords >= 6).all(1) & (image.coords[:, 0] <= 513)
         & (image.coords[:, 1] <= 593)).sum())


def test_label_npy_needs_pixel_size(tmp_path):
    image = _gaussians((64, 64), [(x, y, 100.0) for y in (12, 28, 44) for x in (12, 28, 44)])
    path = tmp_path / "frame.npy"
    np.save(path, image)
    runner = CliRunner()
    refused = runner.invoke(app, ["label", str(path), "--output", str(tmp_path / "a.csv")])
    assert refused.exit_code != 0
    assert "frame.npy: a .npy file carries no calibration; pass --pixel-size" in str(
        refused.exception)
    result = runner.invoke(app, ["label", str(path), "--pixel-size", "0.2", "--output",
                                 str(tmp_path / "a.csv")])
    assert result.exit_code == 0, result.output
    assert "9 columns proposed at 0.2 A/px" in result.output
    assert not (tmp_path / "a_tiles").exists()  # small image: no tiles


def test_confidence_column_is_checked(tmp_path):
    from stembench.dataset_publish.experimental.importer import read_positions_csv
    from stembench.errors import InputError

    path = tmp_path / "labels.csv"
    path.write_text("x,y,column_type,confidence\n1,1,Sr,sure\n2,2,TiO,unsure\n")
    coords, types = read_positions_csv(path, shape=(8, 8))
    assert coords.tolist() == [[1.0, 1.0], [2.0, 2.0]]
    assert types == ("Sr", "unsure")
    path.write_text("x,y,confidence\n1,1,sure\n2,2,maybe\n")
    with pytest.raises(InputError, match=r"labels\.csv, line 3: confidence='maybe'; expected "
                                         r"'sure' or 'unsure'"):
        read_positions_csv(path, shape=(8, 8))
