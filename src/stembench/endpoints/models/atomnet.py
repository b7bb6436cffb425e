"""AtomNet in Keras 3 on TensorFlow, following Ziatdinov's 2019 PyTorch release.

The networks are those of AICrystallographer's ``AtomNet/dcnn.py`` and ``nnblocks.py``
(M. Ziatdinov, 2019, the code Wei et al. 2023 ran; the method is Ziatdinov et al., ACS Nano 11,
12742 (2017), whose original was in Keras):

- ``"cubic"`` (used on SrTiO3): ``resatomsegnet_s2``, a residual encoder-decoder with two
  pooling levels, about 0.96 M parameters (:func:`build_atomnet_cubic`);
- ``"hexagonal"`` (used on WS2, trained on graphene): ``atomsegnet``, a U-Net with three
  pooling levels and a dilated stage (dilations 2, 4, 6) whose output is the sum of the outputs
  of *every* sub-layer of the stage (each convolution, dropout and LeakyReLU, as the published
  ``dilation_block`` sums its whole ``nn.Sequential``), about 2.37 M parameters
  (:func:`build_atomnet_hexagonal`).

The networks are built in :mod:`stembench.endpoints.models.atomnet_network`. Published
PyTorch state dicts (``.pt``) load by an exact key-by-key conversion
(:mod:`stembench.endpoints.models.atomnet_torch`). Pre-processing as published: zero padding at
the bottom and right to a multiple of 2**levels, then min-max scaling of the padded image to
[0, 1], the output cropped back. Post-processing: threshold 0.5, connected components, centre
of mass, columns within 5 px of the border dropped
(:func:`stembench.endpoints.models.postprocess.coordinates_from_probability`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench._optional import require
from stembench.endpoints.models.atomnet_network import (
    LEVELS,
    Variant,
    build_atomnet,
    build_atomnet_cubic,
    build_atomnet_hexagonal,
    check_variant,
    load_keras,
)
from stembench.endpoints.models.base import Model, ModelInfo, sha256_file
from stembench.endpoints.models.postprocess import coordinates_from_probability
from stembench.errors import InputError, ModelError
from stembench.validation import validate_image

__all__ = [
    "LEVELS",
    "AtomNet",
    "build_atomnet",
    "build_atomnet_cubic",
    "build_atomnet_hexagonal",
    "default_weights_path",
    "load_atomnet_weights",
    "pad_to_multiple",
    "scale_min_max",
]

_VERSION = "1.0"


def default_weights_path(variant: Variant) -> Path:
    """Path of the weights shipped in the package for ``variant`` (a ``.keras`` file)."""
    check_variant(variant)
    ref = resources.files("stembench.endpoints") / "weights" / f"atomnet-{variant}.keras"
    return Path(str(ref))


def _weight_shapes(model: Any) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in w.shape) for w in model.weights]


def _describe_mismatch(got: list[tuple[int, ...]], expected: list[tuple[int, ...]]) -> str:
    if len(got) != len(expected):
        return f"{len(got)} weight arrays in the file, {len(expected)} expected"
    for index, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g != e:
            return f"weight array {index} has shape {g}, expected {e}"
    return "weights differ"


#: Layer settings that change what a layer computes (compared between a file and the builder).
_STRUCTURE_KEYS = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation",
                   "use_bias", "negative_slope", "pool_size", "size", "interpolation", "axis")


def _tensor_sources(node: Any) -> list[str]:
    """Names of the layers whose outputs a serialised inbound node takes, in order."""
    if isinstance(node, dict):
        history = node.get("config", {}).get("keras_history")
        if node.get("class_name") == "__keras_tensor__" and history:
            return [str(history[0])]
        return [name for value in node.values() for name in _tensor_sources(value)]
    if isinstance(node, (list, tuple)):
        return [name for value in node for name in _tensor_sources(value)]
    return []


def _graph(model: Any) -> dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]]:
    """Each layer's class, input layers and computing settings, by layer name."""
    graph = {}
    for layer in model.get_config()["layers"]:
        config = layer["config"]
        graph[layer["name"]] = (
            layer["class_name"],
            tuple(_tensor_sources(layer.get("inbound_nodes", []))),
            tuple((key, repr(config[key])) for key in _STRUCTURE_KEYS if key in config),
        )
    return graph


