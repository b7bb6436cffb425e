"""Training of the AtomNet networks (Keras 3 on TensorFlow) on simulated images.

Each variant trains on the kind of data its original saw: ``"cubic"`` on cubic and
perovskite projections, ``"hexagonal"`` on 2D hexagonal lattices (WS2-like included), from
:func:`stembench.endpoints.training.data.make_training_batch`, whose images never overlap the
benchmark's. Targets are binary disc masks around every column: the original AtomNet was
trained with a pixel-wise cross-entropy on masks of the atom positions and its
post-processing thresholds the sigmoid map at 0.5, which a binary target makes meaningful.

Simulating a cubic training image costs about as much as a training step on a CPU, so a pool
of images is simulated first and every step draws from it under random square symmetries.
The pool and the draws of step ``k`` are seeded by ``seed`` (and ``k``), so a run resumed from
a checkpoint sees the same images it would have seen without the interruption.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from stembench._optional import require
from stembench.atomic import AtomicPath, atomic_write_text
from stembench.endpoints.models.atomnet import LEVELS, build_atomnet, load_atomnet_weights
from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.training import TrainingResult
from stembench.endpoints.training.data import TrainingDataConfig
from stembench.endpoints.training.selection import Selector
from stembench.endpoints.training.validation import ValidationSet, score_validation
from stembench.errors import InputError

__all__ = ["MASK", "train_atomnet"]

#: Target masks used for both variants (see the module docstring).
MASK: Literal["disc"] = "disc"

_FINAL_LOSS_WINDOW = 20
_CHUNK = 8


def _set_threads(tf: Any, threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # TensorFlow was already initialised in this process; its thread pools are fixed.
        pass


def _read_log(log_path: Path, upto_step: int) -> list[dict[str, float]]:
    if not log_path.is_file():
        return []
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= upto_step]


def _write_log(log_path: Path, records: list[dict[str, float]]) -> None:
    log_path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _make_pool(
    variant: Literal["cubic", "hexagonal"],
    *,
    seed: int,
    n: int,
    size: int,
    config: TrainingDataConfig,
) -> tuple[Any, Any]:
    """Simulate ``n`` images and masks in chunks of 8, chunk ``k`` seeded by ``[seed, k]``."""
    from stembench.endpoints.training.data import make_training_batch

    images, masks = [], []
    for chunk in tqdm(
        range(0, n, _CHUNK), desc=f"simulate {variant} training images", unit="chunk"
    ):
        rng = np.random.default_rng([seed, chunk // _CHUNK])
        im, mk = make_training_batch(
            variant, n=min(_CHUNK, n - chunk), size=size, rng=rng, mask=MASK, config=config
        )
        images.append(im)
        masks.append(mk)
    return np.concatenate(images), np.concatenate(masks)


def _batch(pool: tuple[Any, Any], *, seed: int, step: int, n: int) -> tuple[Any, Any]:
    """Draw ``n`` pool images, each under a random one of the 8 square symmetries."""
    rng = np.random.default_rng([seed, step, 1])
    pick = rng.choice(len(pool[0]), size=n, replace=len(pool[0]) < n)
    turns, flips = rng.integers(0, 4, size=n), rng.integers(0, 2, size=n)
    out = []
    for array in pool:
        chosen = [np.rot90(array[i], k) for i, k in zip(pick, turns, strict=True)]
        chosen = [a[:, ::-1] if f else a for a, f in zip(chosen, flips, strict=True)]
        out.append(np.stack(chosen)[..., np.newaxis].astype(np.float32))
    return out[0], out[1]


def _check_options(variant: str, steps: int, batch_size: int, size: int, lr: float) -> None:
    if variant not in LEVELS:
        raise InputError(f"train_atomnet: variant must be 'cubic' or 'hexagonal', got {variant!r}")
    multiple = 2 ** LEVELS[variant]
    if size < 4 * multiple or size % multiple:
        raise InputError(
            f"train_atomnet: size must be a multiple of {multiple} and >= {4 * multiple} for "
            f"the {variant} network, got {size}"
        )
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise InputError(
            f"train_atomnet: steps, batch_size and lr must be positive, got steps={steps}, "
            f"batch_size={batch_size}, lr={lr}"
        )


def train_atomnet(
    variant: Literal["cubic", "hexagonal"],
    *,
    out_dir: Path,
    steps: int,
    batch_size: int = 8,
    size: int = 128,
    seed: int = 0,
    lr: float = 1e-3,
    checkpoint_every: int = 100,
    pool_size: int = 256,
    data_config: TrainingDataConfig | None = None,
    initial_weights: Path | None = None,
    validation: ValidationSet | None = None,
    patience: int = 4,
    max_cpu_seconds: float | None = None,
    deadline: float | None = None,
    threads: int = 2,
) -> TrainingResult:
    """Train an AtomNet network with Adam and binary cross-entropy; resume if a checkpoint exists.

    Parameters
    ----------
    variant : {"cubic", "hexagonal"}
        Which network; it trains on data of the same kind.
    out_dir : Path
        Folder for ``atomnet-<variant>.keras`` (final weights, no optimiser state), its
        ``.sha256``, ``atomnet-<variant>.checkpoint.keras`` (model and optimiser),
        ``atomnet-<variant>.checkpoint.json`` (the step reached, the seed, the data
        configuration and any initial weights with their SHA-256) and ``atomnet-<variant>.log``
        (JSON lines ``{"step", "loss", "seconds"}``).
    steps : int
        Total optimiser steps, including those done before a resume.
    batch_size : int, optional
        Images per step. Default 8.
    size : int, optional
        Side of the square training crops in pixels, a multiple of 2**levels. Default 128.
    seed : int, optional
        Seeds the data and Keras' initialisation and dropout. Default 0.
    lr : float, optional
        Adam learning rate. Default 1e-3.
    checkpoint_every : int, optional
        Steps between checkpoints. Default 100.
    pool_size : int, optional
        Training images simulated before the first step (simulating a cubic image costs
        about as much as a training step); every step draws ``batch_size`` of them under a
        random rotation by a multiple of 90 degrees and a random flip. Default 256.
    data_config : TrainingDataConfig, optional
        Ranges of the simulated conditions (dose, contrast, blur, ...); default
        :class:`~stembench.endpoints.training.data.TrainingDataConfig` ().
    initial_weights : Path, optional
        A ``.keras`` file of the same variant to start from (fine-tuning) instead of a random
        initialisation; ignored when resuming from a checkpoint. The optimiser starts fresh.
    validation : ValidationSet, optional
        Validation images from the training world. If given, the weights of every checkpoint
        are scored on them (``atomnet-<variant>.validation.jsonl``), the best (highest mean
        F1) become the final weights, and training stops after ``patience`` checkpoints
        without improvement.
    patience, max_cpu_seconds, deadline : optional
        When to stop: after ``patience`` (default 4) validations without a better F1, at the
        first checkpoint past a CPU-time box or a wall-clock deadline (epoch seconds); see
        :class:`~stembench.endpoints.training.selection.Selector`.
    threads : int, optional
        TensorFlow intra- and inter-op threads. Default 2.

    Returns
    -------
    TrainingResult
        Paths of the weights, checkpoint and log, the steps done and the final loss (mean of
        the last up to 20 steps).
    """
    _check_options(variant, steps, batch_size, size, lr)
    config = data_config or TrainingDataConfig()
    if initial_weights is not None and not Path(initial_weights).is_file():
        raise InputError(f"train_atomnet: initial_weights {initial_weights} is not a file")
    tf = require("tensorflow", extra="tensorflow", purpose="Training AtomNet")
    _set_threads(tf, threads)
    keras = require("keras", extra="models", purpose="Training AtomNet")
    keras.utils.set_random_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"atomnet-{variant}"
    checkpoint_path = out_dir / f"{name}.checkpoint.keras"
    state_path = out_dir / f"{name}.checkpoint.json"
    log_path = out_dir / f"{name}.log"

    done = 0
    if checkpoint_path.is_file() and state_path.is_file():
        network = keras.saving.load_model(checkpoint_path, compile=True)
        done = int(json.loads(state_path.read_text())["step"])
    else:
        network = build_atomnet(variant)
        if initial_weights is not None:
            network.set_weights(load_atomnet_weights(variant, initial_weights).get_weights())
        network.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr), loss="binary_crossentropy"
        )
    records = _read_log(log_path, done)

    def checkpoint(step: int) -> None:
        with AtomicPath(checkpoint_path, suffix=".keras") as temporary:
            network.save(temporary)
        state = {
            "step": step,
            "seed": seed,
            "variant": variant,
            "data_config": asdict(config),
            "initial_weights": None if initial_weights is None else str(initial_weights),
            "initial_weights_sha256": (
                None if initial_weights is None else sha256_file(Path(initial_weights))
            ),
        }
        atomic_write_text(state_path, json.dumps(state))
        _write_log(log_path, records)

    selector = Selector(curve_path=out_dir / f"{name}.validation.jsonl",
                        best_path=out_dir / f"{name}.best.keras", patience=patience,
                        max_cpu_seconds=max_cpu_seconds, deadline=deadline)

    def validate(step: int) -> bool:
        """Score the current weights; True when training should stop."""
        if validation is None:
            return selector.out_of_time()
        from stembench.endpoints.models.atomnet import AtomNet

        step_path = out_dir / f"{name}.step.keras"
        _bare_copy(network, variant).save(step_path)
        scores = score_validation(AtomNet(variant, step_path).locate_batch, validation)
        selector.record(step, scores, step_path)
        return selector.should_stop()

    pool = _make_pool(variant, seed=seed, n=pool_size, size=size, config=config)
    start = time.perf_counter() - (records[-1]["seconds"] if records else 0.0)
    with tqdm(total=steps, initial=done, desc=f"train {name}", unit="step") as bar:
        for step in range(done + 1, steps + 1):
            images, masks = _batch(pool, seed=seed, step=step, n=batch_size)
            loss = float(network.train_on_batch(images, masks))
            if not np.isfinite(loss):
                raise InputError(f"train_atomnet: loss became {loss} at step {step} ({name})")
            records.append(
                {"step": step, "loss": loss, "seconds": round(time.perf_counter() - start, 3)}
            )
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)
            if step % checkpoint_every == 0 or step == steps:
                checkpoint(step)
                if validate(step):
                    break

    weights_path = out_dir / f"{name}.keras"
    if validation is not None and selector.best is not None:
        shutil.copyfile(selector.best_path, weights_path)
    else:
        _bare_copy(network, variant).save(weights_path)
    digest = sha256_file(weights_path)
    (out_dir / f"{name}.keras.sha256").write_text(f"{digest}  {weights_path.name}\n")
    window = [r["loss"] for r in records[-_FINAL_LOSS_WINDOW:]]
    return TrainingResult(
        model=name,
        weights_path=weights_path,
        weights_sha256=digest,
        checkpoint_path=checkpoint_path,
        log_path=log_path,
        steps=int(records[-1]["step"]) if records else 0,
        final_loss=float(np.mean(window)) if window else float("nan"),
    )


def _bare_copy(network: Any, variant: Literal["cubic", "hexagonal"]) -> Any:
    """A fresh network of ``variant`` holding ``network``'s weights (no optimiser state)."""
    copy = build_atomnet(variant)
    copy.set_weights(network.get_weights())
    return copy
