"""Outside the Foundry environment, publishing says which extra it needs instead of failing."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from stembench.dataset_publish.mdf.cli import app
from stembench.errors import MissingExtraError


@pytest.mark.skipif(importlib.util.find_spec("mdf") is not None,
                    reason="mdf-cli is installed: the Foundry environment")
def test_dry_run_names_the_foundry_extra(tiny_dataset):
    result = CliRunner().invoke(app, ["publish", str(tiny_dataset), "--dry-run"])
    assert isinstance(result.exception, MissingExtraError)
    assert "foundry" in str(result.exception) and "mdf" in str(result.exception)
