"""pytest plugin: with ``STEMBENCH_REQUIRE_EXTRAS=1`` a test skipped because a module is
missing fails instead.

CI (``scripts/test.sh``) sets it for the default environment, which holds every extra the
tests exercise: there a missing extra is a broken set-up, not a reason to pass. Modules of
the ``foundry`` extra are the exception: they live in their own environment
(``.ci/foundry-env.sh``), where their tests run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRE_EXTRAS_ENV = "STEMBENCH_REQUIRE_EXTRAS"
#: Top-level modules of the foundry extra (foundry-ml, mdf-cli): the Foundry environment's.
OWN_ENVIRONMENT = ("foundry", "mdf")
_MISSING = re.compile(r"could not import '([\w.]+)'")


def _missing_module(report: Any) -> str | None:
    """The module whose absence skipped this report, when that is what skipped it."""
    if not report.skipped or os.environ.get(REQUIRE_EXTRAS_ENV) != "1":
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    found = _MISSING.search(reason)
    if found is None or found.group(1).split(".")[0] in OWN_ENVIRONMENT:
        return None
    return found.group(1)


def _fail(report: Any, module: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{REQUIRE_EXTRAS_ENV}=1 and {module!r} is missing: install the "
                       "extras the tests need (bash scripts/bootstrap.sh --test)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    module = _missing_module(report)
    if module is not None:
        _fail(report, module)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    module = _missing_module(report)
    if module is not None:
        _fail(report, module)
