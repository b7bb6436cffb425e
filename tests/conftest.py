"""Project-wide test set-up.

``tests/support`` holds importable helper modules (fault-injecting shard functions)
that worker processes must import by name, so it goes on ``sys.path`` (and on
``PYTHONPATH`` for processes started by other means).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# Never contact MDF from tests that load datasets (the foundry tests unset it themselves).
os.environ.setdefault("STEMBENCH_OFFLINE", "1")

SUPPORT = str(Path(__file__).parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (SUPPORT, os.environ.get("PYTHONPATH", "")) if p
)


import pytest  # noqa: E402

#: Fixtures of the local Globus Compute stack (tests/support/compute_stack/README.md); a
#: missing extra fails the run under STEMBENCH_REQUIRE_EXTRAS=1 (tests/support/require_extras.py).
pytest_plugins = ["compute_stack.plugin", "require_extras"]


@pytest.fixture(scope="session")
def mini_dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``mini`` benchmark preset, built once per test session (a few seconds)."""
    from stembench.dataset_publish.build import build_dataset

    path = tmp_path_factory.mktemp("mini-dataset") / "mini.h5"
    build_dataset(path, preset="mini", progress=False)
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo logging reconfiguration by upstream code a test runs.

    globus-compute-endpoint's CLI and ``Endpoint`` set logging up with ``dictConfig``, which
    disables every logger that existed before; later tests that read log records (``caplog``)
    would then see nothing.
    """
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {name: logger.disabled for name, logger in logging.Logger.manager.loggerDict.items()
                if isinstance(logger, logging.Logger)}
    yield
    root.handlers[:], root.level = handlers, level
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)
