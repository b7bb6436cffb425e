"""Stopping point chosen on the validation set, under a CPU-time box.

A :class:`Selector` is told the validation scores of the weights saved at each validation
step; it keeps the best (highest mean F1, the earlier step on a tie), writes the validation
curve as JSON lines, and says when to stop: after ``patience`` validations without
improvement, when the process has used ``max_cpu_seconds`` of CPU time, or after a wall-clock
``deadline``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

__all__ = ["Selector"]


class Selector:
    """Track validation scores, keep the best weights file, decide when to stop.

    Parameters
    ----------
    curve_path : Path
        JSON lines ``{"step", "recall", "precision", "f1", "rms_angstrom", "cpu_seconds"}``
        (rewritten on every record, so a resumed run continues it).
    best_path : Path
        Where the best weights so far are copied.
    patience : int
        Validations without a better F1 before stopping.
    max_cpu_seconds : float or None
        CPU time (all threads of this process) after which training stops.
    deadline : float or None
        Wall-clock time (seconds since the epoch) after which training stops.
    """

    def __init__(self, *, curve_path: Path, best_path: Path, patience: int,
                 max_cpu_seconds: float | None, deadline: float | None = None) -> None:
        self.curve_path = Path(curve_path)
        self.best_path = Path(best_path)
        self.patience = patience
        self.max_cpu_seconds = max_cpu_seconds
        self.deadline = deadline
        self.records: list[dict[str, float | None]] = []
        if self.curve_path.is_file():
            self.records = [json.loads(line) for line in self.curve_path.read_text().splitlines()
                            if line.strip()]

    @property
    def best(self) -> dict[str, float | None] | None:
        """The record with the highest F1 (earliest on a tie), or None before any."""
        if not self.records:
            return None
        return max(self.records, key=lambda r: (r["f1"] or 0.0, -(r["step"] or 0)))

    def record(self, step: int, scores: dict[str, float], weights: Path) -> None:
        """Add the scores of the weights saved at ``step``; copy them if they are the best.

        Parameters
        ----------
        step : int
            The training step the weights were saved at.
        scores : dict of str to float
            Their validation scores (``recall``, ``precision``, ``f1``, ``rms_angstrom``).
        weights : pathlib.Path
            The saved weights file.
        """
        entry: dict[str, float | None] = {
            "step": step, **{k: scores[k] if math.isfinite(scores[k]) else None
                             for k in ("recall", "precision", "f1", "rms_angstrom")},
            "cpu_seconds": round(time.process_time(), 1)}
        self.records = [r for r in self.records if (r["step"] or 0) < step] + [entry]
        if self.best is entry:
            shutil.copyfile(weights, self.best_path)
        self.curve_path.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def out_of_time(self) -> bool:
        """Whether the CPU-time box is used up or the deadline has passed."""
        late = self.deadline is not None and time.time() >= self.deadline
        spent = self.max_cpu_seconds is not None and time.process_time() >= self.max_cpu_seconds
        return late or spent

    def should_stop(self) -> bool:
        """Out of time, or ``patience`` validations since the best one."""
        best = self.best
        if best is None:
            return self.out_of_time()
        since = sum(1 for r in self.records if (r["step"] or 0) > (best["step"] or 0))
        return self.out_of_time() or since >= self.patience
