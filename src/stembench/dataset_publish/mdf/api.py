"""Read MDF Connect v2's public API, taking every answer the way ``mdf-cli`` takes it.

``mdf-cli`` 0.3.0's ``BackendClient._request`` (``mdf/core/backend_client.py:627-725``)
is the reference:

- an answer whose JSON is an object with a string ``body`` is an API Gateway proxy
  envelope: the status is its ``statusCode`` (or ``status_code``) and the answer is
  ``body`` decoded; a ``body`` that is not JSON leaves the envelope as the answer
  (lines 708-720);
- an answer that is not JSON, or whose JSON (after unwrapping) is not an object, is a
  failure (lines 700-706, 720-723 with ``mdf.core.errors.is_success``);
- a 2xx answer is a success unless it says ``"success": false``
  (``mdf/core/errors.py:32-53``); 404 is "no such record";
- 429, 502, 503 and 504 are retried after ``Retry-After`` or 1, 2, 4 s; a refused
  connection or a connect timeout is retried the same way, except against the production
  host, which ``mdf-cli`` reports at once as not available yet (lines 650-697).

Unlike ``BackendClient``, :class:`MDFApiClient` can be given a deadline for all its
requests together, fails at once when the host name does not resolve (not transient),
and reports a server that accepts the connection and never answers after one timeout.
``requests``' timeouts do not cover the host name lookup, so every request runs in a
worker thread that the caller stops waiting for (:func:`call_within`) once its time is
up: a resolver that never answers costs the same bounded wait as a server that never
answers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from stembench.dataset_publish.mdf.services import MDF_API_URLS, api_url, resolve_service
from stembench.errors import DatasetError

__all__ = [
    "GRACE_S",
    "RETRY_STATUSES",
    "MDFApiClient",
    "MDFUnavailableError",
    "call_within",
    "check_file_answer",
    "one_line",
    "unwrap",
]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses retried (``BackendClient._RETRY_STATUSES``, ``backend_client.py:624``)."""


GRACE_S = 0.5
"""Seconds a request's worker thread is waited for beyond ``requests``' own timeout, so
that ``requests`` reports a silent server itself; only a request still stuck after it
(a host name lookup that does not return) is given up by :func:`call_within`."""
_T = TypeVar("_T")


class MDFUnavailableError(DatasetError):
    """The MDF API or its file server could not be reached or answered with an error."""


