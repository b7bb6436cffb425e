"""stembench's registered Globus Compute function and the user's stembench configuration.

The function (:func:`stembench.endpoints.remote.stembench_task`) is registered once; its
id is kept, with the SHA-256 of the registered source, in the user's configuration file
(``$STEMBENCH_CONFIG``, default ``$XDG_CONFIG_HOME/stembench/config.json``) and shown by
``stembench endpoint function``. An administrator puts that id in the endpoint's
``allowed_functions``; users of that endpoint adopt the same id with
``stembench endpoint function --use UUID``. A later stembench version whose function
source is the same keeps the id; one whose source differs refuses to register a new
function silently (an endpoint's ``allowed_functions`` would refuse it: 403 on every
task) and says how to adopt the new id. Tasks are submitted to the id by
:class:`RegisteredFunctionExecutor`, with arguments serialized as JSON.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from stembench._optional import require
from stembench._version import __version__
from stembench.atomic import atomic_write_text
from stembench.endpoints.remote import (
    CODE_STRATEGY,
    DATA_STRATEGY,
    ENTRY_NAME,
    entry_source,
    operation_name,
)
from stembench.errors import InputError

__all__ = ["RegisteredFunctionExecutor", "compute_serializer", "config_path",
           "ensure_function_id", "register_function", "source_digest", "stored_function_id",
           "use_function_id"]


def config_path() -> Path:
    """The user's stembench configuration file."""
    explicit = os.environ.get("STEMBENCH_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stembench" / "config.json"


def _read_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the stembench configuration ({exc}); fix or "
                         "remove the file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _write_config(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def source_digest() -> str:
    """SHA-256 of what is registered: the function's name and source text."""
    return hashlib.sha256(f"{ENTRY_NAME}\n{entry_source()}".encode()).hexdigest()


def _release_order(version: str) -> tuple[int, Any]:
    """Sort key of a stembench version: release order (0.9.0 before 0.10.0); a key that is
    no version (a hand-edited file) sorts before every version, by its text."""
    try:
        return 1, Version(version)
    except InvalidVersion:
        return 0, version


def _kept() -> dict[str, Any]:
    """The kept ids by stembench version, oldest version first."""
    entries = _read_config().get("compute_functions", {})
    return {version: entries[version] for version in sorted(entries, key=_release_order)
            if isinstance(entries[version], dict) and "function_id" in entries[version]}


def stored_function_id(version: str | None = None) -> str | None:
    """The function id kept for stembench ``version``, or ``None``.

    An id kept for another version counts when it was kept for the same registered source
    (:func:`source_digest`); the id kept for ``version`` (default: this one) always does.
    """
    version, kept = version or __version__, _kept()
    if version in kept:
        return str(kept[version]["function_id"])
    same = [str(e["function_id"]) for e in kept.values()
            if e.get("source_sha256") == source_digest()]
    return same[-1] if same else None


def use_function_id(function_id: str, version: str | None = None) -> str:
    """Keep ``function_id`` (e.g. the one an endpoint allows) for stembench ``version``.

    Kept with :func:`source_digest`: later versions sending the same source use it too.
    """
    try:
        canonical = str(uuid.UUID(function_id))
    except ValueError as exc:
        raise InputError(f"function id {function_id!r} is not a UUID") from exc
    data = _read_config()
    data.setdefault("compute_functions", {})[version or __version__] = {"function_id": canonical,
                                                         "source_sha256": source_digest()}
    _write_config(data)
    return canonical


def register_function(client: Any, *, public: bool = False, group: str | None = None) -> str:
    """Register stembench's function with ``client`` and keep its id; return the id.

    Parameters
    ----------
    client : globus_compute_sdk.Client
        A logged-in Compute client.
    public, group
        Let everyone, or members of the Globus group ``group``, run the function (an
        administrator registering it for the users of a shared endpoint).
    """
    function_id = client.register_source_code(
        entry_source(), ENTRY_NAME, public=public, group=group,
        description=f"stembench {__version__}: evaluate models on STEM images")
    return use_function_id(str(function_id))


def ensure_function_id(client: Any) -> str:
    """The kept function id of this stembench version, registering it on first use.

    Raises
    ------
    InputError
        Only ids kept for other stembench versions with another (or unrecorded) source:
        nothing is registered, since an endpoint allowing only the kept id would refuse a
        new one.
    """
    found = stored_function_id()
    if found is not None:
        return found
    if kept := _kept():
        version, entry = list(kept.items())[-1]
        raise InputError(
            f"the Globus Compute function kept for stembench {version} "
            f"({entry['function_id']}) is not the one stembench {__version__} sends (its "
            "source changed), and an endpoint that allows only the old id refuses the new "
            "one: ask the endpoint's administrator for this version's id and run `stembench "
            "endpoint function --use <ID>`, or register yours with `stembench endpoint "
            "function --register`")
    return register_function(client)


def compute_serializer() -> Any:
    """``ComputeSerializer`` sending source-text code and JSON data, reading JSON only.

    The allowlist (globus_compute_sdk/serialize/facade.py:150-169) makes the client refuse
    a result the endpoint pickled instead of unpickling endpoint data: results are read
    with this serializer both by ``Client.get_batch_result`` (sdk/client.py:357-360) and by
    the Executor's result watcher (sdk/executor.py:1558-1583).
    """
    serialize = require("globus_compute_sdk.serialize", extra="compute",
                        purpose="Remote evaluation")
    return serialize.ComputeSerializer(strategy_code=CODE_STRATEGY, strategy_data=DATA_STRATEGY,
                                       allowed_deserializer_types=[CODE_STRATEGY, DATA_STRATEGY])


class RegisteredFunctionExecutor(cf.Executor):
    """Submit stembench operations to the registered function through a Compute executor.

    Parameters
    ----------
    inner : executor
        ``globus_compute_sdk.Executor`` or
        :class:`~stembench.client.compute_http.PollingComputeExecutor` bound to an endpoint.
    function_id : str
        The registered function's id.
    rebuild : callable or None
        Builds a new ``inner`` when the current one stopped (``None``: never rebuilt).
    watch : EndpointWatch or None
        The endpoint's status watch (:mod:`stembench.client.endpoint_watch`), closed with
        this executor.

    Notes
    -----
    ``submit(fn, *args)`` accepts only the operations of
    :data:`stembench.endpoints.remote.OPERATIONS`, with positional JSON arguments; anything
    else raises :class:`~stembench.errors.InputError` before a request is made.

    ``globus_compute_sdk.Executor`` stops for good when one batch fails (globus-sdk's
    transport retries exhausted, or any 4xx: sdk/executor.py:1126-1140 shut it down), and
    every later submit raises ``RuntimeError`` (executor.py:683-685). With ``rebuild``, such
    a submit is placed on a new executor instead; the stopped one keeps delivering the
    results of tasks it had already sent.
    """

    def __init__(self, inner: Any, function_id: str, *,
                 rebuild: Callable[[], Any] | None = None, watch: Any = None) -> None:
        self.inner, self.function_id, self.rebuild = inner, function_id, rebuild
        self.watch = watch
        self.retired: list[Any] = []
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Send ``fn(*args)`` as the registered function's operation ``fn``."""
        if kwargs:
            raise InputError(f"remote stembench operations take positional arguments only, "
                             f"got keywords {sorted(kwargs)}")
        call = (operation_name(fn), list(args))
        try:
            future: cf.Future[Any] = self.inner.submit_to_registered_function(
                self.function_id, args=call)
        except RuntimeError:
            if self.rebuild is None or self._closed:
                raise
            self.inner.shutdown(wait=False, cancel_futures=True)
            self.retired.append(self.inner)
            self.inner = self.rebuild()
            future = self.inner.submit_to_registered_function(self.function_id, args=call)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped executor down; ``cancel_futures`` also abandons sent tasks.

        Abandoned tasks no longer hold the process at exit (see
        :func:`~stembench.client.executors.abandon_watched_futures`).
        """
        from stembench.client.executors import abandon_watched_futures

        self._closed = True
        if self.watch is not None:
            self.watch.close()
        self.inner.shutdown(wait=wait and not cancel_futures, cancel_futures=cancel_futures)
        if cancel_futures:
            for executor in (*self.retired, self.inner):
                abandon_watched_futures(executor)