def _graph_mismatch(model: Any, loaded: Any) -> str | None:
    """How the network saved in a ``.keras`` file computes differently from ``model``, or None.

    Equal weight shapes do not make equal networks: a file saved from an earlier version of a
    network (the hexagonal AtomNet's dilated stage once summed three outputs, now nine) loads
    into today's layers and silently computes another function.
    """
    here, saved = _graph(model), _graph(loaded)
    for name, (kind, inputs, settings) in here.items():
        if name not in saved:
            return f"layer {name} is not in the file"
        file_kind, file_inputs, file_settings = saved[name]
        if file_kind != kind:
            return f"layer {name} is {file_kind} in the file, {kind} here"
        if file_inputs != inputs:
            return (f"layer {name} takes [{', '.join(file_inputs)}] in the file, "
                    f"[{', '.join(inputs)}] here")
        if file_settings != settings:
            return f"layer {name} has {dict(file_settings)} in the file, {dict(settings)} here"
    extra = sorted(set(saved) - set(here))
    return f"layers {', '.join(extra)} are not in this network" if extra else None


def load_atomnet_weights(variant: Variant, path: str | Path) -> Any:
    """Build the ``variant`` network and load ``path`` into it.

    Parameters
    ----------
    variant : {"cubic", "hexagonal"}
        The architecture the file must match.
    path : str or Path
        A ``.keras`` model file (loaded with ``compile=False``, its weights copied into a
        freshly built network), a Keras weights file (``.weights.h5``), or a published
        PyTorch state dict (``.pt``/``.pth``, checked key by key and converted by
        :func:`~stembench.endpoints.models.atomnet_torch.keras_weights_from_state_dict`).

    Returns
    -------
    keras.Model
        The network with the file's weights.

    Raises
    ------
    ModelError
        If the file is missing, unreadable, or does not match the architecture (for a
        ``.keras`` file: weight shapes, and each layer's class, inputs and settings); the
        message names the file, the architecture and the mismatch.
    """
    path = Path(path)
    model = build_atomnet(variant)
    arch = f"AtomNet '{variant}' ({model.count_params()} parameters)"
    if not path.is_file():
        raise ModelError(f"{arch}: weights file {path} does not exist")
    keras = load_keras()
    try:
        if path.name.endswith(".keras"):
            with warnings.catch_warnings():
                # Keras 3.15 warns about Functional's internal containers on every load;
                # every weight is still restored (the tests compare them exactly).
                warnings.filterwarnings("ignore", message="Skipping nested container")
                loaded = keras.saving.load_model(path, compile=False)
            got, expected = _weight_shapes(loaded), _weight_shapes(model)
            if got != expected:
                mismatch = _describe_mismatch(got, expected)
                raise ModelError(f"weights file {path} does not match {arch}: {mismatch}")
            difference = _graph_mismatch(model, loaded)
            if difference is not None:
                raise ModelError(f"weights file {path} was saved from a different network than "
                                 f"{arch}, its weights would compute another function: "
                                 f"{difference}")
            model.set_weights(loaded.get_weights())
        elif path.suffix.lower() in (".pt", ".pth"):
            _load_state_dict(model, variant, path)
        else:
            model.load_weights(path)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"weights file {path} cannot be loaded into {arch}: {exc}") from exc
    return model


