"""Fixtures of the hardening tests: a three-image dataset and the real command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stembench.cli import main
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter, open_dataset


@pytest.fixture(scope="session")
def tiny_dataset_path(mini_dataset_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first three images of the mini preset, as their own dataset file."""
    path = tmp_path_factory.mktemp("tiny-dataset") / "tiny.h5"
    with open_dataset(mini_dataset_path) as mini, DatasetWriter(
            path, name=mini.name, version=mini.version,
            generator_params={"subset_of": "mini", "images": 3}) as writer:
        for image_id in mini.ids[:3]:
            writer.add(mini[image_id])
    return path


@dataclass(frozen=True)
class Answer:
    """What the command line answered: exit status and its two streams."""

    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """Both streams with whitespace and rich's box borders collapsed."""
        joined = (self.stdout + "\n" + self.stderr).replace("│", " ")
        return " ".join(joined.split())


@pytest.fixture
def stembench(monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> Callable[..., Answer]:
    """Run ``stembench ARGS`` through its real entry point, in this process."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Answer:
        monkeypatch.setattr(sys, "argv", ["stembench", *args])
        with pytest.raises(SystemExit) as ended:
            main()
        out = capsys.readouterr()
        code = ended.value.code
        return Answer(code if isinstance(code, int) else 1, out.out, out.err)

    return run
