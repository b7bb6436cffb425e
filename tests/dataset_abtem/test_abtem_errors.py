"""Errors that say what is wrong: no unit cell, abTEM missing, bad settings."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np
import pytest

from stembench.dataset_publish.simulate.abtem_backend import AbtemHAADF
from stembench.dataset_publish.simulate.probe import ProbeParameters
from stembench.dataset_publish.simulate.structures import ColumnStructure
from stembench.errors import InputError, MissingExtraError

Factory = Callable[..., AbtemHAADF]


def test_structure_without_unit_cell_is_refused(
    srtio3: ColumnStructure, make_backend: Factory
) -> None:
    defect = dataclasses.replace(srtio3, name="SrTiO3-vacancy", unit_cell=None)
    with pytest.raises(InputError, match="'SrTiO3-vacancy' has no periodic unit cell"):
        make_backend(None).intensity(defect, [0.0], [0.0])


def test_missing_abtem_names_the_extra(
    srtio3: ColumnStructure, make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "abtem", None)
    with pytest.raises(MissingExtraError, match=r"stembench\[simulation\]"):
        make_backend(None).intensity(srtio3, [0.0], [0.0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scan_sampling_angstrom": 0.5}, "Nyquist"),
        ({"detector_mrad": (200.0, 70.0)}, "inner < outer"),
        ({"method": "fast"}, "'prism' or 'multislice'"),
        ({"frozen_phonons": -1}, "frozen_phonons"),
        ({"thickness_angstrom": -5.0}, "thickness_angstrom"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        AbtemHAADF(ProbeParameters(), **overrides)  # type: ignore[arg-type]


def test_non_finite_positions_are_refused(srtio3: ColumnStructure, make_backend: Factory) -> None:
    with pytest.raises(InputError, match="finite"):
        make_backend(None).intensity(srtio3, [0.0, np.nan], [0.0, 1.0])
