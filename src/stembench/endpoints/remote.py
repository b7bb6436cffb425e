"""The one function stembench registers with Globus Compute, and what it may run.

An endpoint that lists allowed functions needs a single, stable function id. stembench
registers :func:`stembench_task` once per version; every remote call is that function with
an operation name and JSON arguments. The function is sent as source text
(``PureSourceTextInspect``) and its arguments as JSON (``JSONData``), which endpoints that
restrict ``allowed_serializers`` to those two accept. Its body imports the stembench
installed on the endpoint, so the code run is the endpoint's, not the caller's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from stembench.endpoints.shard import (
    describe_dataset,
    describe_identity,
    evaluate_shard,
    score_failed_shard,
)
from stembench.endpoints.twin_task import build_twin_dataset, remove_twin_dataset
from stembench.errors import InputError

__all__ = ["CODE_STRATEGY", "DATA_STRATEGY", "ENTRY_NAME", "OPERATIONS", "entry_source",
           "operation_name", "run_operation", "stembench_task"]

#: Import paths of the serialization strategies stembench tasks use.
CODE_STRATEGY = "globus_compute_sdk.serialize.PureSourceTextInspect"
DATA_STRATEGY = "globus_compute_sdk.serialize.JSONData"
ENTRY_NAME = "stembench_task"

#: Operations the registered function runs, by name.
OPERATIONS: dict[str, Callable[..., Any]] = {
    "evaluate_shard": evaluate_shard,
    "describe_dataset": describe_dataset,
    "describe_identity": describe_identity,
    "score_failed_shard": score_failed_shard,
    "build_twin_dataset": build_twin_dataset,
    "remove_twin_dataset": remove_twin_dataset,
}


def stembench_task(operation: str, arguments: list) -> object:
    """Run one stembench operation on the endpoint (the registered Compute function).

    Self-contained on purpose: the endpoint runs this source text in an empty namespace.
    """
    from stembench.endpoints.remote import run_operation

    return run_operation(operation, arguments)


def run_operation(operation: str, arguments: list[Any]) -> Any:
    """Call the operation named ``operation`` with positional ``arguments``."""
    function = OPERATIONS.get(operation)
    if function is None:
        raise InputError(f"unknown stembench operation {operation!r}; known: "
                         f"{sorted(OPERATIONS)}")
    return function(*arguments)


def operation_name(function: Callable[..., Any]) -> str:
    """The operation name of ``function``; :class:`InputError` if it is not one of them."""
    for name, known in OPERATIONS.items():
        if function is known:
            return name
    raise InputError(f"{getattr(function, '__qualname__', function)!s} is not a stembench "
                     f"operation the registered function runs ({sorted(OPERATIONS)}); "
                     "remote endpoints run only those")


def entry_source() -> str:
    """Source text of :func:`stembench_task`, as registered with Globus Compute."""
    return inspect.getsource(stembench_task)
