"""Watching a Globus Compute endpoint while a run waits for its results.

Globus Compute never tells a waiting client that an endpoint stopped: its tasks simply
never finish, and the client would notice only at its task deadlines (hours). An
:class:`EndpointWatch` asks the web service for the endpoint's status
(``Client.get_endpoint_status``) every ``interval_s`` on a thread of its own. The service
derives that status from the endpoint's heartbeats: an endpoint that stops says so in a last
heartbeat, one that dies stops sending them; either way it is reported ``offline``.

Decisions, and why:

- ``offline`` in :data:`OFFLINE_ANSWERS` answers in a row (one interval apart) gives the
  endpoint up: a restart (stop, then start) is not taken for a stop, and the tasks it still
  holds in its queue would run after it. An ``online`` answer in between keeps the run going.
- A status call that fails (no answer within its timeout, a 5xx, a 401 of an expired token)
  never gives the endpoint up, however often: the status route is the web service, not the
  endpoint, and results travel by another road (AMQP), so giving up would throw away work a
  healthy endpoint is doing. After :data:`ERRORS_BEFORE_WARNING` failures in a row one
  warning says the watch is blind; the task deadline still bounds the wait.
- Each call makes one attempt bounded by ``timeout_s`` (globus-sdk's defaults: 60 s per
  request and up to 5 retries) on a client of its own (:func:`bounded_status_client`), so
  neither a hung route nor a submission holding the user's client delays it, and it never
  starts an interactive login.
"""

from __future__ import annotations

import copy
import threading
import warnings
from typing import Any

from stembench._optional import require
from stembench.client.globus_transport import bounded_transport
from stembench.client.scheduler import describe_error
from stembench.errors import InputError

__all__ = ["DEFAULT_STATUS_INTERVAL_S", "ERRORS_BEFORE_WARNING", "OFFLINE_ANSWERS",
           "RESTART_HINT", "STATUS_TIMEOUT_S", "EndpointWatch", "bounded_status_client"]

#: Seconds between two status checks of an endpoint during a run.
DEFAULT_STATUS_INTERVAL_S = 15.0
#: Seconds one status call may take (one attempt, no retry).
STATUS_TIMEOUT_S = 10.0
#: ``offline`` answers in a row that give an endpoint up.
OFFLINE_ANSWERS = 2
#: Failed status calls in a row before one warning that the endpoint cannot be watched.
ERRORS_BEFORE_WARNING = 3
#: What the line of an endpoint that went offline tells a command-line user to do.
RESTART_HINT = "start it again (globus-compute-endpoint start NAME), then run the same command"


def bounded_status_client(client: Any, *, timeout_s: float = STATUS_TIMEOUT_S) -> Any:
    """A copy of the Compute ``client`` whose ``get_endpoint_status`` makes one attempt.

    ``globus_compute_sdk.Client`` builds its web client without a transport or retry
    setting of ours and serializes every call on one lock (sdk/client.py:141-149, 225-241),
    which a batch submission holds while globus-sdk retries it. The copy has its own lock and
    its own ``ComputeClientV2`` (same service address and credentials) with
    ``RequestsTransport(http_timeout=timeout_s)`` and ``RetryConfig(max_retries=0)``
    (globus_sdk/transport/requests.py, retry_config.py). Neither the copy nor its web client
    has the user's ``GlobusApp``: the web client has the authorizer the app gives when the
    copy is made (on the calling thread), so a missing, expired or refused token fails the
    call (401) rather than starting a login (the app's token-validation handler, or
    ``_client_gares_handler``, sdk/client.py:128-138).

    Parameters
    ----------
    client : globus_compute_sdk.Client
        The user's Compute client.
    timeout_s : float
        Seconds one call may take.
    """
    globus_sdk = require("globus_sdk", extra="compute", purpose="Remote evaluation")
    web = client._compute_web_client
    # the app's authorizer is taken here, on the calling thread: an app attached to the copy
    # would be asked for one on the watch's thread at each call, and on a missing or expired
    # token its default handler starts a login there (globus_sdk/globus_app/app.py:535-539)
    authorizer = (client.app.get_authorizer(web.v2.resource_server) if client.app
                  else client.authorizer)
    bounded = copy.copy(client)
    bounded._request_lock = threading.Lock()
    bounded._compute_web_client = copy.copy(web)
    bounded._compute_web_client.v2 = globus_sdk.ComputeClientV2(
        base_url=web.v2.base_url, authorizer=authorizer, app_name=web.v2.app_name,
        **bounded_transport(timeout_s=timeout_s))
    bounded.app = None
    return bounded


class EndpointWatch:
    """Checks one endpoint's status every ``interval_s`` until it is closed or given up.

    Parameters
    ----------
    client : globus_compute_sdk.Client
        A client whose calls are bounded (:func:`bounded_status_client`).
    endpoint_id : str
        The endpoint's UUID.
    interval_s : float
        Seconds between checks (> 0); the first comes one interval after :meth:`start`.
    hint : str
        What :meth:`gone`'s line tells its reader to do once the endpoint is given up.
    """

    def __init__(self, client: Any, endpoint_id: str, *, interval_s: float,
                 hint: str = RESTART_HINT) -> None:
        if not interval_s > 0:
            raise InputError(f"endpoint status interval must be > 0 seconds, got {interval_s}")
        self.client, self.endpoint_id, self.interval_s = client, endpoint_id, interval_s
        self.hint = hint
        self.offline_answers = 0
        self.errors = 0
        self._reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stembench-endpoint-watch",
                                        daemon=True)

    def start(self) -> EndpointWatch:
        """Start checking in the background; returns ``self``."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop checking (a call in flight ends within its timeout, on a daemon thread)."""
        self._stop.set()

    def gone(self) -> str | None:
        """Why the endpoint can finish nothing more (one line), or ``None`` while it can."""
        return self._reason

    def _run(self) -> None:
        while self._reason is None and not self._stop.wait(self.interval_s):
            self.check()

    def check(self) -> None:
        """Ask for the status once and update what :meth:`gone` says."""
        try:
            state = dict(self.client.get_endpoint_status(self.endpoint_id)).get("status")
        except Exception as exc:  # any failure only means the status is unknown
            self.errors += 1
            if self.errors == ERRORS_BEFORE_WARNING:
                warnings.warn(f"Globus Compute endpoint {self.endpoint_id}: its status could "
                              f"not be read {self.errors} times in a row (last: "
                              f"{describe_error(exc)}); still waiting for its results "
                              "until the task deadline", stacklevel=1)
            return
        self.errors = 0
        self.offline_answers = self.offline_answers + 1 if state == "offline" else 0
        if self.offline_answers >= OFFLINE_ANSWERS:
            self._reason = (
                f"Globus Compute endpoint {self.endpoint_id} went offline mid-run; its "
                f"unfinished shards were given up (finished ones are kept): {self.hint}")
