"""Shard functions that fail on purpose, for the orchestration tests.

Each keeps the JSON contract of ``evaluate_shard`` and uses marker files in the folder
named by the request's dataset ``cache_dir`` to fail only on the first attempt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from stembench.endpoints.models.base import Model, ModelInfo
from stembench.endpoints.requests import ShardRequest


def _first_attempt(request: dict[str, Any], kind: str) -> bool:
    parsed = ShardRequest.from_dict(request)
    marker = Path(parsed.dataset.cache_dir or ".") / f"{kind}-{parsed.shard_id}"
    if marker.exists():
        return False
    marker.touch()
    return True


def echo_shard(request: dict[str, Any]) -> dict[str, Any]:
    """A successful shard: one perfect score per image, no model involved."""
    from stembench.scoring import score_image

    parsed = ShardRequest.from_dict(request)
    columns = [[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]
    images = [
        {"image_id": i, "error": None, "seconds": 0.0,
         "conditions": {"group": "g", "series": "noise", "step": 0, "axis_value": 1.0,
                        "seed": 0},
         "score": score_image(columns, columns, pixel_size=0.1, image_shape=(40, 40),
                              image_id=i).to_dict()}
        for i in parsed.image_ids
    ]
    return {"shard_id": parsed.shard_id, "ok": True, "error": None, "images": images,
            "model": {"name": "echo", "version": "1", "framework": "python",
                      "weights_sha256": None},
            "dataset": {"name": "d", "version": "1", "manifest_sha256": None},
            "runtime": {"host": "h", "device": "cpu"}}


def malformed_shard(request: dict[str, Any]) -> dict[str, Any]:
    """A result the shard-result schema refuses: an image without its ``image_id``."""
    result = echo_shard(request)
    for image in result["images"]:
        del image["image_id"]
    return result


def raise_once(request: dict[str, Any]) -> dict[str, Any]:
    """Raise on the first attempt of every shard, succeed afterwards."""
    if _first_attempt(request, "raise"):
        raise RuntimeError("injected failure")
    return echo_shard(request)


def die_once(request: dict[str, Any]) -> dict[str, Any]:
    """Kill the worker process on the first attempt of the shard holding image 'img-3'."""
    if "img-3" in request["image_ids"] and _first_attempt(request, "die"):
        os._exit(17)
    return echo_shard(request)


def always_raise(request: dict[str, Any]) -> dict[str, Any]:
    """Fail every attempt of shards holding 'img-0'; succeed on the others."""
    if "img-0" in request["image_ids"]:
        raise RuntimeError("permanent failure")
    return echo_shard(request)


def oversized(request: dict[str, Any]) -> dict[str, Any]:
    """Return a result larger than Globus Compute's 10 MiB result limit."""
    result = echo_shard(request)
    result["padding"] = "x" * (11 * 1024 * 1024)
    return result


def nan_model(image: Any, pixel_size: float) -> Any:
    """A plain-callable model that returns NaN positions."""
    import numpy as np

    return np.full((3, 2), np.nan)


def crashing_model(image: Any, pixel_size: float) -> Any:
    """A plain-callable model that raises on every image."""
    raise RuntimeError("model crashed")


# Models that misbehave in the ways a run must survive. Each records the worker's process
# id in the folder named by $STEMBENCH_FAULT_DIR (pid-<pid>), and the "_once" ones fail only
# on the first image they see there (the marker file <kind> says it happened).


def _fault_dir() -> Path:
    folder = Path(os.environ["STEMBENCH_FAULT_DIR"])
    (folder / f"pid-{os.getpid()}").touch()
    return folder


def _once(kind: str) -> bool:
    marker = _fault_dir() / kind
    if marker.exists():
        return False
    marker.touch()
    return True


def _no_columns() -> Any:
    import numpy as np

    return np.zeros((0, 2))


def hang_once(image: Any, pixel_size: float) -> Any:
    """Sleep (for days) on the first image, answer at once on the others."""
    if _once("hang"):
        time.sleep(10**6)
    return _no_columns()


def spin_once(image: Any, pixel_size: float) -> Any:
    """Busy-loop in Python (no sleep to interrupt) on the first image."""
    if _once("spin"):
        while True:
            pass
    return _no_columns()


def hang_always(image: Any, pixel_size: float) -> Any:
    """Sleep for days on every image."""
    _fault_dir()
    time.sleep(10**6)
    return _no_columns()


def stubborn_once(image: Any, pixel_size: float) -> Any:
    """On the first image, ignore SIGALRM and swallow every exception, forever."""
    if _once("stubborn"):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            with contextlib.suppress(BaseException):  # what a hostile model does
                time.sleep(10**6)
    return _no_columns()


def stubborn_on_marked(image: Any, pixel_size: float) -> Any:
    """Log each call (image hash) in $STEMBENCH_FAULT_DIR/calls; on a marked image, behave
    like :func:`stubborn_once`."""
    folder = _fault_dir()
    with open(folder / "calls", "a", encoding="utf-8") as handle:
        handle.write(image_hash(image) + "\n")
    marked = (folder / "marked").read_text().split()
    if image_hash(image) in marked:
        return stubborn_once(image, pixel_size)
    return _no_columns()


