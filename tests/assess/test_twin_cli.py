"""``stembench assess IMAGE`` in twin mode, end to end on local worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stembench.client.assess.twin import command
from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, render_twin


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    grid = np.arange(4.0, 127.0, 10.0)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    model = TwinModel((128, 128), 0.2, xy, np.ones(len(xy)), np.full(len(xy), 1.8),
                      np.full((3, 3), 0.1), 0.002, 1e-4, name="square")
    path = tmp_path / "square.npy"
    np.save(path, render_twin(model, TwinVariant("real", "reference", 0, 7)).image)
    return path


def test_twin_mode_ranks_every_model_and_writes_every_number(
        tmp_path: Path, image_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from stembench.client.assess.cli import assess_command

    # the classical built-ins only, so that the workers start fast; --model adds another
    monkeypatch.setattr(command, "default_models", lambda: (
        ["log-blob"], ["atomnet-cubic-published: not fetched; include it with `stembench "
                       "models fetch atomnet-cubic-published`"]))
    monkeypatch.setenv("STEMBENCH_TWIN_DIR", str(tmp_path / "twins"))
    app = typer.Typer()
    app.command()(assess_command)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(image_path), "--pixel-size", "0.2", "--out", str(out),
                                      "--model", "atomap-like", "--workers", "1", "--twins", "2"])
    assert result.exit_code == 0, result.output
    assert "Predicted on this image" in result.output and "Second opinion" in result.output
    assert "Published model not included: atomnet-cubic-published: not fetched" in result.output
    data = json.loads((out / "square_assess.json").read_text())
    twin = data["twin"]
    assert twin["published_not_included"] == [
        "atomnet-cubic-published: not fetched; include it with `stembench models fetch "
        "atomnet-cubic-published`"]
    assert {p["model"] for p in twin["predictions"]} == {"log-blob", "atomap-like"}
    assert twin["recommended"] in {"log-blob", "atomap-like"}
    first = twin["predictions"][0]
    assert first["mean"]["f1"] > 0.95 and first["low"]["f1"] <= first["mean"]["f1"]
    assert {m["axis"] for m in first["margins"]} == {"pixel_size", "resolution", "noise",
                                                     "contrast", "flyback", "drift"}
    assert len(twin["records"]["log-blob"]) == len(twin["plan"]) == 2 + 18
    page = (out / "square_assess.html").read_text()
    assert "Twin assessment" in page and "Second opinion" in page
    assert (out / "square_assess_1.png").is_file()  # the likeness figure comes first


def test_bad_weights_entry_is_one_clear_line(tmp_path: Path, image_path: Path) -> None:
    import typer

    from stembench.client.assess.cli import assess_command
    from stembench.errors import InputError

    app = typer.Typer()
    app.command()(assess_command)
    result = CliRunner().invoke(app, [str(image_path), "--pixel-size", "0.2", "--out",
                                      str(tmp_path / "out"), "--weights", "atomnet-cubic"])
    assert isinstance(result.exception, InputError)
    assert "expected NAME=PATH" in str(result.exception)


def test_weights_entries_are_scored_beside_the_built_in_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--weights atomnet-cubic=FILE`` adds a second atomnet-cubic, with those weights."""
    monkeypatch.setattr(command, "default_models", lambda: (["atomnet-cubic"], []))
    choices, _ = command.model_choices(["pkg.mod:locate"], ["atomnet-cubic=/w/cubic-best.pt"])
    assert [c.label for c in choices] == ["atomnet-cubic", "pkg.mod:locate",
                                          "atomnet-cubic [cubic-best.pt]"]
    assert choices[2].options == {"weights": "/w/cubic-best.pt"}