def call_within(seconds: float, call: Callable[[], _T], *, what: str,
                discard: Callable[[_T], object] | None = None) -> _T:
    """Return ``call()``, run in a daemon thread, or give up on it after ``seconds``.

    Parameters
    ----------
    seconds : float
        How long to wait for ``call`` to return or raise.
    call : callable
        The request; what it raises is raised here.
    what : str
        The request, for the message.
    discard : callable, optional
        Applied to a result that comes after the caller gave up (e.g. closing a response).

    Raises
    ------
    MDFUnavailableError
        If ``call`` has not finished after ``seconds`` (it is left to finish on its own).
    """
    outcome: dict[str, Any] = {}
    lock = threading.Lock()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the caller, or dropped after it gave up
            with lock:
                outcome["error"] = exc
            return
        with lock:
            outcome["value"] = result
            late = outcome.get("abandoned", False)
        if late and discard is not None:
            discard(result)

    worker = threading.Thread(target=run, name="stembench-mdf-request", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    with lock:
        if "error" in outcome:
            raise outcome["error"]
        if "value" in outcome:
            return outcome["value"]
        outcome["abandoned"] = True
    raise MDFUnavailableError(f"{what} gave no answer within {seconds:.1f} s (the host name "
                              "did not resolve in time, or no connection or answer came)")


def check_file_answer(url: str, status: int) -> None:
    """Refuse an answer of MDF's file server that is not the file (HTTP 200).

    Raises
    ------
    MDFUnavailableError
        With a message saying the file needs a login for 401 and 403.
    """
    if status in (401, 403):
        raise MDFUnavailableError(
            f"GET {url} answered HTTP {status}: the file is not public, it needs a Globus "
            "login (stembench downloads only public files; ask the record's owner, or "
            "download it with `mdf clone` after `mdf login` and load that file by path)")
    if status != 200:
        raise MDFUnavailableError(f"GET {url} answered HTTP {status}")


def unwrap(status: int, text: str) -> tuple[int | None, Any]:
    """Return the status and answer ``BackendClient._request`` makes of an HTTP answer.

    Parameters
    ----------
    status : int
        The HTTP status.
    text : str
        The answer's body.

    Returns
    -------
    tuple
        ``(status, answer)``: the status is the envelope's ``statusCode`` when there is
        one, and ``None`` when ``BackendClient`` returns an answer without a status (a
        JSON value that is not an object); a body that is not JSON gives
        ``{"success": False, "error": ...}`` with the HTTP status.
    """
    try:
        payload = json.loads(text)
    except ValueError:
        return status, {"success": False, "error": f"Invalid response: {text[:300]}"}
    if isinstance(payload, dict) and isinstance(payload.get("body"), str):
        inner_status = payload.get("statusCode") or payload.get("status_code")
        if isinstance(inner_status, (int, str)):
            with contextlib.suppress(ValueError):
                status = int(inner_status)
        try:
            inner = json.loads(payload["body"])
        except ValueError:
            return status, payload
        return (status, inner) if isinstance(inner, dict) else (None, inner)
    return (status, payload) if isinstance(payload, dict) else (None, payload)


def _dns_failure(exc: BaseException) -> bool:
    stack: list[Any] = [exc]
    seen: set[int] = set()
    while stack:
        error = stack.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, socket.gaierror) or type(error).__name__ == "NameResolutionError":
            return True
        stack.extend([error.__cause__, error.__context__, getattr(error, "reason", None),
                      *error.args])
    return False


def _retry_after(headers: Any, attempt: int) -> float:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return 2.0 ** attempt


def one_line(text: object) -> str:
    """Return ``text`` as one line (runs of white space, newlines included, become one space)."""
    return " ".join(str(text).split())


