"""The networks' throughput on this CPU, against AtomAI's SegPredictor, and reference scores.

Run from the repository root with the project venv::

    .venv/bin/python bench/bench_models.py              # speed table (and the AtomAI ratio)
    .venv/bin/python bench/bench_models.py --figures    # scores + docs/figures/model_atomsegnet_*

The AtomAI row needs the separate benchmark venv ``.venv-bench`` (atomai is a peer, not a
dependency)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0 torchvision==0.28.0 atomai==0.8.1 six

This script calls ``.venv-bench/bin/python bench/bench_models.py --peer IMAGES.npy`` itself; on
a CPU-only torch, atomai needs the torchvision shim applied in :func:`_peer` (the PyPI
torchvision wheel is a CUDA build). AtomAI runs its own ``Unet`` with ``nb_filters`` chosen so
that its parameter count is closest to AtomSegNet's 1.74 M, through ``SegPredictor`` (padding,
network, threshold 0.5, centres of mass): image in, coordinates out, as AtomSegNet here.

Images per second is images / median wall time of >= 5 runs (one image per run), 2 threads.
Ours and AtomAI alternate for ``--rounds`` rounds (default 3) so that a shared machine's load
falls on both alike; the table gives the median and the range over rounds. The script also
counts each network's GFLOP per image (convolutions; a multiply-add is 2) and times AtomNet's
forward pass with XLA (``jit_compile=True``) against without.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
FIGURES = ROOT / "docs" / "figures"
MATERIALS = {"SrTiO3[100]": "sto", "WS2": "ws2"}
#: Parameter counts of our networks; AtomAI's Unet is sized to match each.
PARAMETERS = {"atomsegnet": 1_742_533, "atomnet-cubic": 958_433, "atomnet-hexagonal": 2_367_585}


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _reference(material: str, shape: tuple[int, int] = (256, 256)):  # type: ignore[no-untyped-def]
    from stembench.dataset_publish.simulate.series import reference_image

    return reference_image(material, axis="pixel_size", shape=shape)


def _peer(images_path: str, repeats: int) -> None:
    """Time AtomAI's SegPredictor on the images (runs inside .venv-bench)."""
    import types

    try:
        import torchvision  # noqa: F401
    except Exception:  # CUDA-only torchvision wheel next to a CPU torch: stub what atomai imports
        for name in [k for k in sys.modules if k.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        stub, models, utils = (types.ModuleType(n) for n in
                               ("torchvision", "torchvision.models", "torchvision.utils"))
        stub.models, stub.utils = models, utils  # type: ignore[attr-defined]
        for attr in ("mobilenet_v2", "resnet50", "vgg16"):
            setattr(models, attr, None)
        utils.make_grid = None  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": stub, "torchvision.models": models,
                            "torchvision.utils": utils})
    import torch
    from atomai.nets import Unet
    from atomai.predictors import SegPredictor

    from stembench.endpoints.models.atomsegnet import build_network, default_weights_path

    torch.set_num_threads(2)
    images = np.load(images_path, allow_pickle=True).item()
    answer: dict[str, dict[str, object]] = {}
    for model, target in PARAMETERS.items():
        best = min(range(8, 48), key=lambda f: abs(
            sum(p.numel() for p in Unet(nb_classes=1, nb_filters=f).parameters()) - target))
        net = Unet(nb_classes=1, nb_filters=best).eval()
        predictor = SegPredictor(net, use_gpu=False, logits=True, nb_classes=1, verbose=False)
        answer[model] = {
            "network": f"AtomAI Unet nb_filters={best}",
            "parameters": sum(p.numel() for p in net.parameters()),
            "gflop": {label: _torch_gflop(net, np.shape(im)[0]) for label, im in images.items()},
            "seconds": {label: _median_seconds(lambda im=im, p=predictor: p.run(im), repeats)
                        for label, im in images.items()},
        }
    # the same network as ours: AtomSegNet's own layers and weights inside SegPredictor
    same = build_network()
    same.load_state_dict(torch.load(default_weights_path(), map_location="cpu"))
    same.eval()
    predictor = SegPredictor(same, use_gpu=False, logits=False, nb_classes=1, verbose=False,
                             downsampling=4)
    answer["atomsegnet (same network)"] = {
        "network": "AtomSegNet's network and weights in SegPredictor",
        "parameters": sum(p.numel() for p in same.parameters()),
        "seconds": {label: _median_seconds(lambda im=im: predictor.run(im), repeats)
                    for label, im in images.items()},
    }
    print(json.dumps(answer))


