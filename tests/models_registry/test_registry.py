"""The registry lists built-ins and plug-ins without importing frameworks, and resolves specs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.endpoints.cli import app
from stembench.endpoints.models import registry
from stembench.endpoints.models.classical import AtomapLike, LoGDetector
from stembench.errors import MissingExtraError, ModelError

BUILT_INS = ["atomsegnet", "atomnet-cubic", "atomnet-hexagonal", "atomap-like", "log-blob"]


@pytest.fixture
def toy_entry_point(plugin_dir, monkeypatch):
    """Pretend an installed distribution registers ``toy-net`` in ``stembench.models``."""
    points = [
        importlib.metadata.EntryPoint("toy-net", "toy_plugin:ToyModel", "stembench.models"),
        importlib.metadata.EntryPoint("log-blob", "toy_plugin:ToyModel", "stembench.models"),
        importlib.metadata.EntryPoint("bad-net", "toy_plugin:not_a_model", "stembench.models"),
    ]
    real = importlib.metadata.entry_points

    def fake(**params):
        if params.get("group") == "stembench.models":
            return points
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_built_ins_listed_in_order():
    entries = registry.available_models()
    assert [e.name for e in entries][:5] == BUILT_INS
    by_name = {e.name: e for e in entries}
    assert by_name["atomsegnet"].framework == "pytorch"
    assert by_name["atomnet-cubic"].options == {"variant": "cubic"}
    assert by_name["atomap-like"].extra is None and by_name["atomap-like"].importable


def test_importing_the_registry_imports_no_framework():
    code = (
        "import sys; import stembench.endpoints.models.registry as r; r.available_models(); "
        "import stembench.endpoints.cli; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'onnxruntime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_built_in_classical_models_with_options():
    model = registry.load_model("atomap-like", min_spacing_angstrom=2.5)
    assert isinstance(model, AtomapLike) and model.min_spacing_angstrom == 2.5
    assert isinstance(registry.load_model("log-blob"), LoGDetector)


def test_entry_point_is_listed_and_loads(toy_entry_point):
    entries = {e.name: e for e in registry.available_models()}
    assert "toy-net" in entries
    toy = entries["toy-net"]
    assert (toy.framework, toy.target, toy.importable) == ("plugin", "toy_plugin:ToyModel", True)
    model = registry.load_model("toy-net", factor=3.0)
    np.testing.assert_array_equal(model.locate(np.zeros((4, 4)), 0.1), [[3.0, 6.0], [9.0, 12.0]])
    assert model.info.name == "toy"
    # a plug-in cannot shadow a built-in
    assert isinstance(registry.load_model("log-blob"), LoGDetector)
    with pytest.raises(ModelError, match="model 'bad-net' built a str, not a stembench Model"):
        registry.load_model("bad-net")


def test_unknown_spec_lists_the_names(toy_entry_point):
    with pytest.raises(ModelError) as caught:
        registry.load_model("atomsegnett")
    message = str(caught.value)
    assert message.startswith("unknown model 'atomsegnett'")
    for name in [*BUILT_INS, "toy-net"]:
        assert name in message
    with pytest.raises(ModelError, match=r"unknown suffix '\.h5'"):
        registry._from_file(registry.Path("weights.h5"), {})


def test_missing_framework_names_the_extra(monkeypatch):
    real = registry._installed
    monkeypatch.setattr(registry, "_installed", lambda module: module != "torch" and real(module))
    entry = registry.get_entry("atomsegnet")
    assert not entry.importable and entry.extra == "torch"  # pyproject's extra for torch
    with pytest.raises(MissingExtraError, match=r"pip install 'stembench\[torch\]'") as caught:
        registry.load_model("atomsegnet")
    assert caught.value.extra == "torch" and caught.value.package == "torch"
    listing = CliRunner().invoke(app, ["list"]).output
    line = next(row for row in listing.splitlines() if row.startswith("atomsegnet "))
    assert "pip install 'stembench[torch]'" in line


def test_cli_list_and_show(toy_entry_point, tmp_path, monkeypatch):
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path))  # no published file fetched
    runner = CliRunner()
    listing = runner.invoke(app, ["list"])
    assert listing.exit_code == 0
    rows = listing.output.splitlines()
    assert rows[0].split()[:3] == ["NAME", "FRAMEWORK", "STATUS"]
    published = ["atomnet-cubic-published", "atomnet-graphene-published",
                 "atomsegnet-gaussianmask-published"]
    assert [row.split()[0] for row in rows[1:10]] == [*BUILT_INS, *published, "toy-net"]
    assert [row.split()[2] for row in rows[6:9]] == ["not", "not", "not"]  # all three pinned
    shown = runner.invoke(app, ["show", "atomap-like"])
    assert shown.exit_code == 0
    assert "framework:      classical" in shown.output and "weights_sha256: -" in shown.output
    missing = runner.invoke(app, ["show", "no-such-model"])
    assert missing.exit_code == 2
    assert "unknown model 'no-such-model'" in missing.output
