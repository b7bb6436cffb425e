"""``dataset build --experimental DIR``: labelled real images become experimental groups."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from stembench.dataset_publish.build import build_dataset
from stembench.dataset_publish.experimental.build import read_experimental_folder
from stembench.dataset_publish.simulate.series import reference_image
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import InputError


def _write_labels(path, coords, unsure=()):
    lines = ["x,y,confidence"] + [f"{x:.4f},{y:.4f},{'unsure' if k in unsure else 'sure'}"
                                  for k, (x, y) in enumerate(coords)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def folder(tmp_path):
    """A calibrated .hspy (SrTiO3 image, one unsure label, a dose) and an uncalibrated TIFF
    (WS2 image, pixel size in its JSON), plus an image without labels (ignored)."""
    from rsciio.hspy import file_writer

    root = tmp_path / "real"
    root.mkdir()
    srtio3 = reference_image("SrTiO3[100]", axis="noise", shape=(96, 96))
    counts = np.rint(srtio3.image * 400.0).astype(np.float32)
    axes = [{"name": n, "size": 96, "scale": srtio3.pixel_size * 100.0, "offset": 0.0,
             "units": "pm", "navigate": False} for n in ("y", "x")]
    file_writer(str(root / "sto.hspy"), {
        "data": counts, "axes": axes, "metadata": {"General": {"title": "HAADF"},
                                                   "Signal": {"signal_type": ""}},
        "original_metadata": {}, "attributes": {"_lazy": False}, "tmp_parameters": {},
        "package_info": {}, "learning_results": {}, "models": {}})
    _write_labels(root / "sto_labels.csv", srtio3.coords, unsure=(3,))
    (root / "sto.json").write_text(json.dumps({"material": "SrTiO3", "dose_e_per_A2": 2000.0,
                                               "resolution_pm": 80.0}))
    ws2 = reference_image("WS2", axis="noise", shape=(128, 128))
    tifffile.imwrite(root / "ws2.tif", (ws2.image * 1000).astype(np.uint16))
    _write_labels(root / "ws2.csv", ws2.coords)
    (root / "ws2.json").write_text(json.dumps({"material": "WS2",
                                               "pixel_size_angstrom": ws2.pixel_size}))
    tifffile.imwrite(root / "unlabelled.tif", np.ones((8, 8), np.uint16))
    return root, srtio3, ws2


def test_folder_is_read_with_calibration_and_notes(folder):
    root, srtio3, ws2 = folder
    sources = {s.image.image_id: s for s in read_experimental_folder(root)}
    assert sorted(sources) == ["sto", "ws2"]
    sto = sources["sto"]
    assert sto.image.pixel_size == pytest.approx(srtio3.pixel_size)
    assert sto.image.metadata["group"] == "SrTiO3-experimental"
    assert sto.image.column_types.count("unsure") == 1
    assert (sto.dose, sto.resolution_pm, sto.notes) == (2000.0, 80.0, ())
    ws = sources["ws2"]
    assert ws.image.pixel_size == ws2.pixel_size
    assert ws.resolution_pm == pytest.approx(75.0, rel=0.15)  # estimated: the generator's probe
    assert "no dose series: give dose_e_per_A2 in ws2.json" in ws.notes


def test_build_adds_experimental_series_with_exact_labels(folder, tmp_path):
    root, srtio3, _ = folder
    path = build_dataset(tmp_path / "with_real.h5", preset="mini", progress=False,
                         experimental=root)
    dataset = open_dataset(path)
    try:
        meta = {i: dataset.metadata(i) for i in dataset.ids}
        real = {i: m for i, m in meta.items() if str(m["group"]).endswith("-experimental")}
        series = {(m["group"], m["series"]) for m in real.values()}
        assert series == {("SrTiO3-experimental", a) for a in
                          ("pixel_size", "resolution", "contrast", "dose")} | {
            ("WS2-experimental", a) for a in ("pixel_size", "resolution", "contrast")}
        binned = dataset["SrTiO3-experimental:sto:pixel_size:step01:seed0"]
        assert binned.pixel_size == pytest.approx(2 * srtio3.pixel_size)
        expected = (srtio3.coords + 0.5) / 2 - 0.5
        np.testing.assert_allclose(binned.coords, expected[np.isin(
            np.arange(len(expected)), np.flatnonzero(
                (expected >= -0.5).all(1) & (expected <= 47.5).all(1)))], atol=1e-4)
        assert binned.column_types.count("unsure") == 1
        dose = [i for i in real if ":dose:" in i and "step00" not in i]
        assert len(dose) == 2 * 2  # two steps, two seeds
        assert {m["backend"] for m in real.values()} == {"experimental"}
        assert dataset.manifest is not None
        params = dataset.manifest.generator_params["experimental"]
        assert params["ws2"]["notes"][-1].startswith("no dose series")
    finally:
        dataset.close()


def test_folder_without_labels_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((8, 8), np.uint16))
    with pytest.raises(InputError, match="no labelled image"):
        read_experimental_folder(tmp_path)
    (tmp_path / "a.csv").write_text("x,y\n1,1\n")
    (tmp_path / "a.json").write_text('{"pixel": 0.1}')
    with pytest.raises(InputError, match=r"a\.json: unknown key\(s\) \['pixel'\]"):
        read_experimental_folder(tmp_path)
