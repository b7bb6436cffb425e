"""Local worker lanes: each framework's models on one worker, so it is imported once.

A local pool of ``n`` workers gives any shard to any worker, so every worker ends up importing
every framework (TensorFlow and PyTorch take seconds of CPU each, in every worker) and loading
every model. :func:`local_lanes` instead makes ``n`` one-worker pools (lanes) and assigns each
model to one of them (:func:`assign_lanes`): the models of one framework share a lane, and the
models that import no framework are spread one by one over the least-loaded lanes.
:func:`stembench.client.orchestrate.evaluate_models` takes the assignment as ``lanes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stembench.client.scheduler import Target

__all__ = ["FRAMEWORK_WEIGHT", "assign_lanes", "local_lanes", "model_framework"]

#: Frameworks whose import costs seconds per process, by the spec's file suffix too.
_HEAVY_SUFFIXES = {".pt": "pytorch", ".pth": "pytorch", ".h5": "tensorflow",
                   ".keras": "tensorflow", ".onnx": "onnx"}

#: Work counted for importing a heavy framework in a lane, in units of one model's scoring.
#: Measured on this project's 2-core machine (``stembench assess`` twins, 22 images): importing
#: TensorFlow and building an AtomNet cost about 4 CPU-s, PyTorch about 1, scoring one model
#: 1-9 CPU-s; 2 is a rough middle, enough to keep the classical models off the TensorFlow lane.
FRAMEWORK_WEIGHT = 2


def model_framework(spec: str) -> str | None:
    """The framework a model spec imports (``"pytorch"``, ``"tensorflow"``, ``"onnx"``), or
    ``None`` when it imports none of them or cannot be told without loading it."""
    from stembench.endpoints.models.registry import available_models

    for entry in available_models():
        if entry.name == spec:
            return entry.framework if entry.framework in _HEAVY_SUFFIXES.values() else None
    return _HEAVY_SUFFIXES.get(Path(spec.split(":", 1)[0]).suffix.lower())


def assign_lanes(specs: Sequence[str], n_lanes: int) -> dict[str, int]:
    """Model spec -> lane index in ``0 .. n_lanes - 1``.

    The models of one heavy framework form one group, weighing :data:`FRAMEWORK_WEIGHT` plus
    one per model; every other model is a group of its own, weighing one. Groups go, heaviest
    first (ties in the order given), to the lane with the least weight so far (ties: the lowest
    index). Deterministic for the same specs in the same order.
    """
    if n_lanes < 1:
        raise ValueError(f"n_lanes must be >= 1, got {n_lanes}")
    groups: dict[str, list[str]] = {}
    for spec in dict.fromkeys(specs):
        framework = model_framework(spec)
        groups.setdefault(f"framework:{framework}" if framework else f"model:{spec}",
                          []).append(spec)

    def weight(key: str) -> int:
        return len(groups[key]) + (FRAMEWORK_WEIGHT if key.startswith("framework:") else 0)

    load = [0] * n_lanes
    lanes: dict[str, int] = {}
    for key in sorted(groups, key=lambda k: -weight(k)):  # stable: ties keep their order
        lane = min(range(n_lanes), key=lambda i: (load[i], i))
        load[lane] += weight(key)
        lanes.update(dict.fromkeys(groups[key], lane))
    return lanes


def local_lanes(specs: Sequence[str], workers: int) -> tuple[list[Target], dict[str, int]]:
    """``workers`` one-worker local pools and the lane of each model spec.

    Each pool's thread pools get the machine's cores divided among all ``workers`` (as one
    pool of ``workers`` would); a broken pool is rebuilt alike. Stop every pool after use
    (:func:`stembench.client.lifeline.stop_executor`).
    """
    from stembench.client.executors import local_executor

    lanes = assign_lanes(specs, workers)
    used = max(lanes.values(), default=0) + 1  # a lane no model needs is not started
    targets = [Target(f"local-{i}", local_executor(1, share_of=workers),
                      factory=lambda: local_executor(1, share_of=workers), max_in_flight=2)
               for i in range(used)]
    return targets, lanes