class MDFApiClient:
    """An anonymous client of the MDF v2 API (public reads need no login).

    Parameters
    ----------
    service : str, optional
        ``"prod"``, ``"staging"`` or ``"dev"``; by default
        :func:`~stembench.dataset_publish.mdf.services.resolve_service`'s choice.
        ``$MDF_API_URL`` overrides its URL, as in ``mdf-cli``.
    max_retries : int
        Attempts after the first for 429/502/503/504 and refused connections.
    max_sleep : float
        Longest wait between attempts, in seconds.
    http_timeout : float
        Seconds to wait for a connection or an answer (``BackendClient`` waits 30).
    deadline_s : float, optional
        Seconds all requests of this client may take together, waits and host name
        lookups included; after it every request fails with :class:`MDFUnavailableError`.
    clock : callable
        Monotonic seconds, for the deadline.
    """

    def __init__(self, *, service: str | None = None, max_retries: int = 3,
                 max_sleep: float = 10.0, http_timeout: float = 30.0,
                 deadline_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = resolve_service(service)
        self.base_url = api_url(self.service).rstrip("/")
        self.max_retries = max_retries
        self.max_sleep = max_sleep
        self.http_timeout = http_timeout
        self.deadline_s = deadline_s
        self._clock = clock
        self._end = None if deadline_s is None else clock() + deadline_s
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"MDFApiClient(service={self.service!r}, base_url={self.base_url!r})"

    def timeout(self) -> float:
        """Seconds the next request may wait: ``http_timeout``, less near the deadline.

        Raises
        ------
        MDFUnavailableError
            If the deadline has passed.
        """
        if self._end is None:
            return self.http_timeout
        left = self._end - self._clock()
        if left <= 0:
            raise MDFUnavailableError(f"MDF {self.service} ({self.base_url}) gave no usable "
                                      f"answer within {self.deadline_s:g} s")
        return min(self.http_timeout, left)

    def _waited(self, seconds: float) -> bool:
        """Sleep before another attempt; ``False`` (no sleep) if the deadline would pass."""
        seconds = min(seconds, self.max_sleep)
        if self._end is not None and self._clock() + seconds >= self._end:
            return False
        time.sleep(seconds)
        return True

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET a JSON object from the API.

        Returns
        -------
        dict or None
            The answer (unwrapped from an API Gateway envelope); ``None`` on 404.

        Raises
        ------
        MDFUnavailableError
            On a failure answer, a network failure or the deadline (one line).
        """
        url = f"{self.base_url}{path}"
        attempt = -1
        while True:
            attempt += 1
            timeout = self.timeout()
            try:
                response = self._send(url, params, timeout)
            except requests.ConnectionError as exc:
                if _dns_failure(exc):
                    raise MDFUnavailableError(f"MDF {self.service}: the host of {self.base_url}"
                                              " does not resolve (DNS)") from exc
                if self.base_url == MDF_API_URLS["prod"]:
                    raise MDFUnavailableError(
                        f"cannot connect to the production MDF API at {self.base_url}: the "
                        "production service is not available yet; set MDF_SERVICE=staging "
                        "(mdf-cli's advice)") from exc
                if attempt < self.max_retries and self._waited(2.0 ** attempt):
                    continue
                raise MDFUnavailableError(f"MDF {self.service} ({url}) unreachable after "
                                          f"{attempt + 1} attempts: {one_line(exc)}") from exc
            except requests.Timeout as exc:
                raise MDFUnavailableError(f"MDF {self.service} ({url}) accepted the connection "
                                          f"but sent no answer within {timeout:.1f} s") from exc
            except requests.RequestException as exc:
                raise MDFUnavailableError(f"MDF {self.service} ({url}): "
                                          f"{one_line(exc)}") from exc
            if (response.status_code in RETRY_STATUSES and attempt < self.max_retries
                    and self._waited(_retry_after(response.headers, attempt))):
                continue
            return self._answer(url, *unwrap(response.status_code, response.text))

    def _send(self, url: str, params: dict[str, str] | None,
              timeout: float) -> requests.Response:
        return call_within(timeout + GRACE_S,
                           lambda: self._session.get(url, params=params, timeout=timeout),
                           what=f"MDF {self.service} ({url})", discard=requests.Response.close)

    def get_file(self, url: str) -> bytes:
        """GET a small file (a manifest) from MDF's file server, bounded like :meth:`get`.

        Raises
        ------
        MDFUnavailableError
            On a network failure, the deadline, or an answer that is not the file
            (:func:`check_file_answer`).
        """
        timeout = self.timeout()
        try:
            response = self._send(url, None, timeout)
        except requests.RequestException as exc:
            kind = "does not resolve (DNS)" if _dns_failure(exc) else one_line(exc)
            raise MDFUnavailableError(f"GET {url} failed: {kind}") from exc
        with response:
            check_file_answer(url, response.status_code)
            return response.content

    def _answer(self, url: str, status: int | None, answer: Any) -> dict[str, Any] | None:
        if not isinstance(answer, dict):
            raise MDFUnavailableError(f"MDF {self.service} ({url}) did not answer a JSON "
                                      f"object: {one_line(answer)[:300]}")
        if status == 404:
            return None
        if status is None or not 200 <= status < 300 or not answer.get("success", True):
            detail = answer.get("error") or answer.get("detail") or answer.get("message") \
                or answer
            raise MDFUnavailableError(f"MDF {self.service} ({url}) answered HTTP {status}: "
                                      f"{one_line(detail)[:300]}")
        return answer
