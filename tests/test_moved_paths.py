"""Old import paths of moved public names still work for one release, with a warning."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(("old", "new", "name"), [
    ("stembench.dataset_publish.cache", "stembench.dataset_publish.loading", "load"),
    ("stembench.dataset_publish.storage.cache", "stembench.dataset_publish.loading", "load"),
    ("stembench.dataset_publish.structures", "stembench.dataset_publish.simulate.catalogue",
     "build_structure"),
    ("stembench.dataset_publish.simulate.structures",
     "stembench.dataset_publish.simulate.catalogue", "list_structures"),
    ("stembench.dataset_publish.simulate.build", "stembench.dataset_publish.build",
     "build_dataset"),
    ("stembench.identity", "stembench.endpoints.models.registry", "model_identity"),
    ("stembench.client.assess.cli", "stembench.dataset_publish.experimental.images",
     "read_any_image"),
    ("stembench.endpoints.shard", "stembench.endpoints.shard_scoring", "score_prediction"),
    ("stembench.endpoints.shard", "stembench.endpoints.shard_scoring", "CONDITION_FIELDS"),
])
def test_a_moved_name_imports_from_its_old_module_with_a_warning(old, new, name):
    with pytest.warns(DeprecationWarning, match=f"moved to {new}"):
        moved = getattr(importlib.import_module(old), name)
    assert moved is getattr(importlib.import_module(new), name)


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        importlib.import_module("stembench.identity").no_such_name  # noqa: B018


def test_a_moved_module_imports_from_its_old_path_with_a_warning():
    import sys

    sys.modules.pop("stembench.client.assess.lattice", None)
    with pytest.warns(DeprecationWarning, match="moved to stembench.imaging.lattice"):
        old = importlib.import_module("stembench.client.assess.lattice")
    assert old is importlib.import_module("stembench.imaging.lattice")


def test_a_renamed_name_imports_under_its_old_name_with_a_warning():
    new = "stembench.dataset_publish.simulate.visibility"
    with pytest.warns(DeprecationWarning, match=f"moved to {new}.MIN_VISIBLE_CONTRAST"):
        old = importlib.import_module("stembench.dataset_publish.visibility").FAINT_FRACTION
    assert old == importlib.import_module(new).MIN_VISIBLE_CONTRAST == 0.075
