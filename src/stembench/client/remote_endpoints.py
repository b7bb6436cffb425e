"""Targets on Globus Compute endpoints: status check, per-task options, registered function.

:func:`remote_targets` is what ``stembench evaluate --endpoint UUID`` and the service use:
it checks every endpoint is online before anything is submitted, validates the per-task
options (``--endpoint-option KEY=VALUE``, sent as the Executor's ``user_endpoint_config``)
against the endpoint template's schema, and submits to stembench's registered function.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stembench._optional import require
from stembench.client.compute_functions import (
    RegisteredFunctionExecutor,
    compute_serializer,
    ensure_function_id,
)
from stembench.client.orchestrate import Target
from stembench.endpoints.endpoint_config import MAX_GPUS, EndpointSettings, user_config_schema
from stembench.endpoints.remote import DATA_STRATEGY
from stembench.errors import InputError, StembenchError

__all__ = ["EndpointOfflineError", "default_options_schema", "parse_endpoint_options",
           "remote_targets", "require_online"]


class EndpointOfflineError(StembenchError):
    """A Globus Compute endpoint is not online, so nothing was submitted to it."""


def default_options_schema() -> dict[str, Any]:
    """The user options stembench's HPC templates accept, at their widest bounds."""
    return user_config_schema("slurm-gpu", EndpointSettings(gpus=MAX_GPUS))


def _value(text: str) -> Any:
    """``2`` -> 2, ``true`` -> True, anything that is not a JSON scalar stays text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) else text


def parse_endpoint_options(pairs: Sequence[str], *, schema: dict[str, Any] | str | Path | None
                           = None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a ``user_endpoint_config``, checked against ``schema``.

    Parameters
    ----------
    pairs : sequence of str
        Options as given on the command line; numbers and booleans are typed.
    schema : dict, path or None
        The endpoint's ``user_config_schema.json`` (a dict or its path); ``None`` uses
        :func:`default_options_schema`.

    Raises
    ------
    InputError
        A malformed pair, a repeated key, or a value the schema refuses (nothing has been
        submitted then).
    """
    import jsonschema

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"endpoint option {pair!r}: expected KEY=VALUE")
        if key in options:
            raise InputError(f"endpoint option {key!r} given twice")
        options[key] = _value(raw.strip())
    if isinstance(schema, str | Path):
        try:
            schema = json.loads(Path(schema).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"endpoint option schema {schema}: cannot read it ({exc})") from exc
    checked = schema if isinstance(schema, dict) else default_options_schema()
    errors = sorted(jsonschema.Draft202012Validator(checked).iter_errors(options), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "options"
        raise InputError(f"endpoint option {where}: {errors[0].message} (allowed: "
                         f"{sorted(checked.get('properties', {}))})")
    return options


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
    state = status.get("status")
    if state != "online":
        raise EndpointOfflineError(
            f"Globus Compute endpoint {endpoint_id} is {state or 'in an unknown state'}; "
            "nothing was submitted. Start it (globus-compute-endpoint start NAME) or ask its "
            "administrator, then run the same command again.")
    return status


def remote_targets(endpoint_ids: Sequence[str], *, client: Any = None,
                   user_endpoint_config: dict[str, Any] | None = None,
                   amqp_port: int | None = None, https_only: bool = False,
                   function_id: str | None = None, max_in_flight: int = 8) -> list[Target]:
    """One :class:`Target` per endpoint, each submitting to stembench's registered function.

    Parameters
    ----------
    endpoint_ids : sequence of str
        Globus Compute endpoint UUIDs; each must be online.
    client : globus_compute_sdk.Client or None
        The Compute client (``None``: the user's Globus login).
    user_endpoint_config : dict or None
        Per-task options for the endpoint's user template.
    amqp_port : int or None
        Port of the results queue (443 where 5671 is blocked); AMQP executors only.
    https_only : bool
        Poll results over HTTPS (:class:`~stembench.client.compute_http.PollingComputeExecutor`).
    function_id : str or None
        The registered function; ``None``: the id kept for this stembench version
        (registered on first use).
    max_in_flight : int
        Shards submitted to each endpoint at once.

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
    function_id = function_id or ensure_function_id(client)
    def build(endpoint_id: str) -> Any:
        if https_only:
            return PollingComputeExecutor(endpoint_id, client=client,
                                          user_endpoint_config=user_endpoint_config)
        return globus_executor(endpoint_id, client=client, amqp_port=amqp_port,
                               user_endpoint_config=user_endpoint_config,
                               serializer=compute_serializer(),
                               result_serializers=[DATA_STRATEGY])

    return [Target(endpoint_id, RegisteredFunctionExecutor(
        build(endpoint_id), function_id, rebuild=functools.partial(build, endpoint_id)),
        max_in_flight=max_in_flight) for endpoint_id in endpoint_ids]
