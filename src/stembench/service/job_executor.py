"""What a running job's work goes through: an executor a cancel stops at once, and the count
of the images it has scored so far (the job's progress)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stembench.client.compute_http import settle_future

__all__ = ["CancellableExecutor", "JobProgress"]


class CancellableExecutor(cf.Executor):
    """Wraps an executor so that a cancelled job stops at once, work in flight included.

    It hands out futures of its own. :meth:`stop` refuses later submissions as a broken
    pool, ends every future still out with :class:`concurrent.futures.BrokenExecutor`, and
    stops the inner executor (a local pool's worker processes are ended). The orchestrator
    treats a broken executor without a factory as retired, fails the shards it could not
    place, and returns: that is how a running job stops.
    """

    def __init__(self, inner: cf.Executor) -> None:
        self.inner = inner
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._out: dict[cf.Future[Any], cf.Future[Any]] = {}  # ours -> the inner executor's

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        outer: cf.Future[Any] = cf.Future()
        with self._lock:
            if self.stopped.is_set():
                raise cf.BrokenExecutor("job cancelled")
            inner = self.inner.submit(fn, *args, **kwargs)
            self._out[outer] = inner

        def copy(done: cf.Future[Any]) -> None:
            with self._lock:
                self._out.pop(outer, None)
            if done.cancelled():
                settle_future(outer, exc=cf.BrokenExecutor("job cancelled"))
            elif done.exception() is not None:
                settle_future(outer, exc=done.exception())
            else:
                settle_future(outer, result=done.result())

        inner.add_done_callback(copy)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)

    def stop(self) -> None:
        """Refuse every later submission, end the futures handed out, stop the work in flight."""
        from stembench.client.lifeline import give_up, stop_executor

        with self._lock:
            self.stopped.set()
            out, self._out = list(self._out.items()), {}
        for outer, inner in out:
            give_up(inner)
            settle_future(outer, exc=cf.BrokenExecutor("job cancelled"))
        stop_executor(self)


class JobProgress:
    """Counts images in a results file, reading only what was appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.count = path, 0, 0

    def images(self) -> int:
        if not self.path.exists():
            return self.count
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                self.offset += len(line)
                try:
                    shard = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if shard.get("ok"):
                    self.count += sum(1 for i in shard.get("images", []) if i.get("score"))
        return self.count
