"""The HTML + JSON report."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from stembench.client.analysis import compute_cutoffs
from stembench.client.analysis.report import load_report, write_report
from stembench.errors import InputError

PROVENANCE = {
    "dataset_name": "synthetic-test",
    "dataset_version": "9.9",
    "dataset_sha256": "ab" * 32,
    "scorer_version": "scorer-1",
}
RESOLUTIONS = np.arange(100.0, 201.0, 10.0)


@pytest.fixture
def records(records_builder):
    scored = records_builder(
        RESOLUTIONS, seeds=(0, 1), recall=lambda v, s: 1 - (v - 100) / 250 + 0.002 * s
    )
    generality = records_builder(
        [0.0], series="generality", group="generality", recall=lambda v, s: 0.8125
    )
    generality[0]["rms_angstrom"] = math.nan
    return scored + generality


def test_report_json_round_trips(records, tmp_path):
    html = write_report(records, out_dir=tmp_path, provenance=PROVENANCE, bootstrap=10)
    loaded = load_report(html.with_suffix(".json"))
    expected = compute_cutoffs(records, bootstrap=10, progress=False)
    assert loaded["cutoffs"] == expected
    assert len(loaded["scores"]) == len(records)
    assert math.isnan(loaded["scores"][-1]["rms_angstrom"])
    assert [s["recall"] for s in loaded["scores"]] == [r["recall"] for r in records]
    provenance = loaded["provenance"]
    assert provenance["dataset_sha256"] == "ab" * 32
    assert provenance["scorer_version"] == "scorer-1"
    assert {"package_version", "host", "created_utc"} <= set(provenance)
    assert loaded["models"] == {"net": {"model_version": "1", "weights_sha256": "0" * 64,
                                        "weights": "other", "n_images": len(records),
                                        "n_failed": 0}}
    (summary,) = [row for row in loaded["group_summary"] if row["group"] == "generality"]
    assert summary["mean_recall"] == 0.8125 and summary["mean_rms_angstrom"] is None
    json.loads(html.with_suffix(".json").read_text())  # strict JSON, no NaN tokens


def test_report_says_published_weights_beside_trained_here(records, tmp_path):
    """Judged by the weights' SHA-256: the pinned published file, the weights shipped here."""
    from stembench.endpoints.models.published import get_published

    published = get_published("atomnet-cubic-published").sha256
    trained = "5ce04a5ec32b4bf77266ffc8d696d936758c816c15212577c42865fba9fb602d"  # shipped
    mixed = [{**r, "model": "atomnet-cubic-published", "weights_sha256": published}
             for r in records] + [{**r, "model": "atomnet-cubic", "weights_sha256": trained}
                                  for r in records]
    html = write_report(mixed, out_dir=tmp_path, provenance=PROVENANCE, bootstrap=0)
    models = load_report(html.with_suffix(".json"))["models"]
    assert models["atomnet-cubic-published"]["weights"] == "published weights"
    assert models["atomnet-cubic"]["weights"] == "trained here"
    text = html.read_text()
    assert "<td>atomnet-cubic-published</td><td>1</td><td>published weights</td>" in text
    assert "<td>atomnet-cubic</td><td>1</td><td>trained here</td>" in text


def test_html_embeds_figures_and_cutoff_values(records, tmp_path):
    failure = {
        "image": np.zeros((20, 20)),
        "truth": [[5.0, 5.0], [15.0, 15.0]],
        "predicted": [[5.2, 5.0]],
        "matched_truth_index": [0],
        "matched_predicted_index": [0],
        "image_id": "fail-1",
        "model": "net",
    }
    html = write_report(
        records, out_dir=tmp_path, provenance=PROVENANCE, bootstrap=10, failure_images=[failure]
    ).read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # radar, one trend figure (one group with axes), one failure
    assert all(len(image) > 1000 for image in images)
    assert html.index("Cutoffs at a glance") < html.index("Cutoffs per data group")
    (pchip,) = [c for c in load_report(tmp_path / "report.json")["cutoffs"] if c.method == "pchip"]
    assert f"{pchip.value:.3g}" in html  # the recall-driven cutoff near 125.2 pm
    assert pchip.value == pytest.approx(125.25, abs=0.01)
    assert "How to read this" in html
    assert "0.812" in html  # generality table


def test_report_requires_provenance_and_failure_fields(records, tmp_path):
    with pytest.raises(InputError, match="dataset_sha256"):
        write_report(records, out_dir=tmp_path, provenance={"dataset_name": "x"}, bootstrap=0)
    with pytest.raises(InputError, match=r"failure_images\[0\] lacks"):
        write_report(
            records,
            out_dir=tmp_path,
            provenance=PROVENANCE,
            bootstrap=0,
            failure_images=[{"image": np.zeros((4, 4))}],
        )


def test_experimental_groups_get_their_own_section(records, records_builder, tmp_path):
    real = records_builder(RESOLUTIONS, seeds=(0,), group="Au-experimental",
                           recall=lambda v, s: 1 - (v - 100) / 150)
    html = write_report(records + real, out_dir=tmp_path, provenance=PROVENANCE,
                        bootstrap=10).read_text()
    section = html.index("<h2>Experimental groups</h2>")
    assert html.index("<h3>Au-experimental</h3>") > section
    assert html.index("<h3>SrTiO3-simulated</h3>") < section
    assert "Groups made from labelled real images (Au-experimental)" in html
    assert "Au-experimental: trends" in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4  # radar and trends of each section


def test_per_column_type_table_shows_visible_and_faint_columns(records, tmp_path):
    for record in records:
        record["by_type"] = {"Sr": {"n_truth": 4, "tp": 3, "fn": 1, "recall": 0.75,
                                    "rms_px": 0.2, "rms_angstrom": 0.02}}
        record["faint_by_type"] = {"O": {"n_truth": 2, "tp": 1, "fn": 1, "recall": 0.5,
                                         "rms_px": 0.4, "rms_angstrom": 0.04}}
    html = write_report(records, out_dir=tmp_path, provenance=PROVENANCE, bootstrap=0).read_text()
    rows = load_report(tmp_path / "report.json")["column_types"]
    faint = [r for r in rows if r["kind"] == "faint" and r["group"] != "generality"]
    assert [(r["type"], r["n_columns"], r["n_found"]) for r in faint] == [
        ("O", 2 * (len(records) - 1), len(records) - 1)]
    assert "Per column type" in html and "<td>faint</td><td>O</td>" in html