def interrupt_once(image: Any, pixel_size: float) -> Any:
    """Raise KeyboardInterrupt itself on the first image (no signal involved)."""
    if _once("interrupt"):
        raise KeyboardInterrupt("raised by the model")
    return _no_columns()


def exit_once(image: Any, pixel_size: float) -> Any:
    """Call ``sys.exit(0)`` on the first image."""
    if _once("exit"):
        sys.exit(0)
    return _no_columns()


def hard_exit_always(image: Any, pixel_size: float) -> Any:
    """Kill the worker process with ``os._exit`` on every image."""
    _fault_dir()
    os._exit(3)


def hard_exit_on_marked(image: Any, pixel_size: float) -> Any:
    """Kill the worker (``os._exit``) on an image whose hash is in $STEMBENCH_FAULT_DIR/marked."""
    marked = _fault_dir() / "marked"
    if marked.exists() and image_hash(image) in marked.read_text().split():
        os._exit(3)
    return _no_columns()


def sigkill_always(image: Any, pixel_size: float) -> Any:
    """Kill the worker process with SIGKILL on every image."""
    _fault_dir()
    os.kill(os.getpid(), signal.SIGKILL)
    return _no_columns()


def dict_model(image: Any, pixel_size: float) -> Any:
    """Return a dict of x and y lists instead of an (N, 2) array."""
    return {"x": [1.0, 2.0], "y": [3.0, 4.0]}


def sleepy_model(image: Any, pixel_size: float) -> Any:
    """Sleep for days."""
    time.sleep(10**6)
    return _no_columns()


def wrong_shape_model(image: Any, pixel_size: float) -> Any:
    """Return (N, 3) positions."""
    import numpy as np

    return np.ones((5, 3))



class ExitingModel(Model):
    """A model class that calls ``sys.exit`` while it is built."""

    def __init__(self) -> None:
        sys.exit(3)

    @property
    def info(self) -> ModelInfo:
        """Never reached."""
        return ModelInfo("exiting", "1", "python")

    def locate(self, image: Any, pixel_size: float) -> Any:
        """Never reached."""
        return _no_columns()

#: SHA-256 of the image arrays the ``*_on_marked`` models fail on; tests fill it (in-process).
MARKED: set[str] = set()


def image_hash(image: Any) -> str:
    """SHA-256 of an image's float32 bytes, as the ``*_on_marked`` models see it."""
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def _log_blob(image: Any, pixel_size: float) -> Any:
    from stembench.endpoints.models.registry import load_model

    return load_model("log-blob").locate(image, pixel_size)


def raise_on_marked(image: Any, pixel_size: float) -> Any:
    """The LoG detector, except that it raises on a marked image."""
    if image_hash(image) in MARKED:
        raise RuntimeError("injected failure on a marked image")
    return _log_blob(image, pixel_size)


def spin_on_marked(image: Any, pixel_size: float) -> Any:
    """The LoG detector, except that it busy-loops in Python (forever) on a marked image."""
    if image_hash(image) in MARKED:
        while True:
            pass
    return _log_blob(image, pixel_size)


def nothing_on_marked(image: Any, pixel_size: float) -> Any:
    """The LoG detector, except that it finds nothing on a marked image."""
    import numpy as np

    if image_hash(image) in MARKED:
        return np.zeros((0, 2))
    return _log_blob(image, pixel_size)


#: Sizes of the ``locate_batch`` calls the :class:`BatchingLogBlob` models received, in order.
BATCHES: list[int] = []


class BatchingLogBlob(Model):
    """The LoG detector as a batching model (batch size 3) that fails on marked images.

    ``locate_batch`` raises for a whole batch that holds a marked image; ``locate`` raises
    for the marked image alone. With ``outside=True`` a marked image instead gets a position
    outside the image from ``locate_batch``, and the batch call succeeds.
    """

    def __init__(self, outside: bool = False) -> None:
        from stembench.endpoints.models.registry import load_model

        self._inner = load_model("log-blob")
        self._outside = outside

    @property
    def info(self) -> ModelInfo:
        """Named ``batching-log-blob``."""
        return ModelInfo("batching-log-blob", "1", "python")

    @property
    def batch_size(self) -> int:
        """Three images per call."""
        return 3

    def locate(self, image: Any, pixel_size: float) -> Any:
        """The LoG detector, raising on a marked image."""
        if image_hash(image) in MARKED and not self._outside:
            raise RuntimeError("injected failure on a marked image")
        return self._inner.locate(image, pixel_size)

    def locate_batch(self, images: Any, pixel_sizes: Any) -> Any:
        """Record the batch size; fail the batch (or misplace a column) for a marked image."""
        import numpy as np

        BATCHES.append(len(images))
        marked = [image_hash(image) in MARKED for image in images]
        if any(marked) and not self._outside:
            raise RuntimeError("injected failure of a batch holding a marked image")
        return [np.array([[image.shape[1] + 5.0, 1.0]]) if bad else self.locate(image, px)
                for image, px, bad in zip(images, pixel_sizes, marked, strict=True)]
