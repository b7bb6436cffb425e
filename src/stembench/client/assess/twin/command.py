"""What ``stembench assess`` does in twin mode: choose the models and targets, then assess."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stembench.client.assess.assessment import Assessment
from stembench.client.assess.twin.run import TwinAssessment, assess_by_twin
from stembench.client.assess.twin.score import ModelChoice
from stembench.client.endpoint_options import RemoteSettings
from stembench.client.run import default_models
from stembench.errors import InputError

__all__ = ["model_choices", "run_twin_mode"]


def model_choices(models: Sequence[str],
                  weights: Sequence[str]) -> tuple[list[ModelChoice], list[str]]:
    """The models ``stembench run`` includes, then each ``--model`` spec and ``--weights``.

    Returns
    -------
    choices : list of ModelChoice
        The built-in models and every published model fetched into the cache (as
        :func:`stembench.client.run.default_models` chooses them), then each ``--model``
        spec, then each ``--weights NAME=PATH``.
    left_out : list of str
        One line per published model not included: why, and how to fetch it where it can be.

    Raises
    ------
    InputError
        For a ``--weights`` entry that is not ``NAME=PATH`` or names a missing file.
    """
    names, left_out = default_models()
    choices = [ModelChoice(name) for name in names]
    seen = {c.label for c in choices}
    for spec in models:
        if spec not in seen:
            choices.append(ModelChoice(spec))
            seen.add(spec)
    for entry in weights:
        name, sep, path = entry.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--weights {entry!r}: expected NAME=PATH, e.g. "
                             "atomnet-cubic=cubic-best_weights.pt")
        choices.append(ModelChoice(name.strip(), {"weights": path.strip()}))
    return choices, left_out


def run_twin_mode(image: NDArray[np.floating], *, pixel_size: float, assessment: Assessment,
                  choices: Sequence[ModelChoice], out: Path, endpoint: str | None,
                  remote: RemoteSettings | None = None, workers: int = 2, n_twins: int = 4,
                  progress: Callable[[str], None] | None = None) -> TwinAssessment:
    """Assess ``image`` by its twin on local workers or on the Globus Compute ``endpoint``.

    The endpoint's target is built as ``stembench evaluate`` builds it
    (:func:`~stembench.client.endpoint_options.endpoint_targets`); locally, ``workers``
    one-worker lanes, each model's shards on one of them
    (:func:`stembench.client.lanes.local_lanes`: every framework imported once). The targets
    are stopped afterwards.

    Parameters
    ----------
    image : numpy.ndarray
        The real image, 2-D.
    pixel_size : float
        Its pixel size, angstrom per pixel.
    assessment : Assessment
        The image's quality estimates (lattice and starting values of the fit).
    choices : sequence of ModelChoice
        The models to score on the twins.
    out : pathlib.Path
        Folder for the twins' dataset and results.
    endpoint : str or None
        Globus Compute endpoint UUID; ``None``: local workers.
    remote : RemoteSettings, optional
        The endpoint options, as ``stembench evaluate`` takes them (its task deadline also
        bounds local tasks); default :class:`RemoteSettings`'s.
    workers : int, optional
        Local one-worker lanes; default 2.
    n_twins : int, optional
        Twins at the estimated quality; default 4.
    progress : callable, optional
        Called with one line per step; default silent.
    """
    from stembench.client.lanes import local_lanes
    from stembench.client.lifeline import stop_executor

    lanes: dict[str, int] | None = None
    remote = remote or RemoteSettings()
    if endpoint:
        from stembench.client.endpoint_options import endpoint_targets

        targets = endpoint_targets([endpoint], remote)
    else:
        for choice in choices:
            weights = choice.options.get("weights")
            if weights and not Path(str(weights)).is_file():
                raise InputError(f"--weights {choice.spec}={weights}: no such file")
        targets, lanes = local_lanes([c.spec for c in choices], workers)
    try:
        return assess_by_twin(image, pixel_size=pixel_size, assessment=assessment,
                              models=choices, targets=targets, results_dir=out / "twin-results",
                              n_twins=n_twins, progress=progress, lanes=lanes,
                              task_deadline_s=remote.task_deadline_s)
    finally:
        for target in targets:
            stop_executor(target.executor)
