"""``stembench train MODEL``: train a network on simulated data and optionally ship its weights.

The lead mounts :data:`app` on the ``stembench`` command. ``atomsegnet`` runs the PyTorch
trainer; ``atomnet-cubic`` and ``atomnet-hexagonal`` run the Keras trainer. Training reads no
benchmark file: its data and its validation set come from the training world
(:mod:`stembench.endpoints.training.world`), and the stopping point is chosen on the
validation set (:mod:`stembench.endpoints.training.validation`).
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from stembench._version import __version__
from stembench.endpoints.training import TrainingResult

if TYPE_CHECKING:
    from stembench.endpoints.training.validation import ValidationSet

__all__ = ["KINDS", "MODELS", "app", "install_weights", "train"]

MODELS = ("atomsegnet", "atomnet-cubic", "atomnet-hexagonal")
#: The training-world kind each model trains and is validated on.
KINDS: dict[str, Literal["mixed", "cubic", "hexagonal"]] = {
    "atomsegnet": "mixed", "atomnet-cubic": "cubic", "atomnet-hexagonal": "hexagonal"}

app = typer.Typer(help="Train the segmentation networks on simulated images.")


def _package_weights_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("stembench.endpoints") / "weights"))


def install_weights(
    result: TrainingResult, *, target_dir: Path | None = None, command: str | None = None,
    details: dict[str, Any] | None = None, validation_curve: Path | None = None,
) -> Path:
    """Copy trained weights, their ``.sha256`` and the training log into the weights folder.

    Writes ``<weights>``, ``<weights>.sha256``, ``<model>_train.log`` (the loss per step, JSON
    lines), ``<model>_validation.log`` (the validation curve, when given) and
    ``<model>_training.json`` (the command, steps, final loss, SHA-256 and ``details``).

    Parameters
    ----------
    result : TrainingResult
        A finished training run.
    target_dir : Path, optional
        Destination folder; default the package's ``stembench/endpoints/weights``.
    command : str, optional
        The command line that trained the weights, recorded in ``<model>_training.json``.
    details : dict, optional
        More JSON-ready fields for ``<model>_training.json`` (data, validation, CPU time).
    validation_curve : Path, optional
        The run's validation curve (JSON lines), copied beside the weights.

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
    if validation_curve is not None:
        shutil.copyfile(validation_curve, folder / f"{result.model}_validation.log")
    record: dict[str, Any] = {
        "model": result.model,
        "weights": target.name,
        "sha256": result.weights_sha256,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "command": command,
        "stembench_version": __version__,
        **(details or {}),
    }
    (folder / f"{result.model}_training.json").write_text(json.dumps(record, indent=2) + "\n")
    return target


def _run(
    model: str, *, out: Path, steps: int, seed: int, batch_size: int, size: int, lr: float,
    min_dose: float | None, init_weights: Path | None, validation: ValidationSet | None,
    checkpoint_every: int, patience: int, max_cpu_seconds: float | None,
    deadline: float | None, threads: int,
) -> TrainingResult:
    from stembench.endpoints.training.data import TrainingDataConfig

    data_config = None
    if min_dose is not None:
        upper = TrainingDataConfig().dose_e_per_angstrom2[1]
        data_config = TrainingDataConfig(dose_e_per_angstrom2=(min_dose, upper))
    common: dict[str, Any] = {
        "out_dir": out, "steps": steps, "batch_size": batch_size, "size": size, "seed": seed,
        "lr": lr, "data_config": data_config, "initial_weights": init_weights,
        "validation": validation, "checkpoint_every": checkpoint_every, "patience": patience,
        "max_cpu_seconds": max_cpu_seconds, "deadline": deadline, "threads": threads}
    if model == "atomsegnet":
        from stembench.endpoints.training.torch_trainer import train_atomsegnet

        return train_atomsegnet(progress=False, **common)
    from stembench.endpoints.training.keras_trainer import train_atomnet

    variant: Literal["cubic", "hexagonal"] = (
        "cubic" if model == "atomnet-cubic" else "hexagonal"
    )
    return train_atomnet(variant, **common)


