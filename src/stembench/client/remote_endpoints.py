"""Targets on Globus Compute endpoints: status check, per-task options, registered function.

:func:`remote_targets` is what ``stembench evaluate --endpoint UUID`` and the service use:
it checks every endpoint is online before anything is submitted (and watches it while the
run waits: :mod:`stembench.client.endpoint_watch`), validates the per-task
options (``--endpoint-option KEY=VALUE``, sent as the Executor's ``user_endpoint_config``)
against the schema the endpoint publishes (or ``--endpoint-schema``), adds the endpoint's
own per-task limit where the schema has it, and submits to stembench's registered function.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.client.compute_functions import (
    RegisteredFunctionExecutor,
    compute_serializer,
    ensure_function_id,
)
from stembench.client.endpoint_watch import (
    DEFAULT_STATUS_INTERVAL_S,
    RESTART_HINT,
    EndpointWatch,
    bounded_status_client,
)
from stembench.client.orchestrate import Target
from stembench.client.scheduler import describe_error
from stembench.endpoints.endpoint_config import (
    MAX_GPUS,
    TASK_TIMEOUT_OPTION,
    EndpointSettings,
    list_templates,
    user_config_schema,
)
from stembench.endpoints.remote import DATA_STRATEGY
from stembench.errors import InputError, StembenchError

__all__ = ["EndpointLimitWarning", "EndpointOfflineError", "check_endpoint_options",
           "endpoint_options", "parse_endpoint_options", "published_schema", "remote_targets",
           "require_online"]


class EndpointOfflineError(StembenchError):
    """A Globus Compute endpoint is not online, so nothing was submitted to it."""


class EndpointLimitWarning(UserWarning):
    """The endpoint will not stop a task that runs too long (no ``task_timeout_s`` sent)."""


def _value(text: str, declared: Any = None) -> Any:
    """A command-line value typed as the schema declares it.

    A ``string`` property keeps the text as given (``account=12345`` stays ``"12345"``);
    otherwise ``2`` -> 2, ``true`` -> True, and anything that is not a JSON scalar stays text.
    """
    kinds = {declared} if isinstance(declared, str) else set(declared or ())
    if "string" in kinds:
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) else text


def _read_schema(path: str | Path) -> dict[str, Any]:
    """The schema in file ``path``, or the one a stembench template (``slurm-gpu``) publishes.

    A template's schema at its widest bounds (16 GPUs): the endpoint checks the real ones.
    """
    if str(path) in list_templates() and not Path(path).exists():
        return user_config_schema(str(path), EndpointSettings(gpus=MAX_GPUS))
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"endpoint option schema {path}: cannot read it ({exc})") from exc
    if not isinstance(schema, dict):
        raise InputError(f"endpoint option schema {path}: expected a JSON object")
    return schema


def parse_endpoint_options(pairs: Sequence[str], *, schema: dict[str, Any] | str | Path | None
                           ) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a ``user_endpoint_config``, checked against ``schema``.

    Parameters
    ----------
    pairs : sequence of str
        Options as given on the command line; each value is typed as the schema declares
        its property (text where it says ``string``), else numbers and booleans are typed.
    schema : dict, path or None
        The endpoint's ``user_config_schema.json`` (a dict or its path); ``None``: the
        endpoint publishes none, so the options go unchecked (the endpoint checks them).

    Raises
    ------
    InputError
        A malformed pair, a repeated key, or a value the schema refuses (nothing has been
        submitted then).
    """
    checked = _read_schema(schema) if isinstance(schema, str | Path) else schema
    declared = (checked or {}).get("properties") or {}
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"endpoint option {pair!r}: expected KEY=VALUE")
        if key in options:
            raise InputError(f"endpoint option {key!r} given twice")
        options[key] = _value(raw.strip(), (declared.get(key) or {}).get("type"))
    return check_endpoint_options(options, checked)


def check_endpoint_options(options: dict[str, Any], schema: dict[str, Any] | None
                           ) -> dict[str, Any]:
    """``options`` when ``schema`` (``None``: no schema, no check) accepts them.

    Raises
    ------
    InputError
        The first thing the schema refuses, with the options it allows.
    """
    import jsonschema

    if schema is None:
        return dict(options)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(options), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "options"
        raise InputError(f"endpoint option {where}: {errors[0].message} (allowed: "
                         f"{sorted(schema.get('properties', {}))})")
    return dict(options)


