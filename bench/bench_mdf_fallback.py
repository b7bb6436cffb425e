"""Time a cache miss spends on MDF before the local build, when MDF cannot be used.

Four stand-ins, all local (no network), the ones the tests use
(``tests/foundry/mdf_stand_ins.py``): a server that accepts the connection and never
answers, a port that refuses connections, a host name that never resolves (``.invalid``,
RFC 6761), and a resolver that never answers for the host name. For each,
``$MDF_API_URL`` points the real MDF source
(:func:`stembench.dataset_publish.mdf.source.mdf_source`, with the real
``LOOKUP_BUDGET_S``) at it, and the time from the call to its return (when
``stembench.load`` would start the local build) is measured, with the one line it logged.

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_mdf_fallback.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from stembench.dataset_publish.mdf import source
from stembench.dataset_publish.storage.cache import CacheRequest

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "foundry"))
from mdf_stand_ins import STUCK_HOST, UNRESOLVABLE, closed_port_url, silent_server, stuck_resolver


@contextmanager
def _silent() -> Iterator[str]:
    with silent_server() as (url, _accepted):
        yield url


@contextmanager
def _refusing() -> Iterator[str]:
    yield closed_port_url()


@contextmanager
def _unresolvable() -> Iterator[str]:
    yield UNRESOLVABLE


@contextmanager
def _stuck_resolver() -> Iterator[str]:
    with stuck_resolver():
        yield f"http://{STUCK_HOST}"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


def _once(stand_in: Callable[[], AbstractContextManager[str]], folder: Path
          ) -> tuple[float, list[str]]:
    handler = _Lines()
    logging.getLogger("stembench").addHandler(handler)
    source._FAILED.clear()  # each run meets the dead service afresh
    try:
        with stand_in() as url:
            os.environ["MDF_API_URL"] = url
            request = CacheRequest("atom-locating-benchmark", "0.0.bench", "mini",
                                   folder / f"{time.monotonic_ns()}.h5")
            start = time.perf_counter()
            placed = source.mdf_source(request)
            elapsed = time.perf_counter() - start
    finally:
        logging.getLogger("stembench").removeHandler(handler)
    assert not placed
    return elapsed, handler.lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("stembench").setLevel(logging.INFO)
    os.environ.pop("STEMBENCH_OFFLINE", None)
    print(f"LOOKUP_BUDGET_S = {source.LOOKUP_BUDGET_S} s; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        for name, stand_in in (("hanging (accepts, never answers)", _silent),
                               ("refusing connections", _refusing),
                               ("unresolvable host", _unresolvable),
                               ("resolver that never answers", _stuck_resolver)):
            times: list[float] = []
            lines: list[str] = []
            for _ in range(args.repeats):
                elapsed, lines = _once(stand_in, Path(folder))
                times.append(elapsed)
            print(f"{name}: median {statistics.median(times):.2f} s, range "
                  f"{min(times):.2f}-{max(times):.2f} s over {args.repeats} runs")
            for line in lines:
                print(f"    {line}")


if __name__ == "__main__":
    main()
