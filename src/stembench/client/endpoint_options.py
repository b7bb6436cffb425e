"""The endpoint options of every command that runs on Globus Compute endpoints, defined once.

``stembench evaluate`` and ``stembench assess`` take the same options (:data:`HttpsOnly`,
:data:`AmqpPort`, :data:`EndpointOption`, :data:`EndpointSchema`, :data:`TaskDeadline`,
:data:`StatusInterval`) and build their targets the same way (:func:`endpoint_targets`), so an
endpoint reached by one command is reached by the other with the same user endpoint
configuration (the same user endpoint, the same task limit).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stembench.client.endpoint_watch import DEFAULT_STATUS_INTERVAL_S
from stembench.client.target_calls import DEFAULT_TASK_DEADLINE_S

if TYPE_CHECKING:
    from stembench.client.orchestrate import Target

__all__ = ["AmqpPort", "EndpointOption", "EndpointSchema", "HttpsOnly", "RemoteSettings",
           "StatusInterval", "TaskDeadline", "endpoint_targets"]

HttpsOnly = Annotated[bool, typer.Option(
    "--https-only", help="Reach endpoints by HTTPS polling instead of AMQP (for hosts whose "
    "firewall blocks AMQP ports).")]
AmqpPort = Annotated[int | None, typer.Option(
    help="AMQP port of the results queue: 443 where 5671 is blocked.")]
EndpointOption = Annotated[list[str] | None, typer.Option(
    help="Per-task endpoint option KEY=VALUE (repeat), e.g. account=abc, walltime=00:30:00, "
    "gpus=2; checked against the template schema first.")]
EndpointSchema = Annotated[Path | None, typer.Option(
    help="A user_config_schema.json to check --endpoint-option against, or the stembench "
    "template the endpoint was written from (slurm-gpu, pbs-gpu, workstation-gpu); default: "
    "the schema the endpoint publishes.")]
TaskDeadline = Annotated[float, typer.Option(
    help="Seconds a task may take from submission to result, time queued on the endpoint "
    "(Slurm) included; then its shard fails and is retried. Endpoints made by stembench stop "
    "a task that ran 90 % of this long.")]
StatusInterval = Annotated[float, typer.Option(
    min=0.1, help="Seconds between two status checks of each endpoint during the run; an "
    "endpoint offline in two checks in a row fails its unfinished shards at once (finished "
    "ones are kept).")]


@dataclass(frozen=True)
class RemoteSettings:
    """The endpoint options of a command, as given.

    Attributes
    ----------
    https_only : bool
        Poll results over HTTPS.
    amqp_port : int or None
        Port of the results queue.
    options : tuple of str
        ``KEY=VALUE`` per-task endpoint options.
    schema : pathlib.Path or None
        Schema (or stembench template name) to check ``options`` against.
    task_deadline_s : float
        Seconds a task may take from submission to result.
    status_interval_s : float
        Seconds between two status checks of each endpoint.
    """

    https_only: bool = False
    amqp_port: int | None = None
    options: tuple[str, ...] = ()
    schema: Path | None = None
    task_deadline_s: float = DEFAULT_TASK_DEADLINE_S
    status_interval_s: float = DEFAULT_STATUS_INTERVAL_S


def endpoint_targets(endpoints: Sequence[str], settings: RemoteSettings) -> list[Target]:
    """One target per endpoint, as every command builds them.

    Options are checked against ``settings.schema`` before any request; each warning of the
    target set-up (an endpoint's limit, options sent unchecked) is printed as one line.

    Parameters
    ----------
    endpoints : sequence of str
        Globus Compute endpoint UUIDs.
    settings : RemoteSettings
        The command's endpoint options.

    Returns
    -------
    list of Target
        See :func:`~stembench.client.remote_endpoints.remote_targets`.
    """
    from stembench.client.remote_endpoints import parse_endpoint_options, remote_targets

    if settings.schema is not None:  # refused before any request
        parse_endpoint_options(list(settings.options), schema=settings.schema)
    with warnings.catch_warnings(record=True) as caught:  # each one line, not a traceback
        warnings.simplefilter("always")
        targets = remote_targets(endpoints, options=list(settings.options),
                                 option_schema=settings.schema,
                                 task_timeout_s=settings.task_deadline_s,
                                 amqp_port=settings.amqp_port, https_only=settings.https_only,
                                 status_interval_s=settings.status_interval_s)
    for caught_warning in caught:
        typer.echo(f"Warning: {caught_warning.message}", err=True)
    return targets
