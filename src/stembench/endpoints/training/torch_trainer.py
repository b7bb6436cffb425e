"""Train AtomSegNet (PyTorch) on freshly simulated images, resumably, with a loss log.

Every step draws a new batch from :func:`stembench.endpoints.training.data.make_training_batch`
with a generator seeded by ``(seed, step)``, so a run resumed from a checkpoint sees exactly the
batches an uninterrupted run would have seen.

Files written to ``out_dir``:

- ``checkpoint.pt``: network and optimiser state and the step, every ``checkpoint_every`` steps
  and at the end; training resumes from it when present.
- ``train_log.jsonl``: one JSON line per step, ``{"step", "loss", "seconds"}``.
- ``atomsegnet.pt`` and ``atomsegnet.pt.sha256``: the final network state dict.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stembench._optional import require
from stembench.atomic import AtomicPath
from stembench.endpoints.models.atomsegnet import (
    DEFAULT_WEIGHTS_NAME,
    build_network,
    load_state_dict_checked,
)
from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.training import TrainingResult
from stembench.endpoints.training.data import TrainingDataConfig, make_training_batch
from stembench.endpoints.training.selection import Selector
from stembench.endpoints.training.validation import ValidationSet, score_validation
from stembench.errors import InputError, ModelError

__all__ = ["CHECKPOINT_NAME", "LOG_NAME", "VALIDATION_NAME", "train_atomsegnet"]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
VALIDATION_NAME = "validation.jsonl"
_SMOOTHING_STEPS = 20
#: Initial bias of the output batch norm: a prior that most pixels are background
#: (sigmoid(-3) = 0.05), so early maps already give the watershed background markers.
_HEAD_BIAS_PRIOR = -3.0


def _loss(torch: Any, prob: Any, target: Any) -> Any:
    """Binary cross-entropy plus soft Dice on sigmoid outputs (both in [0, 1])."""
    bce = torch.nn.functional.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), target)
    dims = (1, 2, 3)
    overlap = (prob * target).sum(dims)
    dice = 1 - (2 * overlap + 1) / (prob.sum(dims) + target.sum(dims) + 1)
    return bce + dice.mean()


def _read_log(path: Path, up_to_step: int) -> list[str]:
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if json.loads(line)["step"] <= up_to_step]


def _save_atomically(torch: Any, obj: Mapping[str, Any], path: Path) -> None:
    with AtomicPath(path) as partial:
        torch.save(dict(obj), partial)


def _resume(torch: Any, path: Path, network: Any, optimizer: Any, seed: int) -> int:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read the training checkpoint {path}: {exc}") from exc
    if int(checkpoint.get("seed", -1)) != seed:
        raise InputError(
            f"checkpoint {path} was written with seed {checkpoint.get('seed')}, not {seed}: "
            "use the same seed or another output folder"
        )
    network.load_state_dict(checkpoint["state_dict"], strict=True)
    optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["step"])


def _load_initial_weights(torch: Any, path: Path, network: Any) -> None:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read the initial AtomSegNet weights {path}: {exc}") from exc
    load_state_dict_checked(network, loaded, source=str(path))


def train_atomsegnet(
    *,
    out_dir: str | Path,
    steps: int,
    batch_size: int = 8,
    size: int = 96,
    seed: int = 0,
    lr: float = 1e-3,
    device: str | None = None,
    checkpoint_every: int = 25,
    data_config: TrainingDataConfig | None = None,
    initial_weights: Path | None = None,
    progress: bool = True,
    validation: ValidationSet | None = None,
    patience: int = 4,
    max_cpu_seconds: float | None = None,
    deadline: float | None = None,
    threads: int = 2,
) -> TrainingResult:
    """Train AtomSegNet from scratch, fine-tune it, or resume, on simulated "mixed" lattices.

    Parameters
    ----------
    out_dir : path
        Folder for the checkpoint, the log and the final weights; created if missing. If it
        holds a checkpoint, training resumes from it.
    steps : int
        Total number of optimiser steps (including those already done before a resume).
    batch_size : int, optional
        Images per step. Default 8.
    size : int, optional
        Side of the square training crops in pixels (a multiple of 4). Default 96.
    seed : int, optional
        Seeds the network initialisation and the training data. Default 0.
    lr : float, optional
        Adam learning rate. Default 1e-3.
    device : str, optional
        Torch device; default CUDA when available, else CPU.
    checkpoint_every : int, optional
        Steps between checkpoints. Default 25.
    data_config : TrainingDataConfig, optional
        Ranges of the simulated conditions; default :class:`TrainingDataConfig` ().
    initial_weights : Path, optional
        A state dict (``.pt``) to fine-tune from instead of a random initialisation (with a
        fresh optimiser); its path and SHA-256 are recorded in the checkpoint. Ignored when
        resuming from a checkpoint.
    progress : bool, optional
        Show a tqdm progress bar. Default True.
    validation : ValidationSet, optional
        Validation images from the training world. If given, the weights of every checkpoint
        are scored on them (``validation.jsonl``), the best (highest mean F1) become the final
        weights, and training stops after ``patience`` checkpoints without improvement.
    patience, max_cpu_seconds, deadline : optional
        Stopping rules of :class:`~stembench.endpoints.training.selection.Selector`: validations
        without a better F1 (default 4), a CPU-time box, a wall-clock deadline (epoch seconds).
    threads : int, optional
        Torch intra-op threads. Default 2.

    Returns
    -------
    TrainingResult
        Paths of the weights, checkpoint and log; the step count and the final smoothed loss.

    Raises
    ------
    InputError
        For non-positive ``steps``, ``batch_size`` or ``checkpoint_every``, a ``size`` that is
        not a positive multiple of 4, a checkpoint written with another seed, or
        ``initial_weights`` that is not a file.
    ModelError
        If ``initial_weights`` cannot be read or does not match the architecture.
    """
    torch = require("torch", extra="torch", purpose="Training AtomSegNet")
    from tqdm import tqdm

    if steps < 1 or batch_size < 1 or checkpoint_every < 1:
        raise InputError(
            "train_atomsegnet: steps, batch_size and checkpoint_every must be >= 1, got "
            f"{steps}, {batch_size}, {checkpoint_every}"
        )
    if size < 4 or size % 4:
        raise InputError(f"train_atomsegnet: size must be a positive multiple of 4, got {size}")
    if initial_weights is not None and not Path(initial_weights).is_file():
        raise InputError(f"train_atomsegnet: initial_weights {initial_weights} is not a file")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = data_config or TrainingDataConfig()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    target_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    network = build_network()
    with torch.no_grad():
        network.bn9.bias.fill_(_HEAD_BIAS_PRIOR)
    checkpoint_path, log_path = out / CHECKPOINT_NAME, out / LOG_NAME
    resuming = checkpoint_path.is_file()
    if initial_weights is not None and not resuming:
        _load_initial_weights(torch, Path(initial_weights), network)
    network = network.to(target_device)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    start = _resume(torch, checkpoint_path, network, optimizer, seed) if resuming else 0
    initial_record = {
        "initial_weights": None if initial_weights is None else str(initial_weights),
        "initial_weights_sha256": (
            None if initial_weights is None else sha256_file(Path(initial_weights))
        ),
    }
    log_lines = _read_log(log_path, start)
    log_path.write_text("".join(line + "\n" for line in log_lines))
    losses = [float(json.loads(line)["loss"]) for line in log_lines]

    def save_checkpoint(step: int) -> None:
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        _save_atomically(
            torch,
            {"state_dict": state, "optimizer": optimizer.state_dict(), "step": step,
             "seed": seed, "size": size, "batch_size": batch_size, "lr": lr,
             **initial_record},
            checkpoint_path,
        )

    selector = Selector(curve_path=out / VALIDATION_NAME, best_path=out / "best.pt",
                        patience=patience, max_cpu_seconds=max_cpu_seconds, deadline=deadline)

    def validate(step: int) -> bool:
        """Score the current weights; True when training should stop."""
        if validation is None:
            return selector.out_of_time()
        from stembench.endpoints.models.atomsegnet import AtomSegNet

        step_path = out / "step.pt"
        _save_atomically(torch, {k: v.detach().cpu() for k, v in network.state_dict().items()},
                         step_path)
        model = AtomSegNet(step_path, device="cpu")
        scores = score_validation(model.locate_batch, validation)
        network.train()
        selector.record(step, scores, step_path)
        return selector.should_stop()

    network.train()
    began = time.perf_counter()
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress,
               desc="atomsegnet", unit="step")
    done = start
    with log_path.open("a") as log:
        for step in bar:
            rng = np.random.default_rng([seed, step])
            images, masks = make_training_batch(
                "mixed", n=batch_size, size=size, rng=rng, mask="gaussian", config=config
            )
            inputs = torch.from_numpy(images[:, None]).to(target_device)
            targets = torch.from_numpy(masks[:, None]).to(target_device)
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(torch, network(inputs), targets)
            loss.backward()
            optimizer.step()
            value = float(loss.detach().cpu())
            losses.append(value)
            log.write(json.dumps({"step": step + 1, "loss": value,
                                  "seconds": round(time.perf_counter() - began, 3)}) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{np.mean(losses[-_SMOOTHING_STEPS:]):.4f}")
            done = step + 1
            if done % checkpoint_every == 0:
                save_checkpoint(done)
                if validate(done):
                    break
    bar.close()
    save_checkpoint(done)
    weights_path = out / DEFAULT_WEIGHTS_NAME
    network.eval()
    if validation is not None and selector.best is not None:
        shutil.copyfile(selector.best_path, weights_path)
    else:
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        _save_atomically(torch, state, weights_path)
    digest = sha256_file(weights_path)
    (out / (DEFAULT_WEIGHTS_NAME + ".sha256")).write_text(f"{digest}  {DEFAULT_WEIGHTS_NAME}\n")
    return TrainingResult(
        model="atomsegnet",
        weights_path=weights_path,
        weights_sha256=digest,
        checkpoint_path=checkpoint_path,
        log_path=log_path,
        steps=done,
        final_loss=float(np.mean(losses[-_SMOOTHING_STEPS:])) if losses else float("nan"),
    )
