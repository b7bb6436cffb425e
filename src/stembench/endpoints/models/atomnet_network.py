"""The AtomNet networks in Keras 3, layer by layer as Ziatdinov's 2019 PyTorch release built them.

- ``"cubic"``: ``resatomsegnet_s2``, a residual encoder-decoder with two pooling levels
  (:func:`build_atomnet_cubic`);
- ``"hexagonal"``: ``atomsegnet``, a U-Net with three pooling levels and a dilated stage
  (:func:`build_atomnet_hexagonal`).

The model that runs them on images is :class:`stembench.endpoints.models.atomnet.AtomNet`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from stembench._optional import require
from stembench.errors import InputError

__all__ = ["LEVELS", "Variant", "build_atomnet", "build_atomnet_cubic",
           "build_atomnet_hexagonal", "check_variant", "load_keras"]

Variant = Literal["cubic", "hexagonal"]

#: Number of 2x2 max-pool levels per variant; inputs are padded to a multiple of 2**levels.
LEVELS: dict[str, int] = {"cubic": 2, "hexagonal": 3}

_LEAK = 0.01


def load_keras() -> Any:
    """Keras on the TensorFlow backend (the ``tensorflow`` extra), with TF's remapper off."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = require("keras", extra="models,tensorflow", purpose="The AtomNet models")
    _disable_remapper()
    return keras


def _disable_remapper() -> None:
    """Turn TensorFlow's grappler "remapper" off (for this process).

    In graph mode the remapper fuses Conv2D + BiasAdd + Add + LeakyRelu (the end of every
    residual block of the cubic network) into one oneDNN kernel that ignores the LeakyReLU
    slope and applies TensorFlow's default 0.2 instead of 0.01, so ``tf.function`` outputs
    differed from the network's definition (and from the published PyTorch network), by 4e-4
    on the random weights of the reference test. Without the remapper the graph-mode output
    equals the eager one.
    """
    tf = require("tensorflow", extra="tensorflow", purpose="The AtomNet models")
    tf.config.optimizer.set_experimental_options({"remapping": False})


def check_variant(variant: str) -> None:
    """Refuse an AtomNet variant other than ``"cubic"`` or ``"hexagonal"`` (InputError)."""
    if variant not in LEVELS:
        raise InputError(f"AtomNet variant must be 'cubic' or 'hexagonal', got {variant!r}")


def _conv_block(x: Any, filters: int, name: str, *, dropout: float = 0.0) -> Any:
    """3x3 convolution, optional dropout, LeakyReLU(0.01) (the original ``conv2dblock``)."""
    layers = load_keras().layers
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.LeakyReLU(negative_slope=_LEAK, name=f"{name}_lrelu")(x)


def _residual_block(x: Any, filters: int, name: str) -> Any:
    """1x1 conv; then 3x3 -> LeakyReLU -> 3x3; add the 1x1 output; LeakyReLU."""
    layers = load_keras().layers
    shortcut = layers.Conv2D(filters, 1, name=f"{name}_conv1x1")(x)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv3x3a")(shortcut)
    y = layers.LeakyReLU(negative_slope=_LEAK, name=f"{name}_lrelu_a")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv3x3b")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.LeakyReLU(negative_slope=_LEAK, name=f"{name}_lrelu_b")(y)


def _residual_module(x: Any, filters: int, name: str, *, depth: int = 2) -> Any:
    for index in range(depth):
        x = _residual_block(x, filters, f"{name}_block{index + 1}")
    return x


def _upsample(x: Any, filters: int, name: str) -> Any:
    """Bilinear x2 upsampling followed by a 1x1 convolution."""
    layers = load_keras().layers
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_bilinear")(x)
    return layers.Conv2D(filters, 1, name=f"{name}_conv1x1")(x)


def _head(x: Any) -> Any:
    layers = load_keras().layers
    x = layers.Conv2D(1, 1, name="px_conv1x1")(x)
    return layers.Activation("sigmoid", name="px_sigmoid", dtype="float32")(x)


