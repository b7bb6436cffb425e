"""AtomSegNet training: log, checkpoint, resume, final weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from stembench.endpoints.models.atomsegnet import AtomSegNet  # noqa: E402
from stembench.endpoints.models.base import sha256_file  # noqa: E402
from stembench.endpoints.training.cli import install_weights  # noqa: E402
from stembench.endpoints.training.torch_trainer import (  # noqa: E402
    CHECKPOINT_NAME,
    LOG_NAME,
    train_atomsegnet,
)
from stembench.errors import InputError  # noqa: E402

TINY = {"batch_size": 2, "size": 16, "seed": 5, "checkpoint_every": 2, "progress": False}


def _log_steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_three_steps_write_log_checkpoint_and_weights(tmp_path: Path) -> None:
    result = train_atomsegnet(out_dir=tmp_path, steps=3, **TINY)
    assert result.steps == 3
    assert result.log_path == tmp_path / LOG_NAME
    assert _log_steps(result.log_path) == [1, 2, 3]
    losses = [json.loads(line)["loss"] for line in result.log_path.read_text().splitlines()]
    assert all(loss > 0 for loss in losses)
    checkpoint = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert checkpoint["step"] == 3 and checkpoint["seed"] == 5
    assert result.weights_sha256 == sha256_file(result.weights_path)
    recorded = (tmp_path / "atomsegnet.pt.sha256").read_text().split()[0]
    assert recorded == result.weights_sha256
    model = AtomSegNet(result.weights_path, device="cpu")  # loads with strict=True
    assert model.info.weights_sha256 == result.weights_sha256

    installed = install_weights(result, target_dir=tmp_path / "package", command="stembench x")
    assert sha256_file(installed) == result.weights_sha256
    assert _log_steps(tmp_path / "package" / "atomsegnet_train.log") == [1, 2, 3]
    record = json.loads((tmp_path / "package" / "atomsegnet_training.json").read_text())
    assert record["command"] == "stembench x" and record["sha256"] == result.weights_sha256


@pytest.mark.slow
def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = train_atomsegnet(out_dir=tmp_path / "whole", steps=3, **TINY)
    first = train_atomsegnet(out_dir=tmp_path / "split", steps=2, **TINY)
    assert _log_steps(first.log_path) == [1, 2]
    resumed = train_atomsegnet(out_dir=tmp_path / "split", steps=3, **TINY)
    assert _log_steps(resumed.log_path) == [1, 2, 3]
    a = torch.load(whole.weights_path, weights_only=True)
    b = torch.load(resumed.weights_path, weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_resume_with_another_seed_is_refused(tmp_path: Path) -> None:
    train_atomsegnet(out_dir=tmp_path, steps=1, **TINY)
    with pytest.raises(InputError, match="seed"):
        train_atomsegnet(out_dir=tmp_path, steps=2, **{**TINY, "seed": 6})


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="multiple of 4"):
        train_atomsegnet(out_dir=tmp_path, steps=1, size=30)
    with pytest.raises(InputError, match="steps"):
        train_atomsegnet(out_dir=tmp_path, steps=0)
