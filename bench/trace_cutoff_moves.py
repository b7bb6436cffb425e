"""Trace why a network's cutoffs moved between two versions of stembench (issue 24).

Two steps, so that each can run with a different stembench on ``PYTHONPATH`` (an old commit's
``src`` in a ``git worktree``, or today's):

``predict``
    Run one network on every image of the named series of a group and store its positions
    (``OUT.npz``, one array per ``series|step|seed``) and a SHA-256 of every image
    (``OUT.json``), so that two versions' predictions on the same images can be compared.
    ``--remapper-on`` leaves TensorFlow's grappler remapper on (as before 03f6a96);
    ``--file-graph`` runs the network saved in a ``.keras`` file itself instead of today's
    builder with the file's weights.
``score``
    Score stored positions against a dataset file's labels and print the PCHIP cutoffs
    (``compute_cutoffs(bootstrap=0, methods=("pchip",))``). Rules: ``bench`` (today's
    ``shard_scoring.score_prediction``: faint columns don't care), ``visible`` (``score_image``
    against the visible labels only: a prediction on a faint column is a false column, as
    every version before dataset 2.0.0 scored).
``faint``
    Per step, how many stored positions (inside the 6 px border) lie within 0.5 A of a faint
    column of a 2.0.0+ file: what a pre-2.0.0 scoring counted as false columns.
``compare``
    Whether two prediction files agree image by image (optionally only inside ``--inside``
    pixels of the top-left corner, for the 1 px strip the 03f6a96 edge rule added).

Example (the previous cubic AtomNet, d6df027's code and today's)::

    git worktree add --detach /work/wt-old d6df027
    PYTHONPATH=/work/wt-old/src python bench/trace_cutoff_moves.py predict cubic W OLD.h5 \\
        SrTiO3-simulated old.npz
    python bench/trace_cutoff_moves.py score old.npz NEW.h5 SrTiO3-simulated --rules bench visible
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

AXES = ("pixel_size", "contrast", "noise", "resolution", "flyback", "drift")


def _open(path: str) -> Any:
    try:
        from stembench.dataset_publish.storage.stembench_layout import open_dataset
    except ImportError:  # stembench before the storage sub-package (d6df027)
        from stembench.dataset_publish.storage import open_dataset  # type: ignore[no-redef]
    return open_dataset(path, verify=False)


def _keys(dataset: Any, group: str, series: tuple[str, ...]) -> dict[str, str]:
    keys = {}
    for image_id in dataset.ids:
        meta = dataset.metadata(image_id)
        if meta.get("group") == group and meta.get("series") in series:
            keys[f"{meta['series']}|{int(meta['step'])}|{int(meta['seed'])}"] = image_id
    return keys


def _model(variant: str, weights: Path, *, remapper_on: bool, file_graph: bool) -> Any:
    if variant == "atomsegnet":
        from stembench.endpoints.models.registry import load_model

        return load_model("atomsegnet", weights=weights)
    if remapper_on:
        import stembench.endpoints.models.atomnet_network as network

        network._disable_remapper = lambda: None  # type: ignore[attr-defined]
    import stembench.endpoints.models.atomnet as atomnet

    if file_graph:
        def own_graph(_variant: str, path: Path) -> Any:
            return atomnet.load_keras().saving.load_model(path, compile=False)  # type: ignore[attr-defined]

        atomnet.load_atomnet_weights = own_graph  # type: ignore[assignment]
    return atomnet.AtomNet(variant, weights)  # type: ignore[arg-type]


def predict(args: argparse.Namespace) -> None:
    """Run the network on the series and store positions and image hashes."""
    import stembench

    model = _model(args.variant, args.weights, remapper_on=args.remapper_on,
                   file_graph=args.file_graph)
    dataset = _open(args.dataset)
    arrays, index = {}, []
    for key, image_id in _keys(dataset, args.group, tuple(args.series)).items():
        image = dataset[image_id]
        arrays[key] = np.asarray(model.locate(image.image, image.pixel_size), dtype=float)
        digest = hashlib.sha256(np.ascontiguousarray(image.image).tobytes()).hexdigest()
        index.append({"key": key, "image_id": image_id, "image_sha256": digest})
    np.savez(args.out, **arrays)
    args.out.with_suffix(".json").write_text(json.dumps({
        "stembench": stembench.__file__, "weights": str(args.weights),
        "remapper_on": args.remapper_on, "file_graph": args.file_graph,
        "dataset": str(args.dataset), "index": index}))
    print(f"{args.out}: {len(index)} images, {sum(len(a) for a in arrays.values())} positions")


def score(args: argparse.Namespace) -> None:
    """Score stored positions by each rule and print the cutoffs."""
    from stembench.client.analysis import compute_cutoffs
    from stembench.scoring import score_image

    preds = np.load(args.predictions)
    dataset = _open(args.dataset)
    keys = _keys(dataset, args.group, AXES)
    for rule in args.rules:
        records = []
        for key in preds.files:
            image = dataset[keys[key]]
            if rule == "bench":
                from stembench.endpoints.shard_scoring import score_prediction

                result = score_prediction(image, preds[key]).to_dict()
            else:
                result = score_image(preds[key], image.coords, pixel_size=image.pixel_size,
                                     image_shape=image.shape, image_id=image.image_id,
                                     column_types=image.column_types or None).to_dict()
            meta = image.metadata
            records.append({"model": "traced", "model_version": "1", "weights_sha256": "",
                            "group": args.group, "series": meta["series"],
                            "step": int(meta["step"]), "axis_value": float(meta["axis_value"]),
                            "seed": int(meta["seed"]), "image_id": image.image_id,
                            **{k: result[k] for k in ("recall", "precision", "f1",
                                                      "rms_angstrom", "tp", "fp", "fn")}})
        print(f"== {rule} ({len(records)} images, {args.dataset})")
        for cut in compute_cutoffs(records, bootstrap=0, methods=("pchip",), progress=False):
            value = "-" if cut.value is None else f"{cut.value:.2f}"
            criteria = {k: None if v is None else round(v, 2)
                        for k, v in cut.criterion_values.items()}
            print(f"  {cut.axis:11s} {cut.status:16s} {value:8s} {cut.criterion}  {criteria}")


def faint(args: argparse.Namespace) -> None:
    """Per step: positions inside the border, and those within 0.5 A of a faint column."""
    from scipy.spatial import cKDTree

    preds = np.load(args.predictions)
    dataset = _open(args.dataset)
    keys = _keys(dataset, args.group, AXES)
    rows: dict[tuple[str, int], list[Any]] = {}
    for key in preds.files:
        image = dataset[keys[key]]
        meta = image.metadata
        if meta["series"] not in args.series:
            continue
        found, limit = preds[key], image.shape[0] - 6.0
        inner = found[(found.min(axis=1) >= 6.0) & (found.max(axis=1) <= limit)] if len(
            found) else found
        labels = np.asarray(image.faint_coords, dtype=float).reshape(-1, 2)
        near = 0
        if len(labels) and len(inner):
            near = int((cKDTree(labels).query(inner)[0] <= 0.5 / image.pixel_size).sum())
        row = rows.setdefault((meta["series"], int(meta["step"])),
                              [float(meta["axis_value"]), 0, 0, 0, 0])
        row[1:] = [row[1] + 1, row[2] + len(inner), row[3] + near, row[4] + len(labels)]
    for (series, step), (axis, images, inner_n, near, labels_n) in sorted(rows.items()):
        print(f"{series:10s} step {step:2d} ({axis:7.2f}): {inner_n / images:7.1f} positions "
              f"per image, {near / images:6.1f} on one of {labels_n / images:6.1f} faint columns")


def compare(args: argparse.Namespace) -> None:
    """Count the images on which two prediction files agree to 1e-6 px."""
    a, b = np.load(args.a), np.load(args.b)
    equal, beyond = 0, 0
    for key in a.files:
        pa, pb = a[key], b[key]
        if args.inside is not None:
            inner_a = pa[pa.max(axis=1) <= args.inside] if len(pa) else pa
            inner_b = pb[pb.max(axis=1) <= args.inside] if len(pb) else pb
            beyond += (len(pb) - len(inner_b)) - (len(pa) - len(inner_a))
            pa, pb = inner_a, inner_b
        equal += bool(pa.shape == pb.shape and np.allclose(np.sort(pa, axis=0),
                                                           np.sort(pb, axis=0), atol=1e-6))
    total = (sum(len(a[k]) for k in a.files), sum(len(b[k]) for k in b.files))
    print(f"{equal}/{len(a.files)} images equal; positions {total[0]} vs {total[1]}"
          + ("" if args.inside is None else f"; second has {beyond} more beyond {args.inside} px"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict")
    p.add_argument("variant", choices=("cubic", "hexagonal", "atomsegnet"))
    p.add_argument("weights", type=Path)
    p.add_argument("dataset")
    p.add_argument("group")
    p.add_argument("out", type=Path)
    p.add_argument("--series", nargs="+", default=list(AXES))
    p.add_argument("--remapper-on", action="store_true")
    p.add_argument("--file-graph", action="store_true")
    p.set_defaults(run=predict)
    s = sub.add_parser("score")
    s.add_argument("predictions", type=Path)
    s.add_argument("dataset")
    s.add_argument("group")
    s.add_argument("--rules", nargs="+", choices=("bench", "visible"), default=["bench"])
    s.set_defaults(run=score)
    f = sub.add_parser("faint")
    f.add_argument("predictions", type=Path)
    f.add_argument("dataset")
    f.add_argument("group")
    f.add_argument("--series", nargs="+", default=list(AXES))
    f.set_defaults(run=faint)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--inside", type=float, default=None)
    c.set_defaults(run=compare)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
