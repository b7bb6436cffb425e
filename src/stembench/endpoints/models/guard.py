"""Run a model on one image without letting a bad model stop the run.

:func:`run_model_safely` catches whatever the model raises and checks what it returns; a
failure becomes an error message in the :class:`ModelOutput` that names the image and the
model, so the caller records it for that image and goes on with the next.
:func:`run_model_batch_safely` does the same for a batch through ``locate_batch``; when the
batch call fails as a whole, each image is run alone, so that a failure stays with its image.
Neither catches the endpoint's per-task limit (:func:`is_task_time_limit`): that ends the task.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.endpoints.models.base import Model
from stembench.endpoints.models.deadline import DeadlineExceeded, deadline, user_interrupts
from stembench.validation import coordinates_problem

__all__ = [
    "MAX_POSITIONS_PER_PIXEL",
    "OUT_OF_IMAGE_TOLERANCE_PX",
    "ModelOutput",
    "check_output",
    "is_task_time_limit",
    "run_model_batch_safely",
    "run_model_safely",
]

#: Positions may lie this far (px) outside the outermost pixel centres.
OUT_OF_IMAGE_TOLERANCE_PX = 0.5
#: More than one position per this many pixels is not a column map.
MAX_POSITIONS_PER_PIXEL = 1 / 4


def is_task_time_limit(exc: BaseException) -> bool:
    """Whether ``exc`` is the endpoint's per-task limit (``GC_TASK_TIMEOUT``) reached.

    A Globus Compute endpoint wraps each task in ``parsl.app.python.timeout``, which raises
    ``parsl.app.errors.AppTimeout`` (an ``Exception``) in the task's thread. It must end the
    task, never become one failed image. parsl is not imported here: when it is not loaded,
    nothing can have raised its exception.
    """
    errors = sys.modules.get("parsl.app.errors")
    app_timeout = getattr(errors, "AppTimeout", None)
    return isinstance(app_timeout, type) and isinstance(exc, app_timeout)


@dataclass(frozen=True)
class ModelOutput:
    """What one model produced for one image: coordinates, or an error message.

    Attributes
    ----------
    image_id : str
        The image.
    model : str
        The model's name.
    coordinates : ndarray, shape (N, 2), or None
        Column positions in pixels as (x, y), float64; ``None`` when the model failed.
    error : str or None
        Why the model's output was rejected; ``None`` on success.
    seconds : float
        Wall-clock time of the model call, in seconds.
    """

    image_id: str
    model: str
    coordinates: NDArray[np.float64] | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the model returned valid coordinates."""
        return self.error is None


def _model_name(model: Any) -> str:
    try:
        return str(model.info.name)
    except Exception:  # a broken info property must not stop the run either
        return type(model).__name__


def check_output(
    result: Any, image_shape: tuple[int, ...]
) -> tuple[NDArray[np.float64] | None, str | None]:
    """Return (coordinates, None) if ``result`` is a valid position array, else (None, why).

    Parameters
    ----------
    result : object
        What a model returned (or coordinates from a result file).
    image_shape : tuple of int
        The image's (rows, cols): positions more than 0.5 px outside it are refused.
    """
    if not isinstance(result, np.ndarray | list | tuple):
        return None, f"returned {type(result).__name__}, expected an (N, 2) array of x, y pixels"
    try:
        array = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return None, f"returned an array that is not numeric ({exc})"
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.float64), None
    problem = coordinates_problem(array)
    if problem is not None:
        return None, f"returned {problem}"
    rows, cols = image_shape[:2]
    limit = OUT_OF_IMAGE_TOLERANCE_PX
    outside = (
        (array[:, 0] < -limit) | (array[:, 0] > cols - 1 + limit)
        | (array[:, 1] < -limit) | (array[:, 1] > rows - 1 + limit)
    )
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        return None, (
            f"returned {int(outside.sum())} position(s) outside the {cols}x{rows} px image "
            f"(x in [-{limit}, {cols - 1 + limit}], y in [-{limit}, {rows - 1 + limit}]), "
            f"first at row {first}: {array[first].tolist()}"
        )
    most = int(rows * cols * MAX_POSITIONS_PER_PIXEL)
    if len(array) > most:
        return None, (
            f"returned {len(array)} positions for a {cols}x{rows} px image, more than one per "
            f"{round(1 / MAX_POSITIONS_PER_PIXEL)} pixels ({most}): not a column map"
        )
    return np.ascontiguousarray(array), None


