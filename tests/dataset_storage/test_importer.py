"""Importing a user's labelled TIFF + CSV, and the importer's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile

from stembench.dataset_publish.experimental.importer import (
    import_dataset,
    import_labelled_image,
    read_image_file,
)
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import InputError


@pytest.fixture
def lattice_files(tmp_path):
    """A 40 x 50 px image with Gaussian columns on a 10 px square lattice, and its CSV."""
    yy, xx = np.mgrid[0:40, 0:50]
    positions = [(x, y) for y in range(5, 40, 10) for x in range(5, 50, 10)]
    image = np.full((40, 50), 10.0)
    for x, y in positions:
        image += 100.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    tif = tmp_path / "frame.tif"
    tifffile.imwrite(tif, image.astype(np.uint16))
    csv_path = tmp_path / "frame.csv"
    lines = ["x,y,column_type"] + [f"{x},{y},{'A' if x % 20 == 5 else 'B'}" for x, y in positions]
    csv_path.write_text("\n".join(lines) + "\n")
    return tif, csv_path, np.array(positions, float), image.astype(np.uint16)


def test_import_round_trip(tmp_path, lattice_files):
    tif, csv_path, positions, pixels = lattice_files
    image = import_labelled_image(tif, csv_path, pixel_size=0.2, material="SrTiO3[100]",
                                  group="SrTiO3-experimental")
    assert image.image_id == "frame"
    np.testing.assert_array_equal(image.image, pixels.astype(np.float32))
    np.testing.assert_array_equal(image.coords, positions)
    assert image.column_types[:3] == ("A", "B", "A")
    meta = image.metadata
    assert meta["type"] == meta["backend"] == "experimental"
    assert meta["pixel_size_pm"] == pytest.approx(20.0)
    assert meta["atoms_per_100px"] == pytest.approx(10.0)  # 100 / 10 px spacing
    expected_contrast = (pixels.max() - pixels.min()) / pixels.max()
    assert meta["contrast"] == pytest.approx(expected_contrast)
    assert math.isnan(meta["psnr_db"]) and math.isnan(meta["resolution_pm"])
    out = import_dataset([image], tmp_path / "mine.h5", name="my-images")
    with open_dataset(out) as ds:
        read = ds["frame"]
        np.testing.assert_array_equal(read.image, image.image)
        np.testing.assert_array_equal(read.coords, positions)
        assert read.pixel_size == 0.2 and read.column_types == image.column_types
        assert ds.metadata("frame")["group"] == "SrTiO3-experimental"


def test_csv_without_type_column_and_with_spaces(tmp_path, lattice_files):
    tif, _, _, _ = lattice_files
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(" X , Y \n1.5, 2.25\n3,4\n")
    image = import_labelled_image(tif, csv_path, pixel_size=0.1, image_id="custom")
    assert image.image_id == "custom" and image.column_types == ()
    np.testing.assert_array_equal(image.coords, [[1.5, 2.25], [3.0, 4.0]])


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("col,row\n1,2\n", r"lacks column\(s\) \['x', 'y'\]"),
        ("x\n1\n", r"lacks column\(s\) \['y'\]"),
        ("x,y\n", "no positions"),
        ("x,y\n1,2\n3,abc\n", "line 3: y='abc' is not a number"),
        ("x,y\n1,2\nnan,4\n", "line 3: x='nan' is not finite"),
        ("x,y\n1,2\n3,\n", "line 3: y='' is not a number"),
        ("x,y\n1,2\n49.6,4\n", r"1 position\(s\) outside the 50 x 40 px image.*x=49.6"),
        ("x,y\n1,-0.6\n", "outside"),
    ],
)
def test_csv_errors(tmp_path, lattice_files, csv_text, message):
    tif, _, _, _ = lattice_files
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(csv_text)
    with pytest.raises(InputError, match=message) as info:
        import_labelled_image(tif, csv_path, pixel_size=0.2)
    assert "bad.csv" in str(info.value)


def test_positions_on_the_pixel_edge_are_inside(tmp_path, lattice_files):
    tif, _, _, _ = lattice_files
    csv_path = tmp_path / "edge.csv"
    csv_path.write_text("x,y\n-0.5,-0.5\n49.5,39.5\n")
    assert len(import_labelled_image(tif, csv_path, pixel_size=0.2).coords) == 2


def test_image_errors(tmp_path):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((3, 8, 8), np.float32), photometric="minisblack")
    with pytest.raises(InputError, match=r"stack.tif: expected a 2D image, got shape \(3, 8, 8\)"):
        read_image_file(stack)
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.ones((1, 8, 8), np.float32))
    assert read_image_file(single).shape == (8, 8)
    holes = tmp_path / "holes.tif"
    tifffile.imwrite(holes, np.full((8, 8), np.nan, np.float32))
    with pytest.raises(InputError, match="64 non-finite value"):
        read_image_file(holes)
    with pytest.raises(InputError, match=r"unknown image format '\.png'"):
        read_image_file(_touch(tmp_path / "x.png"))
    with pytest.raises(InputError, match="no such image file"):
        read_image_file(tmp_path / "absent.tif")


def _touch(path):
    path.write_bytes(b"")
    return path


def test_bad_pixel_size(lattice_files):
    tif, csv_path, _, _ = lattice_files
    for bad in (0.0, -0.1, math.nan):
        with pytest.raises(InputError, match=r"\(--pixel-size\) must be a positive number of A/px"):
            import_labelled_image(tif, csv_path, pixel_size=bad)
