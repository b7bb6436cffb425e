"""``stembench train MODEL``: train a network on simulated data and optionally ship its weights.

The lead mounts :data:`app` on the ``stembench`` command. ``atomsegnet`` runs the PyTorch
trainer; ``atomnet-cubic`` and ``atomnet-hexagonal`` run the Keras trainer.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Annotated, Literal

import typer

from stembench._version import __version__
from stembench.endpoints.training import TrainingResult

__all__ = ["MODELS", "app", "install_weights", "train"]

MODELS = ("atomsegnet", "atomnet-cubic", "atomnet-hexagonal")

app = typer.Typer(help="Train the segmentation networks on simulated images.")


def _package_weights_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("stembench.endpoints") / "weights"))


def install_weights(
    result: TrainingResult, *, target_dir: Path | None = None, command: str | None = None
) -> Path:
    """Copy trained weights, their ``.sha256`` and the training log into the weights folder.

    Writes ``<weights>``, ``<weights>.sha256``, ``<model>_train.log`` (the loss per step, JSON
    lines) and ``<model>_training.json`` (the command, steps, final loss and SHA-256).

    Parameters
    ----------
    result : TrainingResult
        A finished training run.
    target_dir : Path, optional
        Destination folder; default the package's ``stembench/endpoints/weights``.
    command : str, optional
        The command line that trained the weights, recorded in ``<model>_training.json``.

    Returns
    -------
    Path
        The installed weights file.
    """
    folder = target_dir or _package_weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / result.weights_path.name
    shutil.copyfile(result.weights_path, target)
    (folder / (target.name + ".sha256")).write_text(f"{result.weights_sha256}  {target.name}\n")
    shutil.copyfile(result.log_path, folder / f"{result.model}_train.log")
    record = {
        "model": result.model,
        "weights": target.name,
        "sha256": result.weights_sha256,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "command": command,
        "stembench_version": __version__,
    }
    (folder / f"{result.model}_training.json").write_text(json.dumps(record, indent=2) + "\n")
    return target


def _run(
    model: str, *, out: Path, steps: int, seed: int, batch_size: int, size: int, lr: float,
    min_dose: float | None, init_weights: Path | None,
) -> TrainingResult:
    from stembench.endpoints.training.data import TrainingDataConfig

    data_config = None
    if min_dose is not None:
        upper = TrainingDataConfig().dose_e_per_angstrom2[1]
        data_config = TrainingDataConfig(dose_e_per_angstrom2=(min_dose, upper))
    if model == "atomsegnet":
        from stembench.endpoints.training.torch_trainer import train_atomsegnet

        return train_atomsegnet(out_dir=out, steps=steps, batch_size=batch_size, size=size,
                                seed=seed, lr=lr, data_config=data_config,
                                initial_weights=init_weights)
    from stembench.endpoints.training.keras_trainer import train_atomnet

    variant: Literal["cubic", "hexagonal"] = (
        "cubic" if model == "atomnet-cubic" else "hexagonal"
    )
    return train_atomnet(variant, out_dir=out, steps=steps, seed=seed, batch_size=batch_size,
                         size=size, lr=lr, data_config=data_config, initial_weights=init_weights)


@app.command("train")
def train(
    model: Annotated[str, typer.Argument(help=f"One of: {', '.join(MODELS)}.")],
    steps: Annotated[int, typer.Option(help="Total optimiser steps.")] = 600,
    out: Annotated[Path | None, typer.Option(help="Output folder (default train-MODEL).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the data.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 8,
    size: Annotated[int, typer.Option(help="Side of the square training crops, px.")] = 96,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    min_dose: Annotated[float | None, typer.Option(
        help="Lowest electron dose of the training images, e-/A^2 (default: the data "
             "generator's).")] = None,
    init_weights: Annotated[Path | None, typer.Option(
        help="Fine-tune from these weights (.keras for AtomNet, a .pt state dict for "
             "AtomSegNet).")] = None,
    install: Annotated[
        bool, typer.Option(help="Copy the final weights, .sha256 and log into the package.")
    ] = False,
) -> None:
    """Train MODEL on simulated images (resuming from OUT/checkpoint if present)."""
    if model not in MODELS:
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    folder = out or Path(f"train-{model}")
    result = _run(model, out=folder, steps=steps, seed=seed, batch_size=batch_size, size=size,
                  lr=lr, min_dose=min_dose, init_weights=init_weights)
    typer.echo(f"{result.model}: {result.steps} steps, final loss {result.final_loss:.4f}")
    typer.echo(f"weights {result.weights_path} sha256 {result.weights_sha256}")
    if install:
        extra = [*(["--min-dose", str(min_dose)] if min_dose is not None else []),
                 *(["--init-weights", str(init_weights)] if init_weights else [])]
        command = shlex.join(["stembench", "train", model, "--steps", str(steps), "--seed",
                              str(seed), "--batch-size", str(batch_size), "--size", str(size),
                              "--lr", str(lr), *extra, "--out", str(folder), "--install"])
        typer.echo(f"installed {install_weights(result, command=command)}")
