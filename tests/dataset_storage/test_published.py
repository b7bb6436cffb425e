"""Reading the published wei_atom.h5 layout (hand-built small files)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from stembench.dataset_publish.storage.published import PublishedDataset, canonical_field_name
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.errors import DatasetError

IDS = ["WS2_sim_005", "STO_exp_001"]
SHAPES = {"WS2_sim_005": (16, 20), "STO_exp_001": (12, 12)}
COORDS = {
    "WS2_sim_005": np.array([[1.5, 2.0], [10.25, 7.5], [18.0, 15.0]]),
    "STO_exp_001": np.array([[3.0, 4.0], [8.0, 9.5]]),
}
ROWS = {  # published spellings
    "WS2_sim_005": {"Material": "WS2", "Type": "simulated", "Space group": "P6_3/mmc",
                    "Pixel size (pm)": 15.47, "Atoms per 100 px": 20.4, "PSNR (dB)": 12.5,
                    "Fly-back error": 0.5, "Random drift": 0.02},
    "STO_exp_001": {"Material": "SrTiO3 [100]", "Type": "experimental", "Space group": "Pm-3m",
                    "Pixel size (pm)": 10.96, "Atoms per 100 px": 2.8, "PSNR (dB)": math.nan,
                    "Fly-back error": math.nan, "Random drift": math.nan},
}


def _write_arrays(f: h5py.File) -> None:
    rng = np.random.default_rng(4)
    for image_id in IDS:
        f[f"imgs/{image_id}"] = rng.random(SHAPES[image_id])  # float64 in the file
        f[f"raw/{image_id}"] = rng.random(SHAPES[image_id])
        f[f"coords/{image_id}"] = COORDS[image_id]


def _attrs_layout(path):
    with h5py.File(path, "w") as f:
        _write_arrays(f)
        for image_id in IDS:
            group = f.create_group(f"metadata/{image_id}")
            for key, value in ROWS[image_id].items():
                group.attrs[key] = value


def _table_layout(path):
    dtype = np.dtype([("id", "S16"), ("Material", "S16"), ("Type", "S16"),
                      ("Space group", "S16"), ("Pixel size (pm)", "f8"),
                      ("Atoms per 100 px", "f8"), ("PSNR (dB)", "f8"),
                      ("Fly-back error", "f8"), ("Random drift", "f8")])
    table = np.array(
        [tuple([i.encode()] + [v.encode() if isinstance(v, str) else v
                               for v in ROWS[i].values()]) for i in reversed(IDS)],
        dtype=dtype,
    )
    with h5py.File(path, "w") as f:
        _write_arrays(f)
        f["metadata"] = table


def _columns_layout(path):
    with h5py.File(path, "w") as f:
        _write_arrays(f)
        f["metadata/image_id"] = np.array(IDS, dtype="S16")
        f["metadata/pixel_size"] = np.array([ROWS[i]["Pixel size (pm)"] for i in IDS])
        f["metadata/Material"] = np.array([ROWS[i]["Material"] for i in IDS], dtype="S16")
        f["metadata/Type"] = np.array([ROWS[i]["Type"] for i in IDS], dtype="S16")


@pytest.mark.parametrize("layout", [_attrs_layout, _table_layout, _columns_layout])
def test_published_layouts_read(tmp_path, layout):
    path = tmp_path / "wei_atom.h5"
    layout(path)
    with open_dataset(path) as ds:
        assert isinstance(ds, PublishedDataset)
        assert ds.manifest is None and ds.verify is False
        assert "no manifest" in repr(ds)
        assert (ds.name, ds.version) == ("wei_atom", "published")
        assert sorted(ds.ids) == sorted(IDS)
        ws2 = ds["WS2_sim_005"]
        assert ws2.pixel_size == pytest.approx(0.1547)
        assert ws2.image.dtype == np.float32 and ws2.image.shape == (16, 20)
        assert ws2.raw is not None and ws2.raw.shape == (16, 20)
        np.testing.assert_array_equal(ws2.coords, COORDS["WS2_sim_005"])
        meta = ds.metadata("STO_exp_001")
        assert meta["pixel_size_pm"] == pytest.approx(10.96)
        assert meta["pixel_size_angstrom"] == pytest.approx(0.1096)
        assert meta["material"] == "SrTiO3 [100]"
        assert meta["group"] == "SrTiO3-experimental"
        assert ds.metadata("WS2_sim_005")["group"] == "WS2-simulated"
        assert ds.select(type="experimental") == ["STO_exp_001"]
        assert len(ds.metadata_table()) == 2


def test_published_field_names_mapped(tmp_path):
    path = tmp_path / "wei_atom.h5"
    _attrs_layout(path)
    with open_dataset(path) as ds:
        meta = ds.metadata("WS2_sim_005")
    assert meta["space_group"] == "P6_3/mmc"
    assert meta["atoms_per_100px"] == pytest.approx(20.4)
    assert meta["psnr_db"] == pytest.approx(12.5)
    assert meta["flyback"] == pytest.approx(0.5)
    assert meta["drift"] == pytest.approx(0.02)
    assert meta["source"] == "wei_atom.h5"


@pytest.mark.parametrize(
    ("published", "ours"),
    [("Pixel size (pm)", "pixel_size_pm"), ("pixel_size", "pixel_size"),
     ("Pixel size (nm)", "pixel_size_nm"),
     ("Dose (e-/A^2)", "dose_e_per_A2"), ("Resolution (pm)", "resolution_pm"),
     ("Probe current (pA)", "probe_current_pA"), ("Peak intensity (e-)", "peak_intensity_e"),
     ("Material/orientation", "material"), ("Some Other Field", "some_other_field")],
)
def test_canonical_field_name(published, ours):
    assert canonical_field_name(published) == ours


def test_missing_pixel_size_is_an_error(tmp_path):
    path = tmp_path / "nopx.h5"
    with h5py.File(path, "w") as f:
        _write_arrays(f)
        f.create_group("metadata/WS2_sim_005").attrs["Material"] = "WS2"
    with open_dataset(path) as ds, pytest.raises(DatasetError, match=r"'STO_exp_001'.*pixel size"):
        ds["STO_exp_001"]


def test_table_without_id_column(tmp_path):
    path = tmp_path / "noid.h5"
    with h5py.File(path, "w") as f:
        _write_arrays(f)
        f["metadata"] = np.zeros(2, dtype=[("Pixel size (pm)", "f8")])
    with pytest.raises(DatasetError, match="no id column"):
        open_dataset(path)


def _bare_pixel_size_file(path, value, coords):
    with h5py.File(path, "w") as f:
        f["imgs/a"] = np.zeros((64, 64))
        f["coords/a"] = coords
        f.create_group("metadata/a").attrs["pixel_size"] = value


# a square lattice 20 px apart: 20 px x 0.14 A/px = 2.8 A, a perovskite-like spacing
LATTICE_20PX = np.array([[x, y] for x in (10.0, 30.0, 50.0) for y in (10.0, 30.0, 50.0)])


@pytest.mark.parametrize(("value", "expected"), [(14.0, 0.14), (0.14, 0.14), (0.014, 0.14)])
def test_bare_pixel_size_unit_from_the_lattice_spacing(tmp_path, value, expected):
    # the same 2.8 A spacing stored in pm, A and nm: each read as 0.14 A/px
    path = tmp_path / "bare.h5"
    _bare_pixel_size_file(path, value, LATTICE_20PX)
    with open_dataset(path) as ds:
        assert ds["a"].pixel_size == pytest.approx(expected)
        assert ds.metadata("a")["pixel_size_pm"] == pytest.approx(expected * 100)


def test_bare_pixel_size_that_fits_no_unit_is_refused(tmp_path):
    # 20 px x 2.0 = 40 pm / 40 A / 400 A: no physical spacing in any unit
    path = tmp_path / "bare.h5"
    _bare_pixel_size_file(path, 2.0, LATTICE_20PX)
    with open_dataset(path) as ds, pytest.raises(DatasetError, match=r"fits no unit.*20 px"):
        ds["a"]


def test_bare_pixel_size_with_one_label_is_refused(tmp_path):
    path = tmp_path / "bare.h5"
    _bare_pixel_size_file(path, 14.0, np.array([[10.0, 10.0]]))
    with open_dataset(path) as ds, pytest.raises(DatasetError, match="cannot be checked"):
        ds["a"]


def test_declared_unit_contradicted_by_the_lattice_is_refused(tmp_path):
    # "Pixel size (pm)" = 0.14 would make the 20 px spacing 0.028 A: a value in A, mislabelled
    path = tmp_path / "declared.h5"
    with h5py.File(path, "w") as f:
        f["imgs/a"] = np.zeros((64, 64))
        f["coords/a"] = LATTICE_20PX
        f.create_group("metadata/a").attrs["Pixel size (pm)"] = 0.14
    with open_dataset(path) as ds, pytest.raises(DatasetError,
                                                 match=r"declared in pm.*2\.8 A as A"):
        ds["a"]
