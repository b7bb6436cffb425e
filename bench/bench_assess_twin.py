"""Validate ``stembench assess``'s twin predictions on labelled images it was not built on.

Simulated lattices outside both the benchmark (its materials and every generality structure)
and the training worlds (:mod:`stembench.endpoints.training.world`), each under three
qualities fixed before any result was seen, rendered by the fast incoherent-HAADF backend with
the generator's probe (:func:`stembench.client.assess.validation.lattice_image`). Each image
is assessed as ``stembench assess`` does (twins at the estimated quality; the series that
degrade each axis only with ``--series``, as ``stembench assess`` renders them; each
prediction's every number is kept in the row's ``details``), every model is also run on the
image itself and scored against its exact labels, and the script prints the table for the
README:

* pairs: the share of (image, model) pairs whose predicted F1 lies within 0.10 of the
  measured F1 (target >= 80 %);
* recommendation: the images whose recommended model (or, where none is reliable, the
  top-ranked one) has a measured F1 within 0.03 of the best model's (target: every image).

Run: ``PYTHONPATH=src python bench/bench_assess_twin.py [--shape 256] [--out FILE.json]``.

``--set heldout`` runs the held-out set of ``bench/twin_heldout.py`` instead (ten other
lattices, three other qualities, another seed; fixed before any result on it was seen); the
default ``--set development`` is the set whose results shaped the method. ``--set heldout2``
runs the second held-out set of ``bench/twin_heldout2.py`` (fixed before the likeness check's
column count was run on it); ``--set complex`` runs
``bench/twin_dev_complex.py``'s development lattices with many columns per cell under the
development qualities; ``--set heldout3`` the third of ``bench/twin_heldout3.py`` (fixed
before the lattice finder's cells with a basis and the misfit-aware column count were final);
``--set heldout4`` the fifth of ``bench/twin_heldout4.py`` (fixed before the fit's bias
correction was final); ``--set heldout5`` held-out set 5 of ``bench/twin_heldout5.py`` (README
numbering; fixed before any method change made after held-out set 4); ``--set heldout6``
held-out set 6 of ``bench/twin_heldout6.py`` (fixed before the near-tie recommendation rule).

``--atom-lattice FILE.hdf5 --pixel-size A`` instead checks one experimental image with labels:
an Atomap ``Atom_Lattice`` file (its image and every sublattice's atom positions), for example
TEMUL's ``Au_NP_Atom_Lattice.hdf5`` (GPL-3.0 data, not shipped; fetch it yourself).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.simulate.structures import Lattice

SQRT2, SQRT3 = math.sqrt(2.0), math.sqrt(3.0)


def _lattice(a: float, b: float, basis: list[tuple[float, float, tuple[str, ...]]],
             group: str) -> Lattice:
    return Lattice((a, 0.0), (0.0, b), np.array([(x * a, y * b) for x, y, _ in basis]),
                   tuple(s for _, _, s in basis), group, None)


def custom_lattices() -> dict[str, Lattice]:
    """Lattices no part of stembench renders otherwise (projected by hand)."""
    a_w = 3.165  # bcc W along [111]: a triangular lattice of a * sqrt(2/3) spacing
    d = a_w * math.sqrt(2.0 / 3.0)
    tio2_a, u = 4.594, 0.305  # rutile TiO2 along [001]
    cscl = 4.123  # CsCl along [110]
    caf2 = 5.463  # fluorite CaF2 along [100]
    nacl = 5.640  # rock salt NaCl along [110]
    return {
        "W[111]": _lattice(d, d * SQRT3, [(0, 0, ("W",) * 3), (0.5, 0.5, ("W",) * 3)], "Im-3m"),
        "TiO2[001]": _lattice(tio2_a, tio2_a, [
            (0, 0, ("Ti", "Ti")), (0.5, 0.5, ("Ti", "Ti")), (u, u, ("O", "O")),
            (1 - u, 1 - u, ("O", "O")), (0.5 + u, 0.5 - u, ("O", "O")),
            (0.5 - u, 0.5 + u, ("O", "O"))], "P42/mnm"),
        "CsCl[110]": _lattice(cscl / SQRT2, cscl, [(0, 0, ("Cs", "Cs")), (0, 0.5, ("Cl", "Cl"))],
                              "Pm-3m"),
        "CaF2[100]": _lattice(caf2, caf2, [
            (0, 0, ("Ca",) * 2), (0.5, 0.5, ("Ca",) * 2), (0, 0.5, ("Ca",) * 2),
            (0.5, 0, ("Ca",) * 2), (0.25, 0.25, ("F",) * 2),
            (0.75, 0.25, ("F",) * 2), (0.25, 0.75, ("F",) * 2), (0.75, 0.75, ("F",) * 2)],
            "Fm-3m"),
        "NaCl[110]": _lattice(nacl / SQRT2, nacl, [
            (0, 0, ("Na", "Na")), (0.5, 0.5, ("Na", "Na")), (0, 0.5, ("Cl", "Cl")),
            (0.5, 0, ("Cl", "Cl"))], "Fm-3m"),
    }


#: stembench's perfect crystals in neither the benchmark (in any form) nor a training world.
CATALOGUE = ("MgAl2O4[100]", "MgAl2O4[110]", "CeO2[110]", "rectangular-2D", "oblique-2D")


def lattices(which: str = "development") -> dict[str, Lattice]:
    """The ten lattices of a set, checked against the exclusion lists. A held-out set is also
    checked, by material name, against the development set and every held-out set before it;
    from the second on also against ``stembench.client.assess.validation``'s lattices, from
    the third on also against the complex development set."""
    from stembench.client.assess.validation import validation_lattice_names
    from stembench.dataset_publish.simulate.generality import GENERALITY_STRUCTURES
    from stembench.dataset_publish.simulate.series import MATERIALS
    from stembench.dataset_publish.simulate.structures import lattice
    from stembench.endpoints.training.world import MIXED_STRUCTURES
    from twin_dev_complex import complex_lattices
    from twin_heldout import heldout_lattices
    from twin_heldout2 import heldout2_lattices
    from twin_heldout3 import heldout3_lattices
    from twin_heldout4 import heldout4_lattices
    from twin_heldout5 import closest_columns, heldout5_lattices
    from twin_heldout6 import heldout6_lattices

    def bases(names: Any) -> set[str]:
        return {name.split("[")[0] for name in names}

    held_out = {"heldout": heldout_lattices, "heldout2": heldout2_lattices,
                "heldout3": heldout3_lattices, "heldout4": heldout4_lattices,
                "heldout5": heldout5_lattices, "heldout6": heldout6_lattices}
    out = {name: lattice(name) for name in CATALOGUE}
    out.update(custom_lattices())
    if which == "complex":
        out = complex_lattices()
        which = "development"
    if which != "development":
        position = list(held_out).index(which)
        earlier = bases(out)
        for previous in list(held_out)[:position]:
            earlier |= bases(held_out[previous]())
        if position >= 1:
            earlier |= bases(validation_lattice_names())
        if position >= 2:
            earlier |= bases(complex_lattices())
        out = held_out[which]()
        assert not earlier & bases(out)
    for name in out:
        base = name.split("[")[0]
        assert name not in MATERIALS and name not in MIXED_STRUCTURES, name
        assert not any(part == name or part.startswith(f"{name}-") or part.split("[")[0] == base
                       for g in GENERALITY_STRUCTURES for part in g.split("|")), name
        assert not any(base == t.split("[")[0] for t in MIXED_STRUCTURES), name
        if which in ("heldout5", "heldout6"):
            assert closest_columns(out[name]) >= 1.8, (name, closest_columns(out[name]))
    return out


def qualities() -> list:
    """Three qualities, fixed before any result was seen."""
    from stembench.client.assess.validation import Condition

    return [Condition("good", 8.0, 5000.0), Condition("moderate", 10.0, 600.0, 0.5),
            Condition("poor", 12.0, 150.0, 0.25)]


def atom_lattice_image(path: Path, pixel_size: float) -> BenchmarkImage:
    """The image and the atom positions of an Atomap ``Atom_Lattice`` HDF5 file."""
    import h5py

    with h5py.File(path, "r") as handle:
        image = np.asarray(handle["image_data0"], np.float32)
        coords = np.vstack([np.asarray(handle[name]["atom_positions"], float)
                            for name in handle if name.startswith("_sublattice")
                            and "atom_positions" in handle[name]])
    return BenchmarkImage(path.stem, image, coords, pixel_size)


def main() -> None:
    from stembench.client.assess.assessment import assess_image
    from stembench.client.assess.twin.run import assess_by_twin
    from stembench.client.assess.twin.score import ModelChoice
    from stembench.client.assess.validation import lattice_image
    from stembench.client.lanes import local_lanes
    from stembench.client.lifeline import stop_executor
    from stembench.client.run import BUILTIN_MODELS
    from stembench.endpoints.models.registry import load_model
    from stembench.errors import StembenchError
    from stembench.scoring import score_image
    from twin_heldout import HELDOUT_SEED, heldout_qualities
    from twin_heldout2 import HELDOUT2_SEED, heldout2_qualities
    from twin_heldout3 import HELDOUT3_SEED, heldout3_qualities
    from twin_heldout4 import HELDOUT4_SEED, heldout4_qualities
    from twin_heldout5 import HELDOUT5_SEED, heldout5_qualities
    from twin_heldout6 import HELDOUT6_SEED, heldout6_qualities

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=256)
    parser.add_argument("--twins", type=int, default=3)
    parser.add_argument("--series", action="store_true",
                        help="also render and score the series (the margins), as `stembench "
                             "assess` does")
    parser.add_argument("--only", default="", help="comma-separated lattice names")
    parser.add_argument("--out", type=Path, default=Path("bench-assess-twin.json"))
    parser.add_argument("--atom-lattice", type=Path, help="check this labelled image instead")
    parser.add_argument("--pixel-size", type=float, help="A/px of --atom-lattice")
    parser.add_argument("--set", choices=("development", "complex", "heldout", "heldout2",
                                            "heldout3", "heldout4", "heldout5",
                                            "heldout6"),
                        default="development",
                        dest="which", help="which validation set")
    args = parser.parse_args()
    choices = [ModelChoice(name) for name in BUILTIN_MODELS]
    loaded = {c.label: load_model(c.spec) for c in choices}
    targets, lanes = local_lanes([c.spec for c in choices], 2)
    rows = []
    chosen = lattices(args.which)
    names = [n for n in chosen if not args.only or n in args.only.split(",")]
    conditions, seed = {"development": (qualities(), 0), "complex": (qualities(), 0),
                        "heldout": (heldout_qualities(), HELDOUT_SEED),
                        "heldout2": (heldout2_qualities(), HELDOUT2_SEED),
                        "heldout3": (heldout3_qualities(), HELDOUT3_SEED),
                        "heldout4": (heldout4_qualities(), HELDOUT4_SEED),
                        "heldout5": (heldout5_qualities(), HELDOUT5_SEED),
                        "heldout6": (heldout6_qualities(), HELDOUT6_SEED)}[args.which]
    if args.atom_lattice is not None:
        cases = [(args.atom_lattice.stem, atom_lattice_image(args.atom_lattice, args.pixel_size))]
    else:
        cases = [(f"{name} {quality.name}", lattice_image(chosen[name], name, quality,
                                                          shape=(args.shape, args.shape),
                                                          seed=seed))
                 for name in names for quality in conditions]
    for title, image in cases:
        start = time.perf_counter()
        row: dict = {"image": title, "predicted": {}, "measured": {}}
        try:
            assessment = assess_image(image.image, pixel_size_angstrom=image.pixel_size,
                                      name=image.image_id)
            result = assess_by_twin(image.image, pixel_size=image.pixel_size,
                                    assessment=assessment, models=choices, targets=targets,
                                    results_dir=Path("/tmp/bench-assess-twin"),
                                    n_twins=args.twins, series=args.series, lanes=lanes)
            row["predicted"] = {p.model: p.mean["f1"] for p in result.predictions}
            row["details"] = {p.model: p.to_dict() for p in result.predictions}
            row["recommended"] = result.recommended or (
                result.predictions[0].model if result.predictions else None)
            row["unexplained"] = result.likeness.unexplained
            row["missing"] = result.likeness.missing
            if not result.predictions:
                row["refused"] = result.verdict  # no likeness: a refusal, counted as misses
            row["limitations"] = result.limitations
        except StembenchError as exc:
            row["error"] = str(exc)  # a refusal is a result: listed, never dropped
        for label, model in loaded.items():
            found = model.locate(image.image, image.pixel_size)
            row["measured"][label] = score_image(
                found, image.coords, pixel_size=image.pixel_size, image_shape=image.shape,
                image_id=image.image_id, faint=image.faint_coords).f1
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps(rows, indent=1))
    for target in targets:
        stop_executor(target.executor)
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    """Print the validation table (markdown) and the two target figures."""
    pairs = close = good_images = 0
    print("\n| image | model: predicted / measured F1 | recommended | best measured |")
    print("|---|---|---|---|")
    for row in rows:
        measured = row["measured"]
        best = max(measured.values())
        cells = []
        for model, value in measured.items():
            predicted = row["predicted"].get(model, math.nan)
            pairs += 1
            close += abs(predicted - value) <= 0.10
            cells.append(f"{model} {predicted:.2f}/{value:.2f}")
        recommended = row.get("recommended")
        ok = recommended is not None and measured[recommended] >= best - 0.03
        good_images += ok
        print(f"| {row['image']} | {'; '.join(cells)} | {recommended} "
              f"({measured.get(recommended, math.nan):.2f}) | {best:.2f} |")
    print(f"\npredicted F1 within 0.10 of measured: {close}/{pairs} pairs "
          f"({close / max(pairs, 1):.0%}); recommended within 0.03 of the best: "
          f"{good_images}/{len(rows)} images")
    errors = np.array([row["predicted"][m] - v for row in rows
                       for m, v in row["measured"].items() if m in row["predicted"]])
    if errors.size:
        print(f"predicted pairs: {errors.size}, mean signed error {errors.mean():+.3f}, mean "
              f"|error| {np.abs(errors).mean():.3f}, {(errors > 0.10).sum()} more than 0.10 too "
              f"high, {(errors < -0.10).sum()} too low")


if __name__ == "__main__":
    main()
