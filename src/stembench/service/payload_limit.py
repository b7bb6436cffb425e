"""The body limit of the service: what can be refused is refused before a body is read."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stembench.service.auth import AuthError, bearer_token

__all__ = ["PayloadLimit", "auth_response"]

_PART_ROUTE = re.compile(r"^/api/uploads/[^/]+/parts/[^/]+$")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PayloadLimit:
    """ASGI middleware that refuses what it can before any request body is read.

    A request with a body under ``/api/`` (every such route needs a token) is answered 401
    at once when it carries no well-formed ``Authorization: Bearer`` header, and 413 when
    its declared ``Content-Length`` is over ``max_bytes`` (``part_bytes`` for
    ``PUT /api/uploads/{sha256}/parts/{index}`` only, a part of a results upload). Nothing
    is buffered here: the app reads the body itself, after its token check (an upload
    part's route checks the token first; the small bodies of other routes are read before
    it), and a body without ``Content-Length`` (chunked) is counted as the app reads
    it, answered 413 once it passes the limit. Each piece of a body must arrive within
    ``read_timeout_s`` of the app's asking for it (an idle timeout, restarted by every piece
    received, so a slow but steady upload passes whatever its length): a stalled body is
    answered 408 and its connection closed. A
    request with more than one ``Authorization`` header is refused (401) whatever its
    method, as its parts would read different ones.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, part_bytes: int = 0, *,
                 read_timeout_s: float = 60.0) -> None:
        self.app, self.max_bytes, self.part_bytes = app, max_bytes, max(part_bytes, max_bytes)
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(
                1 for name, _ in scope.get("headers") or [] if name == b"authorization") > 1:
            await auth_response(AuthError(401, "invalid_request", "more than one Authorization "
                                          "header: send one"))({"type": "http"}, _no_receive, send)
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        upload = scope["method"] == "PUT" and bool(_PART_ROUTE.match(path))
        limit = self.part_bytes if upload else self.max_bytes
        headers = dict(scope.get("headers") or [])
        state = getattr(scope.get("app"), "state", None)
        if path.startswith("/api/") and getattr(state, "verifier", None) is not None:
            try:
                bearer_token(headers[b"authorization"].decode("latin-1")
                             if b"authorization" in headers else None)
            except AuthError as exc:
                await auth_response(exc)({"type": "http"}, _no_receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refusal(declared.decode("latin-1")[:20], limit, upload)(
                {"type": "http"}, _no_receive, send)
            return
        size, complete = 0, False

        async def counted() -> Message:
            nonlocal size, complete
            if complete:  # the body is in: a wait for the client's disconnect has no deadline
                return await receive()
            try:
                with anyio.fail_after(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise StarletteHTTPException(408, "no part of the request body arrived for "
                                             f"{self.read_timeout_s:g} s", headers={
                                                 "Connection": "close"}) from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                size += len(message.get("body", b""))
                if size > limit:
                    raise StarletteHTTPException(413, self._detail(f"at least {size}", limit,
                                                                   upload))
            return message

        await self.app(scope, counted, send)

    @staticmethod
    def _detail(size: str, limit: int, upload: bool) -> str:
        advice = (" (send a large results file in parts of at most this size; stembench "
                  "submit does)" if upload else "")
        return f"request body too large: {size} bytes, limit {limit}{advice}"

    def _refusal(self, size: str, limit: int, upload: bool) -> JSONResponse:
        return JSONResponse({"detail": self._detail(size, limit, upload)}, status_code=413)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def auth_response(exc: AuthError) -> JSONResponse:
    """The answer to a request whose credentials are refused (RFC 6750's header on 401/403)."""
    headers = {}
    if exc.status in (401, 403):
        description = exc.message.replace('"', "'")
        headers["WWW-Authenticate"] = (f'Bearer error="{exc.code}", '
                                       f'error_description="{description}"')
    return JSONResponse({"detail": exc.message, "error": exc.code}, status_code=exc.status,
                        headers=headers)
