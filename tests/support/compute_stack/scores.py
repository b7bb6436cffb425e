"""Comparing what two runs measured: the scores and coordinates of each image."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["differences", "scored_images"]


def differences(remote: Any, local: Any, where: str = "") -> list[str]:
    """Where ``remote`` and ``local`` differ: floats by more than 1e-6, anything else at all.

    The same shard computed in the endpoint's worker and in a local worker gives the same
    coordinates (3 decimals, as stored), counts, recall, precision and F1; float statistics
    (RMS, mean offsets, in pixels or angstrom) differ by up to 3.4e-9 (an O2 RMS of
    0.4650827970477866 against 0.4650828004337237 px, measured on the mini preset): the
    worker processes differ (parsl's worker pool against a local spawn pool, each run to run
    stable), and ulp-level differences in numpy's reductions move the iterative Gaussian
    fits below the stored precision. 1e-6 is 1000 times below that precision.
    """
    if isinstance(remote, float) and isinstance(local, float):
        same = math.isclose(remote, local, rel_tol=0, abs_tol=1e-6) or (
            math.isnan(remote) and math.isnan(local))
        return [] if same else [f"{where}: {remote!r} != {local!r}"]
    if isinstance(remote, dict) and isinstance(local, dict) and remote.keys() == local.keys():
        return [d for key in remote for d in differences(remote[key], local[key],
                                                          f"{where}/{key}")]
    if isinstance(remote, list) and isinstance(local, list) and len(remote) == len(local):
        return [d for i, (a, b) in enumerate(zip(remote, local, strict=True))
                for d in differences(a, b, f"{where}[{i}]")]
    return [] if remote == local else [f"{where}: {remote!r} != {local!r}"]


def scored_images(results: Path) -> dict[str, Any]:
    """Per image: its error, score and coordinates (what a run measures, not how long)."""
    images = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for image in record["images"]:
            images[image["image_id"]] = {"error": image["error"], "score": image["score"],
                                         "coordinates": image["coordinates"]}
    return images