def _load_state_dict(model: Any, variant: Variant, path: Path) -> None:
    from stembench.endpoints.models.atomnet_torch import keras_weights_from_state_dict

    torch = require("torch", extra="torch,tensorflow",
                    purpose="Reading a PyTorch AtomNet state dict (run in TensorFlow)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    for name, weights in keras_weights_from_state_dict(state, variant, source=str(path)).items():
        model.get_layer(name).set_weights(weights)


def scale_min_max(image: NDArray[np.floating]) -> NDArray[np.float32]:
    """Scale an image linearly to [0, 1]; a constant image becomes all zeros."""
    array = np.asarray(image, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.float32)
    return ((array - low) / (high - low)).astype(np.float32)


def pad_to_multiple(image: NDArray[np.floating], multiple: int) -> NDArray[np.floating]:
    """Zero-pad an image at the bottom and right so both sides are multiples of ``multiple``."""
    rows, cols = image.shape
    pad_rows, pad_cols = -rows % multiple, -cols % multiple
    return np.pad(image, ((0, pad_rows), (0, pad_cols)), mode="constant")


class AtomNet(Model):
    """AtomNet column finder (Keras 3 on TensorFlow; a GPU is used when TensorFlow sees one).

    Parameters
    ----------
    variant : {"cubic", "hexagonal"}
        Which published network.
    weights : Path or None, optional
        A ``.keras`` or ``.weights.h5`` file; ``None`` loads the weights shipped with stembench.
    batch_size : int, optional
        Images of the same shape run through the network in batches of this size. Default 4.
    threshold : float, optional
        Probability threshold of the post-processing. Default 0.5.
    edge_px : float, optional
        Columns closer than this to the border are dropped, in pixels. Default 5.
    """

    def __init__(
        self,
        variant: Variant,
        weights: Path | None = None,
        *,
        batch_size: int = 4,
        threshold: float = 0.5,
        edge_px: float = 5,
    ) -> None:
        check_variant(variant)
        if batch_size < 1:
            raise InputError(f"AtomNet batch_size must be >= 1, got {batch_size}")
        self.variant: Variant = variant
        self.weights_path = Path(weights) if weights is not None else default_weights_path(variant)
        self._batch_size = batch_size
        self.threshold = threshold
        self.edge_px = edge_px
        self.network = load_atomnet_weights(variant, self.weights_path)
        self._info = ModelInfo(
            name=f"atomnet-{variant}",
            version=_VERSION,
            framework="tensorflow",
            weights_sha256=sha256_file(self.weights_path),
        )
        self._forward = self._compile_forward()

    def _compile_forward(self) -> Any:
        tf = require("tensorflow", extra="tensorflow", purpose="The AtomNet models")
        network = self.network

        # Traced per padded image shape and power-of-two batch size (probability() pads short
        # batches): Keras' bilinear UpSampling2D needs static sizes.
        @tf.function(reduce_retracing=False)
        def forward(batch: Any) -> Any:
            return network(batch, training=False)

        return forward

    @property
    def batch_size(self) -> int:
        """Images of one padded shape that run through the network together."""
        return self._batch_size

    @property
    def info(self) -> ModelInfo:
        """Name (``atomnet-cubic`` or ``atomnet-hexagonal``), version, framework, weights hash."""
        return self._info

    def probability(self, images: Sequence[NDArray[np.floating]]) -> list[NDArray[np.float32]]:
        """Sigmoid probability maps of the images, each the shape of its image.

        As published, images are zero-padded to a multiple of 2**levels and the padded image is
        min-max scaled; images of the same padded shape run together in batches of
        ``batch_size`` (a short batch is filled with blank images up to the next power of two,
        so the network is traced at most log2(batch_size) + 1 times per padded shape).
        """
        multiple = 2 ** LEVELS[self.variant]
        prepared = [
            scale_min_max(pad_to_multiple(_check_image(im, i), multiple))
            for i, im in enumerate(images)
        ]
        maps: list[NDArray[np.float32] | None] = [None] * len(prepared)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, array in enumerate(prepared):
            by_shape.setdefault(array.shape, []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self._batch_size):
                chunk = indices[start : start + self._batch_size]
                # a short batch is zero-filled to the next power of two, so at most
                # log2(batch_size) + 1 traces serve every batch of a shape
                slots = min(self._batch_size, 1 << (len(chunk) - 1).bit_length())
                batch = np.zeros((slots, *prepared[chunk[0]].shape, 1), np.float32)
                for slot, i in enumerate(chunk):
                    batch[slot, ..., 0] = prepared[i]
                output = np.asarray(self._forward(batch))[: len(chunk), ..., 0]
                for i, prob in zip(chunk, output, strict=True):
                    rows, cols = np.shape(images[i])
                    maps[i] = np.ascontiguousarray(prob[:rows, :cols], dtype=np.float32)
        return [m for m in maps if m is not None]

    def _coordinates(self, prob: NDArray[np.float32]) -> NDArray[np.float64]:
        return coordinates_from_probability(prob, threshold=self.threshold, edge_px=self.edge_px)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (x, y) in pixels; ``pixel_size`` (A/px) is not used by AtomNet."""
        return self._coordinates(self.probability([image])[0])

    def locate_batch(
        self, images: Sequence[NDArray[np.floating]], pixel_sizes: Sequence[float]
    ) -> list[NDArray[np.float64]]:
        """Column positions for several images, same-shaped images batched through the network."""
        if len(images) != len(pixel_sizes):
            raise InputError(
                f"AtomNet.locate_batch: {len(images)} images but {len(pixel_sizes)} pixel sizes"
            )
        return [self._coordinates(prob) for prob in self.probability(images)]


def _check_image(image: NDArray[np.floating], index: int) -> NDArray[np.floating]:
    validate_image(image, name=f"AtomNet: image {index}")
    return np.asarray(image)
