"""A misbehaving model is reported per image, with a clear message, and the run goes on."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.base import Model, ModelInfo
from stembench.endpoints.models.guard import ModelOutput, run_model_safely

IMAGE = np.zeros((20, 30))


class Returns(Model):
    """A model that returns a fixed object, or raises it if it is an exception."""

    def __init__(self, result: Any) -> None:
        self.result = result

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("fixed", "0", "python")

    def locate(self, image: Any, pixel_size: float) -> Any:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def run(result: Any) -> ModelOutput:
    return run_model_safely(Returns(result), IMAGE, 0.1, image_id="img-7")


def test_valid_output_passes_as_float64():
    out = run([[0, 0], [29.4, 19.5]])
    assert out.ok and out.error is None
    assert out.image_id == "img-7" and out.model == "fixed"
    assert out.coordinates is not None and out.coordinates.dtype == np.float64
    np.testing.assert_array_equal(out.coordinates, [[0.0, 0.0], [29.4, 19.5]])
    assert out.seconds >= 0


def test_empty_output_is_zero_columns():
    out = run(np.zeros((0, 2)))
    assert out.ok and out.coordinates is not None and out.coordinates.shape == (0, 2)
    assert run([]).coordinates.shape == (0, 2)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (ValueError("weights exploded"), "model 'fixed' raised ValueError: weights exploded"),
        (None, r"model 'fixed' returned NoneType, expected an \(N, 2\) array"),
        ({"x": 1}, r"model 'fixed' returned dict, expected an \(N, 2\) array"),
        (np.zeros((4, 3)), r"model 'fixed' returned shape \(4, 3\), expected \(N, 2\)"),
        (np.array([[1.0, 2.0], [np.nan, 3.0], [np.inf, 1.0]]),
         r"returned 2 NaN or infinite position\(s\), first at row 1"),
        (np.array([[1.0, 2.0], [30.0, 5.0]]),
         r"returned 1 position\(s\) outside the 30x20 px image"),
        (np.array([[-0.6, 2.0]]), r"outside the 30x20 px image"),
        (np.full((151, 2), 3.0), r"returned 151 positions for a 30x20 px image, more than one per "
                                 r"4 pixels \(150\)"),
        ([["a", "b"]], "returned an array that is not numeric"),
    ],
    ids=["raises", "none", "dict", "shape", "nan", "outside", "negative", "too-many", "text"],
)
def test_bad_output_is_reported_with_image_and_model(result, message):
    out = run(result)
    assert not out.ok
    assert out.coordinates is None
    assert out.error is not None and out.error.startswith("image 'img-7': ")
    assert re.search(message, out.error), out.error


def test_half_pixel_tolerance_at_the_edge():
    assert run(np.array([[-0.5, -0.5], [29.5, 19.5]])).ok
    assert run(np.full((150, 2), 3.0)).ok


def test_run_goes_on_after_a_failing_image():
    class FailsOnBlank(Model):
        @property
        def info(self) -> ModelInfo:
            return ModelInfo("picky", "0", "python")

        def locate(self, image: Any, pixel_size: float) -> Any:
            if not np.any(image):
                raise RuntimeError("blank image")
            row, col = np.unravel_index(np.argmax(image), image.shape)
            return np.array([[col, row]], dtype=float)

    bright = np.zeros((10, 10))
    bright[3, 7] = 1.0
    images = {"a": bright, "b": np.zeros((10, 10)), "c": bright.T.copy()}
    outputs = [run_model_safely(FailsOnBlank(), im, 0.1, image_id=k) for k, im in images.items()]
    assert [o.ok for o in outputs] == [True, False, True]
    assert outputs[1].error == "image 'b': model 'picky' raised RuntimeError: blank image"
    np.testing.assert_array_equal(outputs[0].coordinates, [[7.0, 3.0]])
    np.testing.assert_array_equal(outputs[2].coordinates, [[3.0, 7.0]])
