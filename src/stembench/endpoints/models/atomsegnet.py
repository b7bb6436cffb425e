"""AtomSegNet (Lin, Zhang, Wang, Yang & Xin, Sci. Rep. 11, 5386 (2021)) in PyTorch.

The code followed is the MIT-licensed AtomSegNet repository (xinhuolin/AtomSegNet:
``model_structure/unet_sigmoid.py``, ``utils/utils.py``, ``Code_Atom_Seg_Ui.py``) as run by
Wei et al. (2023).

The "gaussianMask+" network is a small U-Net with two 2x2 max-pool levels (64, 128 and 256
channels), bilinear x2 upsampling each followed by a 1x1 convolution and batch norm, skip
concatenations, and a sigmoid head. The parameter names and shapes here follow the published
definition (``model_structure/unet_sigmoid.py`` of the MIT-licensed AtomSegNet repository), so a
published state dict loads with ``strict=True``. The published definition also carries a batch
norm ``bn9_3`` that its forward pass never uses; it is kept for the same reason.

Pre-processing as published: min-max scaling to 8-bit levels (truncated, as ``astype`` does), then
to [0, 1], zero padding centred to a multiple of 4 rows and columns, the output cropped back.
Post-processing as published: the output stretched to 8 bits, then the watershed; see
:func:`stembench.endpoints.models.postprocess.coordinates_from_watershed`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench._optional import require
from stembench._version import __version__
from stembench.endpoints.models.base import Model, ModelInfo, sha256_file
from stembench.endpoints.models.cpu_memory import keep_freed_memory
from stembench.endpoints.models.postprocess import coordinates_from_watershed
from stembench.errors import InputError, ModelError
from stembench.validation import validate_image, validate_pixel_size

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_WEIGHTS_NAME",
    "AtomSegNet",
    "build_network",
    "default_weights_path",
    "fold_batchnorm",
    "load_state_dict_checked",
    "pad_to_multiple",
    "scale_to_8bit",
]

ARCHITECTURE = "AtomSegNet U-Net (unet_sigmoid, gaussianMask+)"
DEFAULT_WEIGHTS_NAME = "atomsegnet.pt"
_MULTIPLE = 4
_SHOWN_KEYS = 5


def default_weights_path() -> Path:
    """Return the path of the AtomSegNet weights shipped in the package."""
    return Path(str(resources.files("stembench.endpoints") / "weights" / DEFAULT_WEIGHTS_NAME))


@functools.cache
def _network_class() -> Any:
    torch = require("torch", extra="torch", purpose="The AtomSegNet model")
    nn = torch.nn
    functional = torch.nn.functional

    def conv3(cin: int, cout: int) -> Any:
        return nn.Conv2d(cin, cout, 3, padding=1)

    class AtomSegNetUNet(nn.Module):  # type: ignore[name-defined]
        """The published U-Net; attribute names are those of the published state dict."""

        def __init__(self, channels: int = 1) -> None:
            super().__init__()
            # encoder level 1 (64), level 2 (128), bottleneck (256)
            self.conv1_1, self.conv1_2 = conv3(channels, 64), conv3(64, 64)
            self.bn1_1, self.bn1_2 = nn.BatchNorm2d(64), nn.BatchNorm2d(64)
            self.conv2_1, self.conv2_2 = conv3(64, 128), conv3(128, 128)
            self.bn2_1, self.bn2_2 = nn.BatchNorm2d(128), nn.BatchNorm2d(128)
            self.conv4_1, self.conv4_2 = conv3(128, 256), conv3(256, 256)
            self.bn4_1, self.bn4_2 = nn.BatchNorm2d(256), nn.BatchNorm2d(256)
            # decoder: upsample + 1x1 conv + BN, concatenate skip, BN, two 3x3 convs
            self.upconv4, self.bn4 = nn.Conv2d(256, 128, 1), nn.BatchNorm2d(128)
            self.bn4_out = nn.BatchNorm2d(256)
            self.conv7_1, self.conv7_2 = conv3(256, 128), conv3(128, 128)
            self.bn7_1, self.bn7_2 = nn.BatchNorm2d(128), nn.BatchNorm2d(128)
            self.upconv7, self.bn7 = nn.Conv2d(128, 64, 1), nn.BatchNorm2d(64)
            self.bn7_out = nn.BatchNorm2d(128)
            self.conv9_1, self.conv9_2 = conv3(128, 64), conv3(64, 64)
            self.bn9_1, self.bn9_2 = nn.BatchNorm2d(64), nn.BatchNorm2d(64)
            # head: 1x1 conv -> ReLU -> BN -> sigmoid (bn9_3 is unused, as published)
            self.conv9_3 = nn.Conv2d(64, channels, 1)
            self.bn9_3 = nn.BatchNorm2d(channels)
            self.bn9 = nn.BatchNorm2d(channels)

        @staticmethod
        def _double(x: Any, conv_a: Any, bn_a: Any, conv_b: Any, bn_b: Any) -> Any:
            x = functional.relu(bn_a(conv_a(x)))
            return functional.relu(bn_b(conv_b(x)))

        @staticmethod
        def _up(x: Any, conv: Any, bn: Any) -> Any:
            x = functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            return bn(conv(x))

        def forward(self, x: Any) -> Any:
            skip1 = self._double(x, self.conv1_1, self.bn1_1, self.conv1_2, self.bn1_2)
            down = functional.max_pool2d(skip1, 2)
            skip2 = self._double(down, self.conv2_1, self.bn2_1, self.conv2_2, self.bn2_2)
            down = functional.max_pool2d(skip2, 2)
            deep = self._double(down, self.conv4_1, self.bn4_1, self.conv4_2, self.bn4_2)
            up = self.bn4_out(torch.cat((skip2, self._up(deep, self.upconv4, self.bn4)), 1))
            up = self._double(up, self.conv7_1, self.bn7_1, self.conv7_2, self.bn7_2)
            up = self.bn7_out(torch.cat((skip1, self._up(up, self.upconv7, self.bn7)), 1))
            up = self._double(up, self.conv9_1, self.bn9_1, self.conv9_2, self.bn9_2)
            return torch.sigmoid(self.bn9(functional.relu(self.conv9_3(up))))

    return AtomSegNetUNet


def build_network() -> Any:
    """Return a freshly initialised AtomSegNet ``torch.nn.Module`` (about 1.74 M parameters)."""
    return _network_class()()


def _extract_state_dict(loaded: Any, source: str) -> Mapping[str, Any]:
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise ModelError(
            f"{source}: expected a state dict (or a checkpoint dict with 'state_dict' or "
            f"'model_state_dict') for {ARCHITECTURE}, got {type(loaded).__name__}"
        )
    return {str(k).removeprefix("module."): v for k, v in loaded.items()}


def load_state_dict_checked(network: Any, loaded: Any, *, source: str) -> None:
    """Load a state dict or checkpoint into ``network`` strictly, with a readable error.

    Parameters
    ----------
    network : torch.nn.Module
        The AtomSegNet network from :func:`build_network`.
    loaded : mapping
        A plain state dict, or a checkpoint dict holding one under ``"state_dict"``,
        ``"model_state_dict"`` or ``"model"``. A ``"module."`` prefix (DataParallel) is removed.
    source : str
        Where it came from (a file path), used in messages.

    Raises
    ------
    ModelError
        If the keys or shapes do not match the architecture; the message names the source and
        the architecture and lists the first missing and unexpected keys and shape mismatches.
    """
    state = _extract_state_dict(loaded, source)
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(getattr(state[k], 'shape', ()))}"
        for k in expected
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                shown = ", ".join(items[:_SHOWN_KEYS])
                more = f" (and {len(items) - _SHOWN_KEYS} more)" if len(items) > _SHOWN_KEYS else ""
                parts.append(f"{len(items)} {label}: {shown}{more}")
        raise ModelError(
            f"weights {source} do not match the architecture {ARCHITECTURE}: " + "; ".join(parts)
        )
    network.load_state_dict(state, strict=True)


def scale_to_8bit(image: NDArray[np.floating]) -> NDArray[np.float32]:
    """Min-max scale an image to 8-bit levels (truncated), then to [0, 1], as published.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Any real image. A constant image maps to zeros.

    Returns
    -------
    ndarray, shape (rows, cols), float32
        Values ``k / 255`` with ``k = floor(255 * (x - min) / (max - min))`` in 0..255.
    """
    array = np.asarray(image, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.float32)
    levels = np.floor((array - low) / (high - low) * 255.0)
    return (levels / 255.0).astype(np.float32)


def pad_to_multiple(
    image: NDArray[np.float32], *, multiple: int = _MULTIPLE
) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """Zero-pad an image, centred, so that both sides are multiples of ``multiple``.

    Returns
    -------
    padded : ndarray, shape (rows', cols')
        The padded image.
    offset : tuple of int
        ``(top, left)`` padding in pixels: crop ``padded[top:top + rows, left:left + cols]``.
    """
    rows, cols = image.shape
    extra_r, extra_c = (-rows) % multiple, (-cols) % multiple
    top, left = extra_r // 2, extra_c // 2
    padded = np.pad(image, ((top, extra_r - top), (left, extra_c - left)))
    return padded.astype(np.float32, copy=False), (top, left)


#: (convolution, the BatchNorm that directly follows it) in the published forward pass
_FOLDABLE = (
    ("conv1_1", "bn1_1"), ("conv1_2", "bn1_2"), ("conv2_1", "bn2_1"), ("conv2_2", "bn2_2"),
    ("conv4_1", "bn4_1"), ("conv4_2", "bn4_2"), ("upconv4", "bn4"), ("conv7_1", "bn7_1"),
    ("conv7_2", "bn7_2"), ("upconv7", "bn7"), ("conv9_1", "bn9_1"), ("conv9_2", "bn9_2"),
)


def fold_batchnorm(network: Any) -> None:
    """Fold each inference-mode BatchNorm that directly follows a convolution into its weights.

    ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` per output channel and
    ``b' = (b - m) * g / sqrt(v + eps) + beta``; the BatchNorm becomes an identity. The result
    equals the published arithmetic to float32 rounding (about 1e-6 on the output map) and
    saves one pass over every activation map. Only for inference: the network is changed in
    place and its state dict no longer matches the published key layout.

    Parameters
    ----------
    network : torch.nn.Module
        An AtomSegNet network from :func:`build_network` holding loaded weights, in eval mode.
    """
    torch = require("torch", extra="torch", purpose="The AtomSegNet model")
    if network.training:
        raise ModelError("fold_batchnorm: the network must be in eval mode")
    with torch.no_grad():
        for conv_name, bn_name in _FOLDABLE:
            conv, bn = getattr(network, conv_name), getattr(network, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
            setattr(network, bn_name, torch.nn.Identity())


def _check_image(image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
    array = validate_image(image, name="AtomSegNet")
    validate_pixel_size(pixel_size, name="AtomSegNet")
    return array


class AtomSegNet(Model):
    """AtomSegNet with its published pre- and post-processing.

    Parameters
    ----------
    weights : path, optional
        A ``.pt`` file holding a state dict or a checkpoint dict. Default: the weights shipped
        with stembench (trained on the project's simulated data).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default: CUDA when available, else CPU.
    batch_size : int, optional
        Images of the same shape run through the network this many at a time. Default: 4 on
        a GPU, 1 on the CPU (where a batch of four 256x256 images took 1.25x as long per
        image as single images on 2 cores; ``bench/bench_compute_bound.py --batch 4``).

    Raises
    ------
    ModelError
        If the weights file is missing, unreadable, or does not match the architecture.
    """

    def __init__(
        self,
        weights: Path | str | None = None,
        *,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        torch = require("torch", extra="torch", purpose="The AtomSegNet model")
        if batch_size is not None and batch_size < 1:
            raise InputError(f"AtomSegNet: batch_size must be >= 1, got {batch_size}")
        path = Path(weights) if weights is not None else default_weights_path()
        if not path.is_file():
            raise ModelError(f"AtomSegNet weights file not found: {path}")
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        on_cpu = self._device.type == "cpu"
        if on_cpu:
            keep_freed_memory()
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(f"cannot read AtomSegNet weights {path}: {exc}") from exc
        network = build_network()
        load_state_dict_checked(network, loaded, source=str(path))
        fold_batchnorm(network.eval())
        # channels-last lets oneDNN / cuDNN pick faster NHWC kernels (same fp32 results)
        self._network = network.to(self._device, memory_format=torch.channels_last)
        self._batch_size = batch_size or (1 if on_cpu else 4)
        self._info = ModelInfo(
            name="atomsegnet",
            version=__version__,
            framework="pytorch",
            weights_sha256=sha256_file(path),
        )

    @property
    def batch_size(self) -> int:
        """Images of one padded shape that run through the network together."""
        return self._batch_size

    @property
    def info(self) -> ModelInfo:
        """Name ``"atomsegnet"``, stembench version, ``"pytorch"``, SHA-256 of the weights."""
        return self._info

    def probability_maps(self, images: Sequence[NDArray[np.floating]]) -> list[NDArray[np.float32]]:
        """Run the network on same- or mixed-shaped images; return one map per image in [0, 1]."""
        torch = require("torch", extra="torch", purpose="The AtomSegNet model")
        prepared = [pad_to_multiple(scale_to_8bit(im)) for im in images]
        maps: list[NDArray[np.float32] | None] = [None] * len(prepared)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, (padded, _) in enumerate(prepared):
            by_shape.setdefault(padded.shape, []).append(index)
        with torch.inference_mode():
            for indices in by_shape.values():
                for start in range(0, len(indices), self._batch_size):
                    chunk = indices[start : start + self._batch_size]
                    batch = np.stack([prepared[i][0] for i in chunk])[:, None]
                    output = self._network(torch.from_numpy(batch).to(self._device))
                    output = output[:, 0].float().cpu().numpy()
                    for i, out in zip(chunk, output, strict=True):
                        rows, cols = np.shape(images[i])
                        top, left = prepared[i][1]
                        maps[i] = np.ascontiguousarray(out[top : top + rows, left : left + cols])
        return [m for m in maps if m is not None]

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Locate columns in one image; see :meth:`Model.locate` (x, y in pixels)."""
        return self.locate_batch([image], [pixel_size])[0]

    def locate_batch(
        self, images: Sequence[NDArray[np.floating]], pixel_sizes: Sequence[float]
    ) -> list[NDArray[np.float64]]:
        """Locate columns in several images, batching those of the same shape."""
        if len(images) != len(pixel_sizes):
            raise InputError(
                f"AtomSegNet: {len(images)} images but {len(pixel_sizes)} pixel sizes"
            )
        checked = [_check_image(im, px) for im, px in zip(images, pixel_sizes, strict=True)]
        return [coordinates_from_watershed(m) for m in self.probability_maps(checked)]
