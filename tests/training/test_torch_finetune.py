"""AtomSegNet fine-tuning: training starts from the given state dict and records it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stembench.endpoints.models.atomsegnet import build_network  # noqa: E402
from stembench.endpoints.models.base import sha256_file  # noqa: E402
from stembench.endpoints.training import torch_trainer  # noqa: E402
from stembench.endpoints.training.data import TrainingDataConfig, make_training_batch  # noqa: E402
from stembench.endpoints.training.torch_trainer import (  # noqa: E402
    CHECKPOINT_NAME,
    train_atomsegnet,
)
from stembench.errors import InputError, ModelError  # noqa: E402

TINY: dict[str, Any] = {
    "batch_size": 2, "size": 16, "seed": 5, "checkpoint_every": 2, "progress": False
}


def _record_first_output(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Wrap the trainer's loss so that every network output of a run is kept."""
    outputs: list[Any] = []
    original = torch_trainer._loss

    def recording_loss(torch_module: Any, prob: Any, target: Any) -> Any:
        outputs.append(prob.detach().clone())
        return original(torch_module, prob, target)

    monkeypatch.setattr(torch_trainer, "_loss", recording_loss)
    return outputs


def _first_batch_output(network: Any) -> Any:
    """The training-mode output of ``network`` on the first batch of a TINY run."""
    images, _ = make_training_batch(
        "mixed", n=TINY["batch_size"], size=TINY["size"],
        rng=np.random.default_rng([TINY["seed"], 0]), mask="gaussian",
        config=TrainingDataConfig(),
    )
    network.train()
    with torch.no_grad():
        return network(torch.from_numpy(images[:, None]))


@pytest.mark.slow
def test_fine_tune_starts_from_the_saved_state_dict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(123)
    start_network = build_network()
    initial = tmp_path / "start.pt"
    torch.save(start_network.state_dict(), initial)
    expected = _first_batch_output(start_network)

    outputs = _record_first_output(monkeypatch)
    train_atomsegnet(out_dir=tmp_path / "random", steps=2, device="cpu", **TINY)
    random_first = outputs[0]
    outputs.clear()
    train_atomsegnet(out_dir=tmp_path / "tuned", steps=2, device="cpu",
                     initial_weights=initial, **TINY)
    tuned_first = outputs[0]

    assert len(outputs) == 2
    torch.testing.assert_close(tuned_first, expected, rtol=1e-5, atol=1e-6)
    assert float((random_first - expected).abs().max()) > 1e-3
    checkpoint = torch.load(tmp_path / "tuned" / CHECKPOINT_NAME, weights_only=True)
    assert checkpoint["initial_weights"] == str(initial)
    assert checkpoint["initial_weights_sha256"] == sha256_file(initial)
    random_checkpoint = torch.load(tmp_path / "random" / CHECKPOINT_NAME, weights_only=True)
    assert random_checkpoint["initial_weights"] is None


def test_missing_or_mismatched_initial_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="initial_weights"):
        train_atomsegnet(out_dir=tmp_path / "a", steps=1, initial_weights=tmp_path / "none.pt",
                         **TINY)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ModelError, match="do not match the architecture"):
        train_atomsegnet(out_dir=tmp_path / "b", steps=1, initial_weights=wrong, **TINY)