def published_schema(client: Any, endpoint_id: str) -> dict[str, Any] | None:
    """The ``user_config_schema`` the endpoint published, or ``None`` when it has none.

    An endpoint sends its schema with its metadata when it registers
    (globus_compute_endpoint/endpoint/core_endpoint.py:290-305);
    ``Client.get_endpoint_metadata`` reads it back (globus_compute_sdk/sdk/client.py:709-726).
    Metadata that cannot be read (a 403 for a user who does not own the endpoint) also gives
    ``None``, with a warning.
    """
    globus_sdk = require("globus_sdk", extra="compute", purpose="Remote evaluation")
    try:
        metadata = dict(client.get_endpoint_metadata(endpoint_id))
    except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
        warnings.warn(f"Globus Compute endpoint {endpoint_id}: its metadata cannot be read "
                      f"({describe_error(exc)}), so its option schema is unknown",
                      stacklevel=2)
        return None
    schema = metadata.get("user_config_schema")
    return schema if isinstance(schema, dict) and schema else None


def endpoint_options(client: Any, endpoint_id: str,
                     given: Sequence[str] | Mapping[str, Any] | None, *,
                     schema: dict[str, Any] | str | Path | None = None,
                     task_timeout_s: float | None = None) -> dict[str, Any] | None:
    """The ``user_endpoint_config`` for ``endpoint_id``: options checked, limit added.

    Parameters
    ----------
    client : globus_compute_sdk.Client
        Reads the endpoint's published schema when ``schema`` is ``None``.
    endpoint_id : str
        The endpoint's UUID.
    given : sequence of str, mapping or None
        ``KEY=VALUE`` pairs (see :func:`parse_endpoint_options`) or options already typed
        (a service job's JSON).
    schema : dict, path or None
        Overrides the published schema (``--endpoint-schema``): a schema, its file or the
        name of the stembench template the endpoint was written from (``slurm-gpu``).
    task_timeout_s : float or None
        The client's task deadline; where the schema has ``task_timeout_s`` (stembench's
        templates), :func:`remote_task_limit_s` of it is sent, so that the endpoint stops a
        task before the client gives it up and sends it again; elsewhere (a schema without
        it, or none known) an :class:`EndpointLimitWarning` says the endpoint will not.

    Returns
    -------
    dict or None
        ``None`` when there is nothing to send.
    """
    if not given and task_timeout_s is None:
        return None
    checked = _read_schema(schema) if isinstance(schema, str | Path) else schema
    if checked is None:
        checked = published_schema(client, endpoint_id)
        if checked is None and given:
            keys = sorted(given) if isinstance(given, Mapping) else sorted(
                p.partition("=")[0] for p in given)
            warnings.warn(f"Globus Compute endpoint {endpoint_id} publishes no option schema: "
                          f"options {keys} are sent unchecked (the endpoint checks them when "
                          "it starts)", stacklevel=2)
    options = (dict(given) if isinstance(given, Mapping)
               else parse_endpoint_options(given or (), schema=checked))
    properties = (checked or {}).get("properties") or {}
    if task_timeout_s is not None and TASK_TIMEOUT_OPTION in properties:
        options.setdefault(TASK_TIMEOUT_OPTION, remote_task_limit_s(task_timeout_s))
    elif task_timeout_s is not None:
        warnings.warn(EndpointLimitWarning(
            f"Globus Compute endpoint {endpoint_id}: its option schema has no "
            f"{TASK_TIMEOUT_OPTION}{' (unknown)' if checked is None else ''}, so it will not "
            "stop a task that runs too long (the client gives the task up after its "
            "deadline); for a stembench endpoint give --endpoint-schema "
            f"{'|'.join(list_templates())} or its user_config_schema.json"), stacklevel=2)
    return check_endpoint_options(options, checked) or None


def remote_task_limit_s(task_deadline_s: float) -> int:
    """The endpoint's per-task limit for a client deadline: 90 % of it, whole seconds, >= 1.

    The client's deadline runs from submission, the endpoint's from the task's start, so the
    endpoint's must be shorter: a task that ran for its whole limit is stopped there (its
    failure comes back) before the client gives it up and retries it, and no duplicate runs
    beside the original. Time in the endpoint's queue (a Slurm block waiting for a node)
    counts against the client's deadline only, so a task that waited long in the queue can
    still be given up by the client while it runs; that copy then stops before its next model
    call, and one still queued stops when it starts (:mod:`stembench.endpoints.expiry`).
    """
    return max(1, math.floor(task_deadline_s * 0.9))