def _details(model: str, validation: ValidationSet | None, out: Path, cpu_seconds: float,
             ) -> dict[str, Any]:
    from stembench.endpoints.training.world import structures_for

    details: dict[str, Any] = {
        "training_world": {
            "structures": list(structures_for(KINDS[model])),
            "generator": "stembench.endpoints.training.world (probes, Z exponents) and "
                         "stembench.endpoints.training.data (conditions)",
        },
        "cpu_seconds": round(cpu_seconds, 1),
        "benchmark_used": "none (training and selection read no benchmark file)",
    }
    if validation is not None:
        curve = _curve(model, out)
        best = max(curve, key=lambda r: (r["f1"], -r["step"])) if curve else None
        details["validation"] = {
            "kind": validation.kind, "n_images": len(validation.samples),
            "image_px": int(validation.samples[0].image.shape[0]),
            "manifest_sha256": validation.manifest_sha256,
            "selected_step": None if best is None else best["step"],
            "selected_scores": best, "criterion": "highest mean F1 (one-to-one, 0.5 A)",
        }
    return details


def _curve(model: str, out: Path) -> list[dict[str, Any]]:
    path = _curve_path(model, out)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _curve_path(model: str, out: Path) -> Path:
    return out / ("validation.jsonl" if model == "atomsegnet" else f"{model}.validation.jsonl")


def _deadline(stop_at: str | None) -> float | None:
    if stop_at is None:
        return None
    try:
        moment = datetime.fromisoformat(stop_at)
    except ValueError as exc:
        raise typer.BadParameter(f"--stop-at {stop_at!r} is not an ISO date-time: {exc}") from exc
    return moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()


@app.command("train")
def train(
    model: Annotated[str, typer.Argument(help=f"One of: {', '.join(MODELS)}.")],
    steps: Annotated[int, typer.Option(help="Most optimiser steps.")] = 600,
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
    validation_images: Annotated[int, typer.Option(
        help="Validation images from the training world (0: no validation).")] = 24,
    validation_size: Annotated[int, typer.Option(help="Side of the validation images, px.")
                               ] = 128,
    checkpoint_every: Annotated[int, typer.Option(
        help="Steps between checkpoints (each one validated).")] = 100,
    patience: Annotated[int, typer.Option(
        help="Validations without a better F1 before stopping.")] = 4,
    max_cpu_minutes: Annotated[float | None, typer.Option(
        help="Stop at the first checkpoint after this much CPU time.")] = None,
    stop_at: Annotated[str | None, typer.Option(
        help="Stop at the first checkpoint after this UTC time (ISO, e.g. "
             "2026-11-30T15:20).")] = None,
    threads: Annotated[int, typer.Option(help="Framework threads.")] = 2,
    install: Annotated[
        bool, typer.Option(help="Copy the final weights, .sha256 and log into the package.")
    ] = False,
) -> None:
    """Train MODEL on the training world (resuming from OUT/checkpoint if present)."""
    if model not in MODELS:
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    from stembench.endpoints.training.validation import make_validation_set

    folder = out or Path(f"train-{model}")
    validation = (make_validation_set(KINDS[model], n=validation_images, size=validation_size)
                  if validation_images > 0 else None)
    result = _run(model, out=folder, steps=steps, seed=seed, batch_size=batch_size, size=size,
                  lr=lr, min_dose=min_dose, init_weights=init_weights, validation=validation,
                  checkpoint_every=checkpoint_every, patience=patience,
                  max_cpu_seconds=None if max_cpu_minutes is None else 60 * max_cpu_minutes,
                  deadline=_deadline(stop_at), threads=threads)
    cpu_seconds = time.process_time()
    typer.echo(f"{result.model}: {result.steps} steps, final loss {result.final_loss:.4f}")
    typer.echo(f"weights {result.weights_path} sha256 {result.weights_sha256}")
    if install:
        extra = [*(["--min-dose", str(min_dose)] if min_dose is not None else []),
                 *(["--init-weights", str(init_weights)] if init_weights else []),
                 *(["--max-cpu-minutes", str(max_cpu_minutes)] if max_cpu_minutes else []),
                 *(["--stop-at", stop_at] if stop_at else [])]
        command = shlex.join([
            "stembench", "train", model, "--steps", str(steps), "--seed", str(seed),
            "--batch-size", str(batch_size), "--size", str(size), "--lr", str(lr),
            "--validation-images", str(validation_images), "--validation-size",
            str(validation_size), "--checkpoint-every", str(checkpoint_every), "--patience",
            str(patience), "--threads", str(threads), *extra, "--out", str(folder),
            "--install"])
        curve = _curve_path(model, folder)
        installed = install_weights(
            result, command=command, details=_details(model, validation, folder, cpu_seconds),
            validation_curve=curve if curve.is_file() else None)
        typer.echo(f"installed {installed}")