def _atomnet_gflop(variant: str, side: int) -> float:
    """Multiply-adds x 2 of every convolution of an AtomNet at side x side (one image)."""
    import keras

    from stembench.endpoints.models.atomnet import build_atomnet

    fixed = keras.models.clone_model(build_atomnet(variant),  # type: ignore[arg-type]
                                     input_tensors=keras.Input((side, side, 1), batch_size=1))
    return sum(2 * float(np.prod(layer.output.shape[1:3])) * float(np.prod(layer.kernel.shape))
               for layer in fixed.layers if isinstance(layer, keras.layers.Conv2D)) / 1e9


def _torch_gflop(network: object, side: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        network(torch.rand(1, 1, side, side))  # type: ignore[operator]
    return float(counter.get_total_flops()) / 1e9


def _ours(repeats: int, images: dict[str, tuple[np.ndarray, float]]) -> dict[str, dict]:
    """Median seconds per image of each of our networks, image in, coordinates out."""
    import torch

    from stembench.endpoints.models.atomnet import AtomNet
    from stembench.endpoints.models.atomsegnet import AtomSegNet

    torch.set_num_threads(2)
    models = {"atomsegnet": AtomSegNet(device="cpu"), "atomnet-cubic": AtomNet("cubic"),
              "atomnet-hexagonal": AtomNet("hexagonal")}
    return {name: {label: _median_seconds(lambda m=m, im=im, px=px: m.locate(im, px), repeats)
                   for label, (im, px) in images.items()} for name, m in models.items()}


def _xla(repeats: int, sides: list[int]) -> dict[str, dict[str, float]]:
    """AtomNet's forward pass with XLA (``jit_compile=True``) over without: ratio of medians.

    The two alternate, ``3 * repeats`` runs each after a warm-up of both.
    """
    import tensorflow as tf

    from stembench.endpoints.models.atomnet import AtomNet

    ratios: dict[str, dict[str, float]] = {}
    for variant in ("cubic", "hexagonal"):
        model = AtomNet(variant)
        forwards = {"plain": model._forward,
                    "xla": tf.function(lambda b, m=model: m.network(b, training=False),
                                       jit_compile=True)}
        ratios[f"atomnet-{variant}"] = {}
        for side in sides:
            batch = np.random.default_rng(0).random((1, side, side, 1)).astype(np.float32)
            times: dict[str, list[float]] = {"plain": [], "xla": []}
            for index in range(3 * repeats + 1):
                for name, forward in forwards.items():
                    start = time.perf_counter()
                    np.asarray(forward(batch))
                    if index:  # the first of each is the warm-up (and XLA's compilation)
                        times[name].append(time.perf_counter() - start)
            ratios[f"atomnet-{variant}"][f"{side}x{side}"] = (
                statistics.median(times["xla"]) / statistics.median(times["plain"]))
    return ratios


def _run_peer(images: dict[str, tuple[np.ndarray, float]], repeats: int) -> tuple[dict, str]:
    if not PEER_PYTHON.is_file():
        return {}, f"AtomAI not run: {PEER_PYTHON} missing"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        np.save(path, np.array({k: v[0] for k, v in images.items()}, dtype=object))
        done = subprocess.run([str(PEER_PYTHON), __file__, "--peer", str(path),
                               "--repeats", str(repeats)], capture_output=True, text=True)
    if done.returncode != 0:
        return {}, f"AtomAI failed: {done.stderr.strip().splitlines()[-1:]}"
    return (json.loads(done.stdout.strip().splitlines()[-1]),
            "AtomAI SegPredictor.run (pad, network, threshold 0.5, centres of mass)")


def _gflop(sides: list[int]) -> dict[str, dict[str, float]]:
    from stembench.endpoints.models.atomsegnet import build_network

    flops = {f"atomnet-{v}": {f"{s}x{s}": _atomnet_gflop(v, s) for s in sides}
             for v in ("cubic", "hexagonal")}
    flops["atomsegnet"] = {f"{s}x{s}": _torch_gflop(build_network().eval(), s) for s in sides}
    return flops


def _speed(repeats: int, rounds: int) -> dict[str, object]:
    """``rounds`` rounds of (ours, then AtomAI), each a median of ``repeats`` runs."""
    sides = [256, 1024]
    images = {}
    for side in sides:
        ref = _reference("SrTiO3[100]", (side, side))
        images[f"{side}x{side}"] = (ref.image.astype(np.float32), ref.pixel_size)
    ours_rounds, peer_rounds = [], []
    note = ""
    for index in range(rounds):
        print(f"round {index + 1} of {rounds}", file=sys.stderr, flush=True)
        ours_rounds.append(_ours(repeats, images))
        peer, note = _run_peer(images, repeats)
        peer_rounds.append(peer)
    record = {"repeats": repeats, "rounds": rounds, "ours_rounds": ours_rounds,
              "peer_rounds": peer_rounds, "note": note, "gflop": _gflop(sides),
              "xla_over_plain": _xla(repeats, sides)}
    _print(record)
    return record


def _print(record: dict) -> None:
    ours_rounds, peer_rounds = record["ours_rounds"], record["peer_rounds"]
    print(f"images per second, 2 threads, median (range) over {record['rounds']} rounds of a "
          f"median of {record['repeats']} runs (one image per run); {record['note']}")
    rows = [(m, m) for m in ours_rounds[0]] + [("atomsegnet", "atomsegnet (same network)")]
    for ours_name, peer_name in rows:
        for label in ours_rounds[0][ours_name]:
            ours = [1 / r[ours_name][label] for r in ours_rounds]
            theirs = [1 / p[peer_name]["seconds"][label] for p in peer_rounds if peer_name in p]
            ratio = [o / t for o, t in zip(ours, theirs, strict=False)]
            print(f"{peer_name:>26} {label:>10} ours {_spread(ours)} AtomAI "
                  f"{_spread(theirs) if theirs else 'n/a'} ratio "
                  f"{_spread(ratio) if ratio else 'n/a'}")
    print("XLA forward time / plain forward time:", json.dumps(record["xla_over_plain"]))
    print("GFLOP per image:", json.dumps(record["gflop"]))


def _spread(values: list[float]) -> str:
    return (f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
            if values else "n/a")


def _figures() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stembench.endpoints.models.atomsegnet import AtomSegNet
    from stembench.scoring import score_image

    model = AtomSegNet(device="cpu")
    FIGURES.mkdir(parents=True, exist_ok=True)
    for material, tag in MATERIALS.items():
        ref = _reference(material)
        found = model.locate(ref.image, ref.pixel_size)
        score = score_image(found, ref.coords, pixel_size=ref.pixel_size,
                            image_shape=ref.image.shape, image_id=ref.image_id)
        summary = {"material": material, "recall": score.recall, "precision": score.precision,
                   "f1": score.f1, "rms_angstrom": score.rms_angstrom, "tp": score.tp,
                   "fp": score.fp, "fn": score.fn}
        print(json.dumps(summary))
        fig, ax = plt.subplots(figsize=(6.4, 6.8))
        ax.imshow(ref.image, cmap="gray")
        ax.plot(ref.coords[:, 0], ref.coords[:, 1], "o", mfc="none", mec="tab:green", ms=7,
                label="ground truth")
        ax.plot(found[:, 0], found[:, 1], "+", color="tab:red", ms=6, label="AtomSegNet")
        ax.set_title(f"AtomSegNet on the clean {material} reference ({ref.pixel_size} A/px)\n"
                     f"recall {score.recall:.3f}, precision {score.precision:.3f}, "
                     f"RMS {score.rms_angstrom:.3f} A", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(FIGURES / f"model_atomsegnet_{tag}.png", dpi=110)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate ours and AtomAI this many times (median and range)")
    parser.add_argument("--figures", action="store_true", help="score and draw the references")
    parser.add_argument("--peer", metavar="IMAGES_NPY", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="write the speed table here")
    args = parser.parse_args()
    if args.peer:
        _peer(args.peer, args.repeats)
    elif args.figures:
        _figures()
    else:
        record = _speed(args.repeats, args.rounds)
        if args.json is not None:
            args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
