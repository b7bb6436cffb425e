from __future__ import annotations

import numpy as np
import pytest

from stembench.dataset_publish.simulate.catalogue import build_structure, list_structures
from stembench.errors import InputError


def _visible_types(structure):
    return sorted({t for t, v in zip(structure.column_types, structure.visible, strict=True) if v})


def test_srtio3_labels_sr_and_tio_columns_only():
    s = build_structure("SrTiO3[100]", extent_angstrom=(20.0, 20.0))
    assert _visible_types(s) == ["Sr", "TiO"]
    assert set(s.column_types) == {"Sr", "TiO", "O"}
    assert s.column_spacing_angstrom == pytest.approx(3.905 / np.sqrt(2), abs=1e-6)
    sr = s.weights[np.array(s.column_types) == "Sr"]
    np.testing.assert_allclose(sr, 38**1.7)
    tio = s.weights[np.array(s.column_types) == "TiO"]
    np.testing.assert_allclose(tio, 22**1.7 + 8**1.7)
    assert s.elements[s.column_types.index("TiO")] == "Ti+O"
    # a lattice point at the origin when no seed is given; columns on the 3.905 A grid
    sr_pos = s.positions_angstrom[np.array(s.column_types) == "Sr"]
    np.testing.assert_allclose(np.mod(sr_pos + 1e-9, 3.905), 1e-9, atol=1e-6)
    assert len(s.unit_cell) == 5 and s.space_group == "Pm-3m"


def test_ws2_columns_and_spacing():
    s = build_structure("WS2", extent_angstrom=(30.0, 30.0), seed=3)
    assert _visible_types(s) == ["S2", "W"]
    assert s.column_spacing_angstrom == pytest.approx(3.153 / np.sqrt(3), abs=1e-6)
    assert s.elements[s.column_types.index("S2")] == "S+S"
    assert s.positions_angstrom.min() >= 0 and s.positions_angstrom.max() <= 30.0


def test_dumbbells_are_closely_spaced():
    si = build_structure("Si[110]", extent_angstrom=(25.0, 25.0))
    assert si.column_spacing_angstrom == pytest.approx(5.431 / 4, abs=1e-3)
    gaas = build_structure("GaAs[110]", extent_angstrom=(25.0, 25.0))
    assert _visible_types(gaas) == ["As2", "Ga2"]


def test_generality_set_is_large_and_every_structure_builds():
    names = list_structures()
    generality = [n for n in names if n not in ("SrTiO3[100]", "WS2")]
    assert len(generality) >= 34
    for name in generality:
        s = build_structure(name, extent_angstrom=(30.0, 30.0), seed=1)
        assert s.name == name
        assert s.visible.sum() >= 10, name
        assert 0.9 < s.column_spacing_angstrom < 3.5, name


def test_defects_change_labels():
    perfect = build_structure("SrTiO3[100]", extent_angstrom=(40.0, 40.0), seed=2)
    vac = build_structure("SrTiO3[100]-Sr-vacancies-8%-columns", extent_angstrom=(40.0, 40.0),
                          seed=2)
    n_sr = np.sum(np.array(perfect.column_types) == "Sr")
    n_sr_vac = np.sum(np.array(vac.column_types) == "Sr")
    assert 0 < n_sr - n_sr_vac < 0.2 * n_sr
    doped = build_structure("SrTiO3[100]-La-dopants-10%", extent_angstrom=(40.0, 40.0), seed=2)
    la = np.array(doped.column_types) == "La"
    assert la.any() and doped.visible[la].all()
    np.testing.assert_allclose(doped.weights[la], 57**1.7)
    s_vac = build_structure("WS2-S-vacancies-15%-1-atom", extent_angstrom=(40.0, 40.0), seed=2)
    single = np.array(s_vac.column_types) == "S"
    assert single.any() and not s_vac.visible[single].any()


def test_thickness_gradient_scales_weights_across_field():
    s = build_structure("SrTiO3[100]-thickness-gradient-x6-0deg", extent_angstrom=(40.0, 20.0))
    sr = np.array(s.column_types) == "Sr"
    x = s.positions_angstrom[sr, 0]
    w = s.weights[sr] / 38**1.7
    np.testing.assert_allclose(w, 1 + 5 * x / 40.0, rtol=1e-9)


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(InputError, match="unknown structure 'Unobtainium'"):
        build_structure("Unobtainium", extent_angstrom=(10.0, 10.0))
    with pytest.raises(InputError, match="extent must be two positive"):
        build_structure("WS2", extent_angstrom=(-1.0, 10.0))
