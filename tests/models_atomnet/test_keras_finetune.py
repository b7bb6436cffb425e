"""AtomNet fine-tuning: start from given weights, train on a configured dose range, record both."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.training.data import TrainingDataConfig
from stembench.endpoints.training.keras_trainer import train_atomnet
from stembench.errors import InputError

keras = pytest.importorskip("keras")

OPTIONS: dict[str, Any] = {
    "batch_size": 2,
    "size": 32,
    "seed": 3,
    "pool_size": 2,
    "checkpoint_every": 1,
}


def _weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def test_finetune_starts_from_initial_weights_and_records_config(tmp_path: Path) -> None:
    base = train_atomnet("cubic", out_dir=tmp_path / "base", steps=1, **OPTIONS)
    config = TrainingDataConfig(dose_e_per_angstrom2=(20.0, 1e6), noiseless_probability=0.0)
    tuned = train_atomnet(
        "cubic",
        out_dir=tmp_path / "tuned",
        steps=1,
        lr=1e-9,
        data_config=config,
        initial_weights=base.weights_path,
        **{**OPTIONS, "seed": 4},
    )
    fresh = train_atomnet(
        "cubic", out_dir=tmp_path / "fresh", steps=1, lr=1e-9, **{**OPTIONS, "seed": 4}
    )
    start, after, scratch = (_weights(r.weights_path) for r in (base, tuned, fresh))
    # With a negligible learning rate, one step leaves the initial weights in place, while
    # a random initialisation (another seed) differs from them.
    for a, b in zip(start, after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert any(not np.allclose(a, c) for a, c in zip(start, scratch, strict=True) if a.size > 1)
    state = json.loads((tmp_path / "tuned" / "atomnet-cubic.checkpoint.json").read_text())
    assert state["data_config"]["dose_e_per_angstrom2"] == [20.0, 1e6]
    assert state["data_config"] == json.loads(json.dumps(asdict(config)))
    assert state["initial_weights_sha256"] == sha256_file(base.weights_path)


def test_missing_initial_weights_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="initial_weights"):
        train_atomnet("cubic", out_dir=tmp_path, steps=1, initial_weights=tmp_path / "none.keras")