def run_model_safely(
    model: Model, image: NDArray[np.floating], pixel_size: float, *, image_id: str,
    timeout_s: float | None = None,
) -> ModelOutput:
    """Run ``model.locate`` on one image; never raise for a failing or misbehaving model.

    Parameters
    ----------
    model : Model
        The model.
    image : ndarray, shape (rows, cols)
        The image.
    pixel_size : float
        Pixel size in angstrom per pixel.
    image_id : str
        The image's id, named in every error message.
    timeout_s : float or None
        Seconds the model may take on this image (``None``: no deadline).

    Returns
    -------
    ModelOutput
        The validated (N, 2) x, y pixel positions, or an error message naming the image and
        the model when the model raised, or returned something other than an (N, 2) array,
        NaN or infinite values, positions more than 0.5 px outside the image, or more than
        one position per 4 pixels; or when it ran past ``timeout_s`` or tried to end the
        process (``sys.exit``).
    """
    name = _model_name(model)
    start = time.perf_counter()
    try:
        with user_interrupts() as pressed, deadline(timeout_s):
            result = model.locate(image, pixel_size)
    except KeyboardInterrupt as exc:
        if pressed.is_set():  # the user's Ctrl-C (SIGINT): it ends the run, as it should
            raise
        seconds = time.perf_counter() - start
        message = (f"image {image_id!r}: model {name!r} raised KeyboardInterrupt: {exc} (not "
                   "a Ctrl-C: the model raised it itself; it fails this image only)")
        return ModelOutput(image_id, name, None, message, seconds)
    except DeadlineExceeded:
        seconds = time.perf_counter() - start
        message = (f"image {image_id!r}: model {name!r} ran past the {timeout_s:g} s deadline "
                   "per image (interrupted; raise it with --image-timeout)")
        return ModelOutput(image_id, name, None, message, seconds)
    except (Exception, SystemExit) as exc:
        if is_task_time_limit(exc):
            raise
        seconds = time.perf_counter() - start
        message = f"image {image_id!r}: model {name!r} raised {type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit):
            message += " (it tried to end the process; a model must return positions)"
        return ModelOutput(image_id, name, None, message, seconds)
    return _checked(result, image, image_id=image_id, name=name,
                    seconds=time.perf_counter() - start)


def _checked(result: Any, image: NDArray[np.floating], *, image_id: str, name: str,
             seconds: float) -> ModelOutput:
    """The model's result for one image as a :class:`ModelOutput`, checked by check_output."""
    coordinates, problem = check_output(result, np.shape(image))
    if problem is not None:
        return ModelOutput(image_id, name, None, f"image {image_id!r}: model {name!r} {problem}",
                           seconds)
    return ModelOutput(image_id, name, coordinates, None, seconds)


def run_model_batch_safely(
    model: Model, images: Sequence[NDArray[np.floating]], pixel_sizes: Sequence[float], *,
    image_ids: Sequence[str], timeout_s: float | None = None,
) -> list[ModelOutput]:
    """Run ``model.locate_batch`` on several images; never raise for a misbehaving model.

    Parameters
    ----------
    model : Model
        The model.
    images : sequence of ndarray
        The images (same-shaped images batch best).
    pixel_sizes : sequence of float
        Their pixel sizes in angstrom per pixel.
    image_ids : sequence of str
        Their ids, named in every error message.
    timeout_s : float or None
        Seconds the model may take per image; the batch may take ``timeout_s * len(images)``.

    Returns
    -------
    list of ModelOutput
        One per image, in order, checked as in :func:`run_model_safely`; ``seconds`` is the
        batch's wall-clock time divided evenly among its images. When ``locate_batch``
        raises, runs past the batch's deadline, or does not return one result per image,
        every image is run again alone through :func:`run_model_safely`, so that the image
        at fault (and only that one) carries the error.
    """
    if not (len(images) == len(pixel_sizes) == len(image_ids)):
        raise ValueError(f"{len(images)} images, {len(pixel_sizes)} pixel sizes and "
                         f"{len(image_ids)} image ids")
    if len(images) == 1:
        return [run_model_safely(model, images[0], pixel_sizes[0], image_id=image_ids[0],
                                 timeout_s=timeout_s)]
    start = time.perf_counter()
    try:
        with user_interrupts() as pressed, \
                deadline(None if timeout_s is None else timeout_s * len(images)):
            results = list(model.locate_batch(images, pixel_sizes))
        if len(results) != len(images):
            raise ValueError(f"{len(results)} results for {len(images)} images")
    except KeyboardInterrupt:
        if pressed.is_set():
            raise
        return _one_by_one(model, images, pixel_sizes, image_ids, timeout_s)
    except (Exception, SystemExit, DeadlineExceeded) as exc:
        if is_task_time_limit(exc):
            raise
        return _one_by_one(model, images, pixel_sizes, image_ids, timeout_s)
    seconds = (time.perf_counter() - start) / len(images)
    name = _model_name(model)
    return [_checked(result, image, image_id=image_id, name=name, seconds=seconds)
            for result, image, image_id in zip(results, images, image_ids, strict=True)]


def _one_by_one(model: Model, images: Sequence[NDArray[np.floating]],
                pixel_sizes: Sequence[float], image_ids: Sequence[str],
                timeout_s: float | None) -> list[ModelOutput]:
    """Each image alone through :func:`run_model_safely` (after a failed batch)."""
    return [run_model_safely(model, image, pixel_size, image_id=image_id, timeout_s=timeout_s)
            for image, pixel_size, image_id in zip(images, pixel_sizes, image_ids, strict=True)]
