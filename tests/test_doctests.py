"""The Examples sections of the main entry points run (doctests) and give what they show."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import stembench
from stembench import atomic, validation
from stembench.dataset_publish.build import build_dataset
from stembench.dataset_publish.experimental.microscope import read_microscope_image
from stembench.endpoints.models.registry import load_model
from stembench.scoring import score_image

ENTRY_POINTS = {
    "stembench.load": stembench.load,
    "score_image": score_image,
    "build_dataset": build_dataset,
    "load_model": load_model,
    "read_microscope_image": read_microscope_image,
    "AtomicPath": atomic.AtomicPath,
    "validate_coordinates": validation.validate_coordinates,
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_the_examples_run(name: str) -> None:
    target = ENTRY_POINTS[name]
    tests = doctest.DocTestFinder(recurse=False).find(target, name,
                                                       globs=vars(__import__(target.__module__,
                                                                             fromlist=["_"])))
    examples = [t for t in tests if t.examples]
    assert examples, f"{name} has no Examples section"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in examples:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


SOURCE = Path(stembench.__file__).parent
MODULES_WITH_EXAMPLES = sorted(
    ".".join(("stembench", *path.relative_to(SOURCE).with_suffix("").parts)).removesuffix(
        ".__init__")
    for path in SOURCE.rglob("*.py") if ">>>" in path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("module", MODULES_WITH_EXAMPLES)
def test_every_example_in_the_package_runs(module: str) -> None:
    """Any Examples section anywhere in the package runs (no example left to rot)."""
    imported = importlib.import_module(module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(imported, module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} examples failed"
