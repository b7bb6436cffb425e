"""AtomNet training: loss log, checkpoints, and a resumed run equal to an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stembench.endpoints.training.keras_trainer import train_atomnet
from stembench.errors import InputError

keras = pytest.importorskip("keras")

OPTIONS = {"batch_size": 2, "size": 32, "seed": 5, "pool_size": 4, "checkpoint_every": 2}


def _weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def test_resumed_training_equals_uninterrupted(tmp_path: Path) -> None:
    straight = train_atomnet("cubic", out_dir=tmp_path / "straight", steps=3, **OPTIONS)
    train_atomnet("cubic", out_dir=tmp_path / "resumed", steps=2, **OPTIONS)
    resumed = train_atomnet("cubic", out_dir=tmp_path / "resumed", steps=3, **OPTIONS)
    records = [json.loads(line) for line in resumed.log_path.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["seconds"] >= 0 for r in records)
    assert (
        json.loads((tmp_path / "resumed" / "atomnet-cubic.checkpoint.json").read_text())["step"]
        == 3
    )
    assert resumed.steps == 3
    assert resumed.final_loss == pytest.approx(np.mean([r["loss"] for r in records]))
    for a, b in zip(_weights(straight.weights_path), _weights(resumed.weights_path), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    sidecar = resumed.weights_path.with_name("atomnet-cubic.keras.sha256").read_text()
    assert sidecar.split()[0] == resumed.weights_sha256


def test_bad_options_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="multiple of 8"):
        train_atomnet("hexagonal", out_dir=tmp_path, steps=1, size=36)
    with pytest.raises(InputError, match="variant"):
        train_atomnet("square", out_dir=tmp_path, steps=1)  # type: ignore[arg-type]
