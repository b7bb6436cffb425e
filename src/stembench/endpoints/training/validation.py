"""A validation set drawn from the training world, and how a network scores on it.

Hyper-parameters and the stopping point of a training run are chosen on this set, never on
the benchmark. The set is simulated by the training data generator
(:func:`stembench.endpoints.training.data.make_training_sample`) from the training lattices of
one kind, with its own random stream (seeded by :data:`VALIDATION_SEED` and the kind), so its
images are not training images. Its manifest (structure, seed, pixel size, resolution, number
of labels and the SHA-256 of each image) is hashed; the hash goes into the training record.

A network is scored by locating columns with its own post-processing and matching them one to
one within 0.5 A (:func:`stembench.scoring.score_image`), as the benchmark scores; the
summary is the mean recall, precision, F1 and RMS error over the images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.endpoints.training.data import (
    TrainingDataConfig,
    TrainingSample,
    make_training_sample,
)
from stembench.endpoints.training.world import Kind, structures_for
from stembench.errors import InputError
from stembench.scoring import score_image

__all__ = ["VALIDATION_SEED", "ValidationSet", "make_validation_set", "score_validation"]

#: Root seed of every validation set (training batches are seeded by the run's own seed).
VALIDATION_SEED = 20_231_105

_KIND_INDEX = {"hexagonal": 0, "cubic": 1, "mixed": 2}

#: ``locate(images, pixel_sizes) -> positions`` of one network.
Locate = Callable[[Sequence[NDArray[np.floating]], Sequence[float]], list[NDArray[np.float64]]]


@dataclass(frozen=True)
class ValidationSet:
    """Validation images with their labels and the hash of their manifest.

    Attributes
    ----------
    kind : str
        The training kind the images come from.
    samples : tuple of TrainingSample
        The images, labels and conditions.
    manifest : list of dict
        Per image: structure, seed, pixel size (A/px), resolution (A), number of labels,
        SHA-256 of the float32 image bytes.
    manifest_sha256 : str
        SHA-256 of the manifest as canonical JSON.
    """

    kind: str
    samples: tuple[TrainingSample, ...]
    manifest: list[dict[str, Any]]
    manifest_sha256: str


def make_validation_set(kind: Kind, *, n: int, size: int,
                        config: TrainingDataConfig | None = None) -> ValidationSet:
    """Simulate ``n`` validation images of ``kind``, cycling through its lattices.

    Parameters
    ----------
    kind : {"hexagonal", "cubic", "mixed"}
        Which training lattices.
    n : int
        Number of images (>= 1).
    size : int
        Side of the square images, pixels.
    config : TrainingDataConfig, optional
        Ranges of the conditions (default the generator's).

    Returns
    -------
    ValidationSet
    """
    names = structures_for(kind)
    if n < 1 or size < 8:
        raise InputError(f"validation set needs n >= 1 and size >= 8 px, got n={n}, size={size}")
    samples = []
    for index in range(n):
        rng = np.random.default_rng([VALIDATION_SEED, _KIND_INDEX[kind], index])
        samples.append(make_training_sample(names[index % len(names)], size=size, rng=rng,
                                            config=config))
    manifest = [
        {"structure": s.structure, "seed": s.seed,
         "pixel_size_angstrom": round(s.pixel_size_angstrom, 6),
         "resolution_angstrom": round(s.resolution_angstrom, 6), "n_labels": len(s.labels_xy),
         "image_sha256": hashlib.sha256(np.ascontiguousarray(s.image).tobytes()).hexdigest()}
        for s in samples
    ]
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return ValidationSet(kind, tuple(samples), manifest, digest)


def score_validation(locate: Locate, validation: ValidationSet) -> dict[str, float]:
    """Mean recall, precision, F1 and RMS (A) of ``locate`` on the validation images.

    Images without any visible column inside the scored area are skipped by the scorer's
    own rules (their recall is undefined); a failure to find anything scores 0 recall.
    """
    images = [s.image for s in validation.samples]
    pixels = [s.pixel_size_angstrom for s in validation.samples]
    found = locate(images, pixels)
    scores = [
        score_image(xy, s.labels_xy, pixel_size=s.pixel_size_angstrom,
                    image_shape=s.image.shape, image_id=f"validation:{validation.kind}:{i}")
        for i, (xy, s) in enumerate(zip(found, validation.samples, strict=True))
    ]

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return {
        "recall": mean([s.recall for s in scores]),
        "precision": mean([s.precision for s in scores]),
        "f1": mean([s.f1 for s in scores]),
        "rms_angstrom": mean([s.rms_angstrom for s in scores]),
        "n_images": float(len(scores)),
    }