def require_online(client: Any, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's status document; :class:`EndpointOfflineError` unless it is online."""
    globus_sdk = require("globus_sdk", extra="compute", purpose="Remote evaluation")
    try:
        status = dict(client.get_endpoint_status(endpoint_id))
    except globus_sdk.GlobusAPIError as exc:
        raise EndpointOfflineError(
            f"Globus Compute endpoint {endpoint_id}: status check refused (HTTP "
            f"{exc.http_status}: {exc.message}); check the UUID and that you may use it"
        ) from exc
    except globus_sdk.NetworkError as exc:  # after globus-sdk's own retries
        raise EndpointOfflineError(
            f"Globus Compute endpoint {endpoint_id}: cannot reach the Globus Compute service "
            f"to check it ({type(exc).__name__}); check this machine's network and retry"
        ) from exc
    state = status.get("status")
    if state != "online":
        raise EndpointOfflineError(
            f"Globus Compute endpoint {endpoint_id} is {state or 'in an unknown state'}; "
            "nothing was submitted. Start it (globus-compute-endpoint start NAME) or ask its "
            "administrator, then run the same command again.")
    return status


def remote_targets(endpoint_ids: Sequence[str], *, client: Any = None,
                   options: Sequence[str] | Mapping[str, Any] | None = None,
                   option_schema: dict[str, Any] | str | Path | None = None,
                   task_timeout_s: float | None = None,
                   amqp_port: int | None = None, https_only: bool = False,
                   function_id: str | None = None, max_in_flight: int = 8,
                   status_interval_s: float | None = DEFAULT_STATUS_INTERVAL_S,
                   offline_hint: str = RESTART_HINT) -> list[Target]:
    """One :class:`Target` per endpoint, each submitting to stembench's registered function.

    Parameters
    ----------
    endpoint_ids : sequence of str
        Globus Compute endpoint UUIDs; each must be online.
    client : globus_compute_sdk.Client or None
        The Compute client (``None``: the user's Globus login).
    options : sequence of str, mapping or None
        Per-task options for the endpoint's user template: ``KEY=VALUE`` pairs or typed
        values, checked against each endpoint's schema (:func:`endpoint_options`).
    option_schema : dict, path or None
        The schema to check them against instead of the one each endpoint publishes.
    task_timeout_s : float or None
        The task deadline, also sent as the endpoint's own per-task limit where its schema
        has ``task_timeout_s``.
    amqp_port : int or None
        Port of the results queue (443 where 5671 is blocked); AMQP executors only.
    https_only : bool
        Poll results over HTTPS (:class:`~stembench.client.compute_http.PollingComputeExecutor`).
    function_id : str or None
        The registered function; ``None``: the id kept for this stembench version
        (registered on first use).
    max_in_flight : int
        Shards submitted to each endpoint at once.
    status_interval_s : float or None
        Seconds between two status checks of each endpoint during the run
        (:class:`~stembench.client.endpoint_watch.EndpointWatch`): an endpoint that goes
        offline fails its unfinished shards at once instead of at their deadlines.
        ``None``: not watched.
    offline_hint : str
        What the line of an endpoint that went offline tells the reader to do (default:
        restart it and run the same command).

    Notes
    -----
    An endpoint's executor that stopped after a failed submission is rebuilt on the next
    submit (:class:`~stembench.client.compute_functions.RegisteredFunctionExecutor`), so a
    refused batch fails only its own shards, which are retried with backoff.
    """
    sdk = require("globus_compute_sdk", extra="compute", purpose="Remote evaluation")
    from stembench.client.compute_http import PollingComputeExecutor
    from stembench.client.executors import globus_executor

    if amqp_port is not None and amqp_port not in (443, 5671, 5672):
        raise InputError(f"amqp port must be 443, 5671 or 5672, got {amqp_port}")
    client = client or sdk.Client()
    client.fx_serializer = compute_serializer()
    for endpoint_id in endpoint_ids:
        require_online(client, endpoint_id)
    configs = {endpoint_id: endpoint_options(client, endpoint_id, options, schema=option_schema,
                                             task_timeout_s=task_timeout_s)
               for endpoint_id in endpoint_ids}
    function_id = function_id or ensure_function_id(client)

    def build(endpoint_id: str) -> Any:
        if https_only:
            return PollingComputeExecutor(endpoint_id, client=client,
                                          user_endpoint_config=configs[endpoint_id])
        return globus_executor(endpoint_id, client=client, amqp_port=amqp_port,
                               user_endpoint_config=configs[endpoint_id],
                               serializer=compute_serializer(),
                               result_serializers=[DATA_STRATEGY])

    def target(endpoint_id: str) -> Target:
        watch = None if status_interval_s is None else EndpointWatch(
            bounded_status_client(client), endpoint_id, interval_s=status_interval_s,
            hint=offline_hint)
        executor = build(endpoint_id)  # before the watch starts: a failed build leaves none
        return Target(endpoint_id, RegisteredFunctionExecutor(
            executor, function_id, rebuild=functools.partial(build, endpoint_id),
            watch=None if watch is None else watch.start()), max_in_flight=max_in_flight,
            gone=None if watch is None else watch.gone, features=None)  # its listing says

    return [target(endpoint_id) for endpoint_id in endpoint_ids]
