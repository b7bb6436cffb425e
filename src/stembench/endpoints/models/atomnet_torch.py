"""Published AtomNet PyTorch state dicts to the Keras networks, key by key.

The 2019 PyTorch release (AICrystallographer ``AtomNet/dcnn.py``, ``nnblocks.py``) saves its
networks as state dicts. Their keys are fixed by the module tree:

- ``conv2dblock``: ``<name>.block.0.{weight,bias}`` (the convolution; dropout and LeakyReLU
  have no parameters);
- ``upsample_block``: ``<name>.conv`` (the 1x1 convolution after bilinear upsampling, used)
  and ``<name>.conv_t`` (a transposed convolution built but not used in ``"interpolate"`` mode);
- ``dilation_block``: ``bn.atrous_module.{0,3,6}`` (the convolutions; dropout and LeakyReLU
  sit at the indices in between);
- ``ResBlock``: ``c0`` (1x1), ``c1``, ``c2`` (3x3) and the batch norms ``bn1``, ``bn2``, built
  but not used (``use_batchnorm=False``).

:func:`keras_weights_from_state_dict` checks that a state dict holds exactly the published
keys with the published shapes (the unused tensors included, so a file of another network is
refused) and returns, for every Keras layer, its ``[kernel, bias]`` with the kernel moved from
PyTorch's ``(out, in, kh, kw)`` to Keras' ``(kh, kw, in, out)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from stembench.errors import ModelError

__all__ = ["keras_weights_from_state_dict", "layer_map", "published_shapes"]

_SHOWN = 5
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _conv(shapes: dict[str, tuple[int, ...]], key: str, cin: int, cout: int, k: int) -> None:
    shapes[f"{key}.weight"] = (cout, cin, k, k)
    shapes[f"{key}.bias"] = (cout,)


def _upsample(shapes: dict[str, tuple[int, ...]], key: str, cin: int, cout: int) -> None:
    _conv(shapes, f"{key}.conv", cin, cout, 1)
    shapes[f"{key}.conv_t.weight"] = (cin, cout, 2, 2)
    shapes[f"{key}.conv_t.bias"] = (cout,)


def _res_module(shapes: dict[str, tuple[int, ...]], links: dict[str, str], key: str,
                keras_name: str, cin: int, cout: int) -> None:
    for index in range(2):
        block = f"{key}.res_module.{index}"
        name = f"{keras_name}_block{index + 1}"
        _conv(shapes, f"{block}.c0", cin if index == 0 else cout, cout, 1)
        _conv(shapes, f"{block}.c1", cout, cout, 3)
        _conv(shapes, f"{block}.c2", cout, cout, 3)
        links.update({f"{name}_conv1x1": f"{block}.c0", f"{name}_conv3x3a": f"{block}.c1",
                      f"{name}_conv3x3b": f"{block}.c2"})
        for norm in ("bn1", "bn2"):
            for field in _BN_KEYS:
                shapes[f"{block}.{norm}.{field}"] = () if field == _BN_KEYS[-1] else (cout,)


def _cubic(f: int) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    shapes: dict[str, tuple[int, ...]] = {}
    links = {"c1_conv": "c1.block.0", "up1_conv1x1": "upsample_block1.conv",
             "up2_conv1x1": "upsample_block2.conv", "c4_conv": "c4.block.0", "px_conv1x1": "px"}
    _conv(shapes, "c1.block.0", 1, f, 3)
    _res_module(shapes, links, "c2", "c2", f, 2 * f)
    _res_module(shapes, links, "bn", "bn", 2 * f, 4 * f)
    _upsample(shapes, "upsample_block1", 4 * f, 2 * f)
    _res_module(shapes, links, "c3", "c3", 4 * f, 2 * f)
    _upsample(shapes, "upsample_block2", 2 * f, f)
    _conv(shapes, "c4.block.0", 2 * f, f, 3)
    _conv(shapes, "px", f, 1, 1)
    return shapes, links


def _hexagonal(f: int) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    shapes: dict[str, tuple[int, ...]] = {}
    links: dict[str, str] = {}
    blocks = [("c1", "c1.block.0", 1, f), ("c2a", "c2.0.block.0", f, 2 * f),
              ("c2b", "c2.1.block.0", 2 * f, 2 * f), ("c3a", "c3.0.block.0", 2 * f, 4 * f),
              ("c3b", "c3.1.block.0", 4 * f, 4 * f), ("c4a", "c4.0.block.0", 8 * f, 4 * f),
              ("c4b", "c4.1.block.0", 4 * f, 4 * f), ("c5a", "c5.0.block.0", 4 * f, 2 * f),
              ("c5b", "c5.1.block.0", 2 * f, 2 * f), ("c6", "c6.block.0", 2 * f, f)]
    for keras_name, key, cin, cout in blocks:
        _conv(shapes, key, cin, cout, 3)
        links[f"{keras_name}_conv"] = key
    for index, rate in enumerate((2, 4, 6)):
        key = f"bn.atrous_module.{3 * index}"
        _conv(shapes, key, 4 * f if index == 0 else 8 * f, 8 * f, 3)
        links[f"bn_dilated{rate}_conv"] = key
    for level, (cin, cout) in enumerate(((8 * f, 4 * f), (4 * f, 2 * f), (2 * f, f)), start=1):
        _upsample(shapes, f"upsample_block{level}", cin, cout)
        links[f"up{level}_conv1x1"] = f"upsample_block{level}.conv"
    _conv(shapes, "px", f, 1, 1)
    links["px_conv1x1"] = "px"
    return shapes, links


def published_shapes(variant: Literal["cubic", "hexagonal"], *,
                     filters: int = 32) -> dict[str, tuple[int, ...]]:
    """Every key of the published state dict of ``variant`` with its tensor shape."""
    return (_cubic if variant == "cubic" else _hexagonal)(filters)[0]


def layer_map(variant: Literal["cubic", "hexagonal"], *, filters: int = 32) -> dict[str, str]:
    """Keras layer name -> published module key (without ``.weight``/``.bias``)."""
    return (_cubic if variant == "cubic" else _hexagonal)(filters)[1]


def _as_array(value: Any) -> NDArray[np.float32]:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _shown(items: list[str]) -> str:
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def keras_weights_from_state_dict(
    state: Mapping[str, Any], variant: Literal["cubic", "hexagonal"], *, source: str
) -> dict[str, list[NDArray[np.float32]]]:
    """Check a published state dict strictly and convert it to Keras layer weights.

    Parameters
    ----------
    state : mapping
        Key to tensor (torch tensors or arrays), as ``torch.load`` returns it. A
        ``"module."`` prefix (DataParallel) is removed.
    variant : {"cubic", "hexagonal"}
        Which published network the keys must match.
    source : str
        Where the state dict came from, for messages.

    Returns
    -------
    dict
        Keras layer name -> ``[kernel (kh, kw, in, out), bias (out,)]``.

    Raises
    ------
    ModelError
        If keys are missing or unexpected or a shape differs; the message names the source, the
        network and the first offending keys.
    """
    expected = published_shapes(variant)
    got = {str(k).removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k}: expected {expected[k]}, got {tuple(np.shape(_as_array(got[k])))}"
             for k in expected if k in got and tuple(np.shape(_as_array(got[k]))) != expected[k]]
    if missing or unexpected or wrong:
        parts = [f"{len(items)} {label}: {_shown(items)}" for label, items in
                 (("missing keys", missing), ("unexpected keys", unexpected),
                  ("shape mismatches", wrong)) if items]
        raise ModelError(f"weights {source} do not match the published AtomNet '{variant}' "
                         f"state dict: " + "; ".join(parts))
    return {
        name: [np.transpose(_as_array(got[f"{key}.weight"]), (2, 3, 1, 0)),
               _as_array(got[f"{key}.bias"])]
        for name, key in layer_map(variant).items()
    }
