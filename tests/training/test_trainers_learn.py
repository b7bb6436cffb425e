"""Each trainer trains: on a fixed small batch the loss falls and the weights change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.training import keras_trainer, torch_trainer
from stembench.endpoints.training.data import TrainingDataConfig, make_training_batch

#: "Clearly below": the loss after training must be under this fraction of the loss before.
_FALL = 0.8


@pytest.mark.slow
def test_atomsegnet_training_lowers_the_loss_and_changes_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from stembench.endpoints.models.atomsegnet import build_network

    fixed = make_training_batch(
        "mixed", n=2, size=16, rng=np.random.default_rng(3), mask="gaussian"
    )

    def same_batch(*_args: Any, **_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        return fixed

    monkeypatch.setattr(torch_trainer, "make_training_batch", same_batch)
    torch.manual_seed(1)
    initial = {k: v.detach().clone() for k, v in build_network().state_dict().items()}
    start = tmp_path / "initial.pt"
    torch.save(initial, start)

    result = torch_trainer.train_atomsegnet(
        out_dir=tmp_path / "run", steps=15, batch_size=2, size=16, seed=5,
        checkpoint_every=100, initial_weights=start, progress=False,
    )

    # Each logged loss is that step's forward pass, before its update: the first one is the
    # loss of the initial weights on the batch, the last one after 14 updates.
    losses = [json.loads(line)["loss"] for line in result.log_path.read_text().splitlines()]
    assert losses[-1] < _FALL * losses[0], losses
    final = torch.load(result.weights_path, weights_only=True)
    moved = [k for k in initial if initial[k].is_floating_point()
             and not torch.equal(initial[k], final[k])]
    floats = [k for k in initial if initial[k].is_floating_point()]
    assert len(moved) > len(floats) // 2, moved


@pytest.mark.slow
def test_atomnet_training_lowers_the_loss_and_changes_the_weights(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from stembench.endpoints.models.atomnet import build_atomnet

    keras.utils.set_random_seed(1)
    start = tmp_path / "initial.keras"
    build_atomnet("hexagonal").save(start)
    # pool_size == batch_size: every step trains on the same two images (under rotations and
    # flips), which are the fixed batch the loss is measured on.
    pool = keras_trainer._make_pool(
        "hexagonal", seed=5, n=2, size=32, config=TrainingDataConfig()
    )
    images, masks = pool[0][..., None], pool[1][..., None]

    result = keras_trainer.train_atomnet(
        "hexagonal", out_dir=tmp_path / "run", steps=40, batch_size=2, size=32, seed=5,
        pool_size=2, checkpoint_every=100, initial_weights=start, lr=3e-3,
    )

    def loss_of(path: Path) -> float:
        network = keras.saving.load_model(path, compile=False)
        prediction = network.predict(images, verbose=0)
        return float(keras.losses.binary_crossentropy(masks, prediction).numpy().mean())

    before, after = loss_of(start), loss_of(result.weights_path)
    assert after < _FALL * before, (before, after)
    initial = keras.saving.load_model(start, compile=False).get_weights()
    final = keras.saving.load_model(result.weights_path, compile=False).get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(initial, final, strict=True)]
    assert sum(changed) > len(changed) // 2, changed
