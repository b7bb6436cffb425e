"""Reading real microscope files (rosettasciio's own test data) and files the tests write.

The expected pixel sizes are the files' own calibrations, read independently of
rosettasciio where the format allows (DM tags via rosettasciio's original metadata, the
Velox JSON metadata block with h5py, the MRC header's cell length, the TIA header's
calibration delta); see tests/data/microscope/README.md for where each file comes from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.cli import app
from stembench.dataset_publish.experimental.importer import import_labelled_image, read_image_file
from stembench.dataset_publish.experimental.microscope import (
    pixel_size_from_axes,
    read_microscope_image,
    resolve_pixel_size,
)
from stembench.errors import InputError, MissingExtraError

pytest.importorskip("rsciio", reason="the io extra (rosettasciio) reads microscope files")

DATA = Path(__file__).parents[1] / "data" / "microscope"


def _velox_pixel_size_angstrom(path: Path) -> float:
    """Pixel width from the Velox JSON metadata block of the first image, in A."""
    with h5py.File(path, "r") as handle:
        group = handle["Data/Image"]
        raw = group[next(iter(group))]["Metadata"][:, 0]
    meta = json.loads(bytes(raw).rstrip(b"\0").decode())
    assert meta["BinaryResult"]["PixelUnitX"] == "m"
    return float(meta["BinaryResult"]["PixelSize"]["width"]) * 1e10


@pytest.mark.parametrize(
    ("name", "pixel", "signal", "shape"),
    [
        # Gatan DM3, nm: DM calibration tag 0.017751578 nm.
        ("multi_signal.dm3", 0.17751578241586685, "HAADF", (512, 512)),
        # Gatan DM3, µm: DM calibration tag 0.16867469 µm.
        ("test_dm_image_um_unit.dm3", 1686.7469251155853, "test_dm_image_um_unit", (68, 68)),
        # TIA .ser, m in the header: CalibrationDeltaX 6.28183362e-09 m; stack of 5.
        ("64x64x5_TEM_preview_1.ser", 62.81833616298531, "signal 0", (64, 64)),
        # MRC: header cell length Xlen 908.661 A over NX 16 px.
        ("HAADFscan.mrc", 908.661 / 16, "signal 0", (16, 16)),
        # Berkeley EMD (prismatic output), dims in [n_m] with 0.25 nm steps.
        ("Si100_2x1x1_3D.emd", 2.5, "annular_detector", (22, 44)),
        # ImageJ TIFF: XResolution 5.928571 px per micron.
        ("test_loading_image_saved_with_imageJ.tif", 1e4 / 5.928571, "signal 0", (68, 68)),
    ],
)
def test_real_files_pixel_size_from_calibration(name, pixel, signal, shape):
    found = read_microscope_image(DATA / name)
    assert found.pixel_size_angstrom == pytest.approx(pixel, rel=1e-6)
    assert found.signal == signal
    assert found.image.shape == shape
    assert found.image.dtype == np.float32
    assert resolve_pixel_size(found, None) == pytest.approx(pixel, rel=1e-6)
    assert resolve_pixel_size(found, 0.2) == 0.2  # --pixel-size always wins


@pytest.mark.parametrize("name", ["fei_example_dpc_titles.emd", "fei_example_tem_stack.emd"])
def test_velox_emd_against_its_json_metadata(name):
    found = read_microscope_image(DATA / name)
    assert found.pixel_size_angstrom == pytest.approx(_velox_pixel_size_angstrom(DATA / name),
                                                      rel=1e-9)
    assert "pm" in found.calibration


def test_dm_calibration_tag_matches():
    from rsciio.digitalmicrograph import file_reader

    tags = file_reader(str(DATA / "multi_signal.dm3"))[0]["original_metadata"]
    dims = tags["ImageList"]["TagGroup0"]["ImageData"]["Calibrations"]["Dimension"]
    scale, unit = dims["TagGroup0"]["Scale"], dims["TagGroup0"]["Units"]
    assert unit == "nm"
    assert read_microscope_image(DATA / "multi_signal.dm3").pixel_size_angstrom == \
        pytest.approx(scale * 10.0, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("test-1.dm4", "unit '<none>' is not a length"),
        ("example2_v3.1.hspy", "unit '1/nm' is not a length"),
        ("20241021_00405_final.mrc", "scale -1.0 is not a positive length"),
        ("test_loading_image_saved_with_imageJ_no_scale.tif", "unit '<none>' is not a length"),
    ],
)
def test_uncalibrated_real_files_ask_for_pixel_size(name, why):
    found = read_microscope_image(DATA / name)
    assert found.pixel_size_angstrom is None
    assert why in found.calibration
    with pytest.raises(InputError, match=rf"{name}: no spatial calibration.*--pixel-size"):
        resolve_pixel_size(found, None)
    assert resolve_pixel_size(found, 0.3) == 0.3


def test_multi_signal_picks_haadf_and_says_what_it_found():
    found = read_microscope_image(DATA / "multi_signal.dm3")
    text = found.describe()
    assert "2 signal(s): HAADF (512, 512) uint16; Plot (512,) float32" in text
    assert "using signal 'HAADF' (choose with --signal)" in text
    velox = read_microscope_image(DATA / "fei_example_dpc_titles.emd", signal="idpc")
    assert velox.signal == "iDPC"
    assert len(velox.found) == 9
    assert read_microscope_image(DATA / "fei_example_dpc_titles.emd").signal.startswith("DF4")
    with pytest.raises(InputError, match=r"no image signal named 'BF'.*'iDPC'"):
        read_microscope_image(DATA / "fei_example_dpc_titles.emd", signal="BF")


def test_stack_frames_are_chosen_and_checked():
    path = DATA / "64x64x5_TEM_preview_1.ser"
    first, third = read_microscope_image(path), read_microscope_image(path, frame=2)
    assert (first.frame, first.n_frames, third.frame) == (0, 5, 2)
    assert "frame 0 of 5 (choose with --frame)" in first.describe()
    assert not np.array_equal(first.image, third.image)
    with pytest.raises(InputError, match=r"frame 5 out of range.*holds 5 frame\(s\) \(0..4\)"):
        read_microscope_image(path, frame=5)


def _write_hspy(path: Path, data: np.ndarray, scale: float, units: str | None,
                title: str = "HAADF") -> Path:
    from rsciio.hspy import file_writer

    axes = [{"name": name, "size": size, "scale": scale, "offset": 0.0, "units": units,
             "navigate": False} for name, size in zip(("y", "x"), data.shape, strict=True)]
    file_writer(str(path), {"data": data, "axes": axes,
                            "metadata": {"General": {"title": title},
                                         "Signal": {"signal_type": ""}},
                            "original_metadata": {}, "attributes": {"_lazy": False},
                            "tmp_parameters": {}, "package_info": {}, "learning_results": {},
                            "models": {}})
    return path


@pytest.mark.parametrize(
    ("scale", "units", "expected"),
    [(12.5, "pm", 0.125), (0.0125, "nm", 0.125), (0.125, "Å", 0.125), (0.125, "A", 0.125),
     (1.25e-5, "um", 0.125), (1.25e-5, "µm", 0.125)],
)
def test_written_hspy_units_to_angstrom(tmp_path, scale, units, expected):
    data = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    found = read_microscope_image(_write_hspy(tmp_path / "image.hspy", data, scale, units))
    assert found.pixel_size_angstrom == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(found.image, data)


@pytest.mark.parametrize("units", ["1/nm", "mrad", "eV", "<undefined>", None])
def test_written_hspy_non_spatial_units(tmp_path, units):
    path = _write_hspy(tmp_path / "image.hspy", np.ones((8, 8), np.float32), 0.5, units)
    with pytest.raises(InputError, match=r"image\.hspy: no spatial calibration.*--pixel-size"):
        resolve_pixel_size(read_microscope_image(path), None)


def test_non_square_pixels_are_not_guessed():
    pixel, note = pixel_size_from_axes([{"name": "y", "scale": 0.1, "units": "nm"},
                                        {"name": "x", "scale": 0.2, "units": "nm"}])
    assert pixel is None
    assert "non-square pixels" in note


def test_written_tiff_calibration_through_rosettasciio(tmp_path):
    from rsciio.tiff import file_writer

    data = np.random.default_rng(0).random((32, 40)).astype(np.float32)
    axes = [{"name": n, "size": s, "scale": 0.02, "offset": 0.0, "units": "nm",
             "navigate": False} for n, s in zip(("y", "x"), data.shape, strict=True)]
    path = tmp_path / "frame.tif"
    file_writer(str(path), {"data": data, "axes": axes, "metadata": {}, "original_metadata": {}})
    found = read_microscope_image(path)
    assert found.pixel_size_angstrom == pytest.approx(0.2, rel=1e-5)
    np.testing.assert_array_equal(found.image, data)


def test_import_takes_the_files_pixel_size(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("x,y\n100,100\n200.5,300\n")
    image = import_labelled_image(DATA / "multi_signal.dm3", csv_path)
    assert image.pixel_size == pytest.approx(0.17751578241586685)
    assert image.shape == (512, 512)
    overridden = import_labelled_image(DATA / "multi_signal.dm3", csv_path, pixel_size=0.2)
    assert overridden.pixel_size == 0.2
    with pytest.raises(InputError, match=r"test-1\.dm4: no spatial calibration"):
        import_labelled_image(DATA / "test-1.dm4", csv_path)


def test_cli_import_without_pixel_size(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("x,y\n10,10\n30,40\n")
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(app, ["dataset", "import", str(DATA / "multi_signal.dm3"),
                                      str(csv_path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "0.1775 A/px" in result.output


def test_missing_extra_names_it_and_tiff_still_reads(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rsciio.digitalmicrograph", None)
    monkeypatch.setitem(sys.modules, "rsciio.tiff", None)
    with pytest.raises(MissingExtraError, match=r"rsciio.*stembench\[io\]"):
        read_image_file(DATA / "test-1.dm4")
    found = read_microscope_image(DATA / "test_loading_image_saved_with_imageJ.tif")
    assert found.pixel_size_angstrom is None
    assert found.image.shape == (68, 68)


def test_older_hyperspy_hdf5_suffix(tmp_path):
    data = np.ones((16, 16), np.float32)
    path = _write_hspy(tmp_path / "image.hdf5", data, 0.02, "nm")
    assert read_microscope_image(path).pixel_size_angstrom == pytest.approx(0.2)


def test_readers_come_from_rosettasciios_plugin_table():
    from rsciio import IO_PLUGINS

    from stembench.dataset_publish.experimental.microscope import (
        MICROSCOPE_PLUGINS,
        MICROSCOPE_READERS,
    )

    table = {plugin["name"]: plugin for plugin in IO_PLUGINS}
    for name in MICROSCOPE_PLUGINS:  # every suffix rosettasciio gives the plugin, its reader
        for extension in table[name]["file_extensions"]:
            assert MICROSCOPE_READERS[f".{extension.lower()}"] == table[name]["api"]
    assert set(MICROSCOPE_READERS.values()) == {table[n]["api"] for n in MICROSCOPE_PLUGINS}
    assert MICROSCOPE_READERS[".emi"] == "rsciio.tia"  # a suffix no hand list of ours had
