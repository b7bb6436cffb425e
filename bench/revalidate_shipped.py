"""Score the shipped networks on today's validation sets of the training world.

Usage::

    nice -n 10 .venv/bin/python bench/revalidate_shipped.py [--write]

A training record's ``validation`` block is the set the network's stopping step was selected
on, as it was then. When the training world's labels change (dataset 3.0.0: a column of a
distorted scan is labelled at the centroid of its own image), that set can no longer be
rebuilt; this script rebuilds the set of the same kind, size and count as it is now, scores
the shipped weights on it, prints both, and with ``--write`` stores the result in the
record's ``validation_now`` block (which the shipped-weights tests check). It never touches
the benchmark's images.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from stembench.endpoints.models.atomnet import AtomNet
from stembench.endpoints.models.atomnet import default_weights_path as atomnet_weights
from stembench.endpoints.models.atomsegnet import AtomSegNet
from stembench.endpoints.training.validation import make_validation_set, score_validation

COMMAND = "nice -n 10 .venv/bin/python bench/revalidate_shipped.py --write"


def revalidate(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record of the shipped network ``name`` and its ``validation_now`` block."""
    path = atomnet_weights("cubic").with_name(f"{name}_training.json")
    record = json.loads(path.read_text())
    then = record["validation"]
    validation = make_validation_set(then["kind"], n=int(then["n_images"]),
                                     size=int(then["image_px"]))
    locate = (AtomSegNet(device="cpu").locate_batch if name == "atomsegnet"
              else AtomNet(then["kind"]).locate_batch)
    scores = score_validation(locate, validation)
    now = {"kind": then["kind"], "n_images": then["n_images"], "image_px": then["image_px"],
           "labels": "dataset 3.0.0 rule: a column of a distorted scan at the centroid of "
                     "its own image",
           "manifest_sha256": validation.manifest_sha256,
           "scores": {k: scores[k] for k in ("recall", "precision", "f1", "rms_angstrom")},
           "command": COMMAND}
    return record, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store validation_now")
    args = parser.parse_args()
    for name in ("atomnet-cubic", "atomnet-hexagonal", "atomsegnet"):
        record, now = revalidate(name)
        then = record["validation"]["selected_scores"]
        print(f"{name}: selected on {record['validation']['manifest_sha256'][:8]} "
              + " ".join(f"{k} {then[k]:.3f}" for k in now["scores"]))
        print(f"{name}: now on {now['manifest_sha256'][:8]}      "
              + " ".join(f"{k} {v:.3f}" for k, v in now["scores"].items()))
        if args.write:
            record["validation_now"] = now
            path = atomnet_weights("cubic").with_name(f"{name}_training.json")
            path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
