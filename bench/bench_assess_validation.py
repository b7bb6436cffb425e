"""Rate of wrong "recommended" verdicts of ``stembench assess`` on lattices outside the groups.

Simulates every validation lattice under every condition of
:mod:`stembench.client.assess.validation`, assesses it as ``stembench assess`` does, runs the
given models and prints each verdict with the model's actual recall, precision and RMS, then
the number of "recommended" verdicts and how many were wrong. The test suite runs the
classical models; networks take minutes on CPU:

    python bench/bench_assess_validation.py [--models atomap-like,log-blob,atomsegnet,...]
"""

from __future__ import annotations

import argparse

from stembench.client.assess.recommend import load_cutoffs
from stembench.client.assess.validation import (
    VALIDATION_CONDITIONS,
    check_verdicts,
    validation_image,
    validation_lattice_names,
    wrong_recommendation_rate,
)


def main() -> None:
    """Run the check and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="atomap-like,log-blob")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    images = [validation_image(n, c, seed=s) for n in validation_lattice_names()
              for c in VALIDATION_CONDITIONS for s in range(args.seeds)]
    checks = check_verdicts(images, args.models.split(","), load_cutoffs())
    for c in checks:
        print(f"{c.image_id:36s} {c.model:18s} {c.group:17s} {c.verdict:16s} "
              f"recall {c.recall:.2f} precision {c.precision:.2f} rms {c.rms_angstrom:.3f} A "
              f"{'works' if c.works else 'FAILS'}")
    recommended, wrong, rate = wrong_recommendation_rate(checks)
    print(f"\n{len(images)} images, {len({c.image_id for c in checks})} assessed; "
          f"{recommended} recommended verdicts, {wrong} wrong ({rate:.1%})")


if __name__ == "__main__":
    main()
