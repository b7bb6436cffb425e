"""Adapters that turn a user's model file or Python function into a stembench ``Model``.

Network files (TorchScript or a PyTorch state dict with its class, ``.keras``, ``.onnx``) are
treated as segmentation networks: the image is min-max scaled to [0, 1] and zero-padded at the
bottom and right to a multiple of ``pad_multiple`` pixels, the network returns a probability
map of the same size (one channel), and the map becomes column positions by threshold,
connected components and centre of mass
(:func:`~stembench.endpoints.models.postprocess.coordinates_from_probability`).
A plain Python callable ``f(image, pixel_size) -> (N, 2)`` is used as it is.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from stembench._optional import require
from stembench.endpoints.models.base import Model, ModelInfo, sha256_file
from stembench.endpoints.models.deadline import DeadlineExceeded, check_timeout, deadline
from stembench.endpoints.models.postprocess import coordinates_from_probability
from stembench.errors import InputError, ModelError
from stembench.validation import validate_image

__all__ = [
    "CallableModel",
    "KerasFileModel",
    "OnnxFileModel",
    "SegmentationFileModel",
    "TorchFileModel",
    "import_object",
]


#: Environment variable with the seconds a model module may take to import.
IMPORT_TIMEOUT_ENV = "STEMBENCH_MODEL_IMPORT_TIMEOUT"
#: Seconds a model module may take to import when ``$STEMBENCH_MODEL_IMPORT_TIMEOUT`` is unset.
DEFAULT_IMPORT_TIMEOUT_S = 300.0


def import_timeout() -> float:
    """Seconds a ``module:function`` model's module may take to import.

    Raises
    ------
    InputError
        If ``$STEMBENCH_MODEL_IMPORT_TIMEOUT`` is set to anything but a positive number.
    """
    text = os.environ.get(IMPORT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_IMPORT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return float(check_timeout(value, option=f"${IMPORT_TIMEOUT_ENV} ({text!r})") or 0)


def import_object(spec: str) -> Any:
    """Import ``"package.module:attribute"`` (the attribute may be dotted).

    The import has a deadline (:func:`import_timeout`), so a module that blocks while it is
    imported fails the model instead of hanging the run.

    Raises
    ------
    ModelError
        If the spec has no ``:``, the module cannot be imported (raises while it is
        imported, or runs past the deadline) or lacks the attribute.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ModelError(f"model spec {spec!r}: expected 'module:attribute'")
    seconds = import_timeout()
    try:
        with deadline(seconds):
            target: Any = importlib.import_module(module_name)
    except DeadlineExceeded:
        raise ModelError(
            f"model spec {spec!r}: importing module {module_name!r} took longer than "
            f"{seconds:g} s ({IMPORT_TIMEOUT_ENV}); a model module must not block while it is "
            "imported") from None
    except ImportError as exc:
        raise ModelError(
            f"model spec {spec!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    except (Exception, SystemExit) as exc:  # the module's own code failed while importing
        raise ModelError(
            f"model spec {spec!r}: importing module {module_name!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelError(f"model spec {spec!r}: module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    return target


def _check_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"model file {str(file)!r} does not exist")
    return file


class SegmentationFileModel(Model):
    """A segmentation network read from a file: probability map in, columns out.

    Parameters
    ----------
    path : str or Path
        The network file.
    threshold : float, optional
        Probability above which a pixel belongs to a column. Default 0.5.
    edge_px : float, optional
        Columns closer than this to the border (px) are dropped. Default 5.
    pad_multiple : int, optional
        Images are zero-padded to a multiple of this many pixels. Default 8.
    """

    framework = "unknown"

    def __init__(
        self, path: str | Path, *, threshold: float = 0.5, edge_px: float = 5,
        pad_multiple: int = 8,
    ) -> None:
        self.path = _check_file(path)
        if pad_multiple < 1 or not 0 < threshold < 1 or edge_px < 0:
            raise InputError(
                f"model file {self.path.name!r}: need pad_multiple >= 1, 0 < threshold < 1, "
                f"edge_px >= 0; got {pad_multiple}, {threshold}, {edge_px}"
            )
        self.threshold = float(threshold)
        self.edge_px = float(edge_px)
        self.pad_multiple = int(pad_multiple)
        self._sha256 = sha256_file(self.path)

    @property
    def info(self) -> ModelInfo:
        """File name, hash prefix as version, the framework and the file's SHA-256."""
        return ModelInfo(self.path.name, self._sha256[:12], self.framework, self._sha256)

    @abstractmethod
    def _predict(self, batch: NDArray[np.float32]) -> Any:
        """Run the network on ``(n, rows, cols)`` float32 images in [0, 1]."""

    def _maps(self, output: Any, batch_shape: tuple[int, ...]) -> NDArray[np.float64]:
        """The network's output as ``(n, rows, cols)`` probability maps."""
        maps = np.asarray(output, dtype=np.float64)
        n, rows, cols = batch_shape
        if maps.shape == (n, 1, rows, cols):
            return maps[:, 0]
        if maps.shape == (n, rows, cols, 1):
            return maps[..., 0]
        if maps.shape == (n, rows, cols):
            return maps
        raise ModelError(
            f"model {self.path.name!r}: expected a one-channel probability map of shape "
            f"({n}, 1, {rows}, {cols}) or ({n}, {rows}, {cols}, 1), got {maps.shape}"
        )

    def _prepare(self, image: NDArray[np.floating]) -> NDArray[np.float32]:
        array = validate_image(image, name=f"model {self.path.name!r}")
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
        rows, cols = array.shape
        m = self.pad_multiple
        padded = np.pad(scaled, ((0, -rows % m), (0, -cols % m)))
        return padded.astype(np.float32)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (N, 2) as x, y in pixels; ``pixel_size`` (A/px) is not used."""
        return self.locate_batch([image], [pixel_size])[0]

    def locate_batch(
        self, images: Sequence[NDArray[np.floating]], pixel_sizes: Sequence[float]
    ) -> list[NDArray[np.float64]]:
        """Locate columns in several images, running same-size images as one batch."""
        if len(images) != len(pixel_sizes):
            raise InputError(f"{len(images)} images but {len(pixel_sizes)} pixel sizes")
        prepared = [self._prepare(image) for image in images]
        results: list[NDArray[np.float64]] = [np.zeros((0, 2))] * len(images)
        for shape in sorted({p.shape for p in prepared}):
            members = [i for i, p in enumerate(prepared) if p.shape == shape]
            batch = np.stack([prepared[i] for i in members])
            maps = self._maps(self._predict(batch), batch.shape)
            for i, prob in zip(members, maps, strict=True):
                rows, cols = np.shape(images[i])
                results[i] = coordinates_from_probability(
                    np.clip(prob[:rows, :cols], 0.0, 1.0), threshold=self.threshold,
                    edge_px=self.edge_px,
                )
        return results


class TorchFileModel(SegmentationFileModel):
    """A PyTorch network: a TorchScript file, or a state dict with its class.

    Parameters
    ----------
    path : str or Path
        A TorchScript file (``torch.jit.save``), or a state dict (``torch.save``) when
        ``model_class`` is given.
    model_class : str, optional
        ``"module:Class"`` of the network the state dict belongs to, built with no
        arguments; the state dict must match it exactly (``strict=True``).
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"``, unless given.
    **options
        ``threshold``, ``edge_px``, ``pad_multiple`` of :class:`SegmentationFileModel`.
    """

    framework = "pytorch"

    def __init__(
        self, path: str | Path, *, model_class: str | None = None, device: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(path, **options)
        self._torch = require("torch", extra="torch", purpose="A PyTorch model file")
        torch = self._torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if model_class is None:
            try:
                self.network = torch.jit.load(str(self.path), map_location=self.device)
            except RuntimeError as exc:
                raise ModelError(
                    f"model file {self.path.name!r} is not a TorchScript file ({exc}); for a "
                    "state dict give its class as model_class='module:Class'"
                ) from exc
        else:
            self.network = self._from_state_dict(model_class)
        self.network.eval()

    def _from_state_dict(self, model_class: str) -> Any:
        torch = self._torch
        network = import_object(model_class)()
        try:
            state = torch.load(str(self.path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"model file {self.path.name!r}: cannot read a state dict: {exc}"
            ) from exc
        if not isinstance(state, dict):
            raise ModelError(
                f"model file {self.path.name!r} holds a {type(state).__name__}, not a state dict"
            )
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {self.path.name!r} does not match network {model_class!r}: "
                + " ".join(str(exc).split())
            ) from exc
        return network.to(self.device)

    def _predict(self, batch: NDArray[np.float32]) -> Any:
        torch = self._torch
        with torch.no_grad():
            tensor = torch.from_numpy(batch[:, None]).to(self.device)
            return self.network(tensor).float().cpu().numpy()


class KerasFileModel(SegmentationFileModel):
    """A Keras 3 network saved as a ``.keras`` file, channels last.

    Parameters
    ----------
    path : str or Path
        The ``.keras`` file.
    **options
        ``threshold``, ``edge_px``, ``pad_multiple`` of :class:`SegmentationFileModel`.
    """

    framework = "tensorflow"

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(path, **options)
        self._keras = require("keras", extra="models", purpose="A Keras model file")
        try:
            self.network = self._keras.saving.load_model(str(self.path), compile=False)
        except Exception as exc:
            raise ModelError(f"model file {self.path.name!r}: cannot load: {exc}") from exc

    def _predict(self, batch: NDArray[np.float32]) -> Any:
        output = self.network(batch[..., None], training=False)
        return self._keras.ops.convert_to_numpy(output)


class OnnxFileModel(SegmentationFileModel):
    """An ONNX network run with onnxruntime (CUDA when its provider is installed).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file; its single input is ``(n, 1, rows, cols)`` or ``(n, rows, cols, 1)``.
    layout : {"auto", "nchw", "nhwc"}, optional
        Input layout; ``"auto"`` reads it from the input's declared shape (NCHW unless the
        last axis has size 1 and the second does not). Default ``"auto"``.
    **options
        ``threshold``, ``edge_px``, ``pad_multiple`` of :class:`SegmentationFileModel`.
    """

    framework = "onnx"

    def __init__(
        self, path: str | Path, *, layout: Literal["auto", "nchw", "nhwc"] = "auto",
        **options: Any,
    ) -> None:
        super().__init__(path, **options)
        ort = require("onnxruntime", extra="models", purpose="An ONNX model file")
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        providers = [p for p in wanted if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:
            raise ModelError(f"model file {self.path.name!r}: cannot load: {exc}") from exc
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        if layout not in ("auto", "nchw", "nhwc"):
            raise InputError(f"model file {self.path.name!r}: unknown layout {layout!r}")
        shape = list(model_input.shape)
        if layout == "auto":
            channels_last = len(shape) == 4 and shape[3] == 1 and shape[1] != 1
            layout = "nhwc" if channels_last else "nchw"
        self.layout = layout

    def _predict(self, batch: NDArray[np.float32]) -> Any:
        feed = batch[..., None] if self.layout == "nhwc" else batch[:, None]
        return self.session.run(None, {self.input_name: feed})[0]


class CallableModel(Model):
    """A plain Python function ``f(image, pixel_size) -> (N, 2)`` x, y pixels.

    Parameters
    ----------
    function : callable
        Called with the image and the pixel size in A/px.
    name : str
        The model's name in results, e.g. ``"mypackage.finder:find"``.
    """

    def __init__(
        self, function: Callable[[NDArray[np.floating], float], Any], *, name: str
    ) -> None:
        if not callable(function):
            raise ModelError(f"model {name!r} is a {type(function).__name__}, not a callable")
        self.function = function
        self.name = name
        source = inspect.getsourcefile(function) if inspect.isfunction(function) else None
        self._sha256 = sha256_file(source) if source and Path(source).is_file() else None

    @property
    def info(self) -> ModelInfo:
        """The given name, framework ``"python"``, SHA-256 of the function's source file."""
        version = self._sha256[:12] if self._sha256 else "unknown"
        return ModelInfo(self.name, version, "python", self._sha256)

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Call the function; the result is converted to float64 (validation is the guard's).

        A result that is not numeric (a dict, text) is returned as it is, so that the guard
        says what the function returned instead of how the conversion failed.
        """
        result = self.function(image, pixel_size)
        try:
            return np.asarray(result, dtype=np.float64)
        except (TypeError, ValueError):
            return result
