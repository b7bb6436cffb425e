"""The twin's likeness (:mod:`stembench.client.assess.twin.likeness`) on the development set.

For each image of ``bench_assess_twin.py``'s development set (never a held-out set): the
unexplained fraction, the missing columns' share and residual of its twin, the twin's columns
and labelled columns, and the image's own labelled and faint columns. This is what
``MAX_UNEXPLAINED`` and ``MAX_MISSING`` were set from.

Run: ``cd bench && PYTHONPATH=../src python twin_likeness.py [--shape 256]``.
"""

from __future__ import annotations

import argparse
import json

from bench_assess_twin import lattices, qualities


def main() -> None:
    from stembench.client.assess.assessment import assess_image
    from stembench.client.assess.twin.fit import fit_twin
    from stembench.client.assess.twin.likeness import likeness
    from stembench.client.assess.validation import lattice_image
    from stembench.errors import StembenchError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=256)
    args = parser.parse_args()
    for name, lat in lattices("development").items():
        for quality in qualities():
            image = lattice_image(lat, name, quality, shape=(args.shape, args.shape), seed=0)
            row = {"image": f"{name} {quality.name}", "labelled": len(image.coords),
                   "faint": len(image.faint_coords)}
            try:
                assessment = assess_image(image.image, pixel_size_angstrom=image.pixel_size,
                                          name=image.image_id)
                fit = fit_twin(image.image, pixel_size=image.pixel_size, assessment=assessment,
                               name=image.image_id)
                like = likeness(fit, image.image)
                row.update(unexplained=round(like.unexplained, 4), chi2=round(like.chi2, 3),
                           missing=round(like.missing, 4), n_missing=len(like.missing_xy),
                           twin_columns=like.n_columns, twin_labelled=like.n_labelled)
            except StembenchError as exc:
                row["error"] = str(exc)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
