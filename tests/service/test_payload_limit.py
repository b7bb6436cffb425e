"""No body is read before what can be refused is: a request without a token, or with one that
is refused, is answered before its (large) body is sent, and a chunked body is counted as it
is read, never buffered past the limit."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_helpers import LiveServer, bearer, make_settings

from stembench.service.app import create_app

#: A guard against a hang only: an answer that waited for the unsent body never comes.
HANG_GUARD_S = 30
PART = "/api/uploads/" + hashlib.sha256(b"a").hexdigest() + "/parts/0"


def _head_only(port: int, method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """Send a request's head (its declared body never follows) and read the answer."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as connection:
        connection.sendall(f"{method} {path} HTTP/1.1\r\nHost: test\r\n{head}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        top, _, body = answer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in top.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += connection.recv(65536)
    return {"status": int(top.split(b" ")[1]), **json.loads(body)}


@pytest.fixture
def server(tmp_path, database_url, globus_auth) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path, database_url, upload_part_bytes=16_384,
                             max_payload_bytes=4096)
    app = create_app(settings)
    with LiveServer(app) as live:
        yield live
    app.state.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("method", "path", "headers", "words"), [
    ("PUT", PART, {}, "missing Authorization header"),
    ("PUT", PART, {"Authorization": "Basic dXNlcjpwdw=="}, "malformed Authorization"),
    ("PUT", PART, bearer("inactive"), "token is not active"),  # checked with Globus Auth
    ("POST", "/api/jobs", {}, "missing Authorization header"),
])
def test_a_request_is_refused_before_its_body_is_read(server, method, path, headers,
                                                      words) -> None:
    answer = _head_only(server.port, method, path, {
        **headers, "Content-Length": "4000", "Content-Type": "application/octet-stream"})
    assert answer["status"] == 401 and words in answer["detail"], answer


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_chunked_body_is_counted_as_it_is_read(server) -> None:
    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 1000):
            yield b"x" * 1000

    with httpx.Client(base_url=server.url, timeout=HANG_GUARD_S) as http:
        headers = {**bearer("alice"), "Content-Type": "application/octet-stream"}
        fits = http.put(PART, content=chunks(16_000), headers=headers)
        assert fits.status_code == 200 and fits.json()["size"] == 16_000
        over = http.put(PART, content=chunks(40_000), headers=headers)
        assert "content-length" not in over.request.headers  # sent chunked
        assert over.status_code == 413 and "limit 16384" in over.json()["detail"], over.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_completing_an_upload_gets_the_small_body_limit(server) -> None:
    complete = PART.rsplit("/parts/", 1)[0] + "/complete"
    answer = _head_only(server.port, "POST", complete, {
        **bearer("alice"), "Content-Length": "8000", "Content-Type": "application/json"})
    assert answer["status"] == 413 and "limit 4096" in answer["detail"], answer
    assert "in parts" not in answer["detail"]  # only a part gets the part size


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_model_card_has_a_size_limit(client) -> None:
    from stembench.service.schemas import MAX_CARD_BYTES

    complete = PART.rsplit("/parts/", 1)[0] + "/complete"
    card = {"name": "big", "notes": "x" * MAX_CARD_BYTES}
    answer = client.post(complete, json={"parts": 1, "model_card": card},
                         headers=bearer("alice"))
    assert answer.status_code == 422, answer.text
    assert f"over the limit of {MAX_CARD_BYTES}" in answer.json()["detail"]


def _held(port: int, introspections: Any) -> socket.socket:
    """A connection whose upload part is in flight, its body trickled and never finished
    (returned once the service has checked its token: the request is being served)."""
    before = len(introspections.calls)
    connection = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S)
    connection.sendall(f"PUT {PART} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "
                       "alice-token\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: 1000\r\n\r\n".encode() + b"x" * 10)
    for _ in range(HANG_GUARD_S * 50):  # waits for the service's token check, not a time
        if len(introspections.calls) > before:
            return connection
        threading.Event().wait(0.02)
    raise AssertionError("the held request was never served")


def _until_closed(connection: socket.socket) -> bytes:
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_stalled_body_gets_408_and_its_connection_closes(tmp_path, database_url,
                                                          globus_auth) -> None:
    app = create_app(make_settings(tmp_path, database_url, body_read_timeout_s=0.5))
    with LiveServer(app) as server, _held(server.port, globus_auth) as connection:
        answer = _until_closed(connection)  # the service closes it
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"no part of the request body arrived for 0.5 s" in answer
    app.state.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_slow_but_steady_body_is_read_whatever_its_length(tmp_path, database_url,
                                                           globus_auth) -> None:
    """The body takes longer than the timeout in all (each pause sleeps at least its
    length), every pause far shorter than it: the part is stored, never answered 408."""
    timeout_s, pieces = 2.0, 10
    app = create_app(make_settings(tmp_path, database_url, body_read_timeout_s=timeout_s))
    body = bytes(range(100)) * pieces
    part = "/api/uploads/" + hashlib.sha256(body).hexdigest() + "/parts/0"
    with LiveServer(app) as server, socket.create_connection(
            ("127.0.0.1", server.port), timeout=HANG_GUARD_S) as connection:
        connection.sendall(f"PUT {part} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "
                           "alice-token\r\nContent-Type: application/octet-stream\r\n"
                           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                           .encode())
        try:
            for start in range(0, len(body), 100):
                threading.Event().wait(timeout_s * 1.5 / pieces)  # pieces * this > timeout_s
                connection.sendall(body[start:start + 100])
        except OSError:  # closed by the service: its answer says why
            pass
        answer = _until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 2"), answer
    app.state.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_service_stops_and_limits_connections_with_a_request_held(
        tmp_path, database_url, globus_auth) -> None:
    app = create_app(make_settings(tmp_path, database_url, body_read_timeout_s=3600,
                                   graceful_shutdown_s=0.5, max_connections=2))
    server = LiveServer(app).__enter__()
    try:
        with _held(server.port, globus_auth), httpx.Client(base_url=server.url,
                                                           timeout=HANG_GUARD_S) as http:
            assert http.get("/api/health").status_code == 503  # one held: the limit is full
            server.server.should_exit = True
            server.thread.join(HANG_GUARD_S)
            assert not server.thread.is_alive()  # the held request was cancelled
    finally:
        server.__exit__()
    app.state.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_authorization_headers_are_refused(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(b"GET /api/jobs HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                     b"Authorization: Bearer alice-token\r\n"
                     b"Authorization: Bearer bob-token\r\n\r\n")
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401 ") and b"more than one Authorization" in answer