def build_atomnet_cubic(*, filters: int = 32) -> Any:
    """Build the "cubic" residual AtomNet (published ``resatomsegnet_s2``), 0.96 M parameters.

    Parameters
    ----------
    filters : int, optional
        Filters of the first convolution; the deeper stages use 2x and 4x. Default 32.

    Returns
    -------
    keras.Model
        Input ``(batch, rows, cols, 1)`` with rows and cols multiples of 4, output the
        sigmoid probability map of the same shape.
    """
    keras = load_keras()
    layers = keras.layers
    inputs = keras.Input(shape=(None, None, 1), name="image")
    c1 = _conv_block(inputs, filters, "c1")
    c2 = _residual_module(layers.MaxPooling2D(2, name="pool1")(c1), 2 * filters, "c2")
    bottleneck = _residual_module(layers.MaxPooling2D(2, name="pool2")(c2), 4 * filters, "bn")
    u2 = _upsample(bottleneck, 2 * filters, "up1")
    u2 = layers.Concatenate(name="skip2")([c2, u2])
    u2 = _residual_module(u2, 2 * filters, "c3")
    u1 = _upsample(u2, filters, "up2")
    u1 = layers.Concatenate(name="skip1")([c1, u1])
    u1 = _conv_block(u1, filters, "c4")
    return keras.Model(inputs, _head(u1), name="atomnet_cubic")


def _dilated_bottleneck(x: Any, filters: int, *, rates: Sequence[int], dropout: float) -> Any:
    """Chained dilated 3x3 convolutions, dropout and LeakyReLU; every sub-layer output summed.

    The published ``dilation_block`` runs its ``nn.Sequential`` of (convolution, dropout,
    LeakyReLU) per rate and returns the sum of the outputs of all nine sub-layers, so in
    inference each rate contributes ``2 * conv + LeakyReLU(conv)``.
    """
    layers = load_keras().layers
    outputs = []
    for rate in rates:
        x = layers.Conv2D(
            filters, 3, padding="same", dilation_rate=rate, name=f"bn_dilated{rate}_conv"
        )(x)
        outputs.append(x)
        x = layers.Dropout(dropout, name=f"bn_dilated{rate}_dropout")(x)
        outputs.append(x)
        x = layers.LeakyReLU(negative_slope=_LEAK, name=f"bn_dilated{rate}_lrelu")(x)
        outputs.append(x)
    return layers.Add(name="bn_sum")(outputs)


def build_atomnet_hexagonal(*, filters: int = 32) -> Any:
    """Build the "hexagonal" dilated AtomNet (published ``atomsegnet``), 2.37 M parameters.

    Parameters
    ----------
    filters : int, optional
        Filters of the first convolution; the deeper stages use 2x, 4x and (bottleneck)
        8x. Default 32.

    Returns
    -------
    keras.Model
        Input ``(batch, rows, cols, 1)`` with rows and cols multiples of 8, output the
        sigmoid probability map of the same shape.
    """
    keras = load_keras()
    layers = keras.layers
    inputs = keras.Input(shape=(None, None, 1), name="image")
    c1 = _conv_block(inputs, filters, "c1")
    c2 = _conv_block(layers.MaxPooling2D(2, name="pool1")(c1), 2 * filters, "c2a")
    c2 = _conv_block(c2, 2 * filters, "c2b")
    c3 = _conv_block(layers.MaxPooling2D(2, name="pool2")(c2), 4 * filters, "c3a", dropout=0.3)
    c3 = _conv_block(c3, 4 * filters, "c3b", dropout=0.3)
    bottleneck = _dilated_bottleneck(
        layers.MaxPooling2D(2, name="pool3")(c3), 8 * filters, rates=(2, 4, 6), dropout=0.5
    )
    u3 = layers.Concatenate(name="skip3")([c3, _upsample(bottleneck, 4 * filters, "up1")])
    u3 = _conv_block(u3, 4 * filters, "c4a", dropout=0.3)
    u3 = _conv_block(u3, 4 * filters, "c4b", dropout=0.3)
    u2 = layers.Concatenate(name="skip2")([c2, _upsample(u3, 2 * filters, "up2")])
    u2 = _conv_block(u2, 2 * filters, "c5a")
    u2 = _conv_block(u2, 2 * filters, "c5b")
    u1 = layers.Concatenate(name="skip1")([c1, _upsample(u2, filters, "up3")])
    u1 = _conv_block(u1, filters, "c6")
    return keras.Model(inputs, _head(u1), name="atomnet_hexagonal")


def build_atomnet(variant: Variant) -> Any:
    """Build the untrained network of ``variant`` (``"cubic"`` or ``"hexagonal"``)."""
    check_variant(variant)
    return build_atomnet_cubic() if variant == "cubic" else build_atomnet_hexagonal()
