"""One line for a task that failed on a Globus Compute endpoint, traceback or notice."""

from __future__ import annotations

import pytest

pytest.importorskip("globus_compute_sdk")

from globus_compute_sdk.errors import TaskExecutionFailed

from stembench.client.scheduler import describe_error


def test_an_endpoints_failure_notice_is_kept_whole_on_one_line() -> None:
    """The multi-user endpoint's notice for an identity it cannot map, as it builds it
    (globus_compute_endpoint/endpoint/core_endpoint.py:690-693, 746-753): the reason is
    its first line, the identity the lines after."""
    identity_for_log = ("\n  Globus effective identity: 1b2c"
                        "\n  Globus username: carol@example.org")
    notice = ("Identity failed to map to a local user name."
              f"  (LookupError) {identity_for_log}")
    line = describe_error(TaskExecutionFailed(notice))
    assert line == ("TaskExecutionFailed: Identity failed to map to a local user name.  "
                    "(LookupError); Globus effective identity: 1b2c; Globus username: "
                    "carol@example.org")


def test_a_remote_traceback_reads_as_its_last_line() -> None:
    traceback = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
                 "    load()\nRuntimeError: CUDA out of memory on cuda:0\n")
    assert describe_error(TaskExecutionFailed(traceback)) == (
        "TaskExecutionFailed: RuntimeError: CUDA out of memory on cuda:0")
