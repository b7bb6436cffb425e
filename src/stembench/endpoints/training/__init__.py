"""Training of the segmentation networks on simulated images that never overlap the benchmark.

- :mod:`stembench.endpoints.training.data`: the shared training-data generator.
- :mod:`stembench.endpoints.training.torch_trainer`: AtomSegNet (PyTorch).
- :mod:`stembench.endpoints.training.keras_trainer`: AtomNet (Keras on TensorFlow).
- :mod:`stembench.endpoints.training.cli`: ``stembench train MODEL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TrainingResult"]


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training run produced.

    Attributes
    ----------
    model : str
        Registry name of the trained model, e.g. ``"atomsegnet"``.
    weights_path : Path
        The final weights file (model parameters only).
    weights_sha256 : str
        SHA-256 of ``weights_path``.
    checkpoint_path : Path
        The last checkpoint (weights, optimiser state and step), from which training resumes.
    log_path : Path
        Loss per step, JSON lines ``{"step": int, "loss": float, "seconds": float}``.
    steps : int
        Optimiser steps done in total (including those before a resume).
    final_loss : float
        Mean loss over the last (up to) 20 steps.
    """

    model: str
    weights_path: Path
    weights_sha256: str
    checkpoint_path: Path
    log_path: Path
    steps: int
    final_loss: float
