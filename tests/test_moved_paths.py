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
])
def test_a_moved_name_imports_from_its_old_module_with_a_warning(old, new, name):
    with pytest.warns(DeprecationWarning, match=f"moved to {new}"):
        moved = getattr(importlib.import_module(old), name)
    assert moved is getattr(importlib.import_module(new), name)


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        importlib.import_module("stembench.identity").no_such_name  # noqa: B018
