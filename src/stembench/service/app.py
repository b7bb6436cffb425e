"""The FastAPI application factory.

:func:`create_app` connects the database (migrating it to the newest schema), builds the
Globus Auth token verifier when a client is configured, mounts the API, the leaderboard
pages and their static files, and starts the job worker with the app (stopped with it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from stembench._version import __version__
from stembench.errors import InputError
from stembench.service.auth import AuthError, TokenVerifier, bearer_token
from stembench.service.db import REQUEST_THREADS, connect, migrate, session_factory
from stembench.service.settings import ServiceSettings
from stembench.service.upload_parts import UploadSweeper
from stembench.service.worker import Worker

__all__ = ["PayloadLimit", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PayloadLimit:
    """ASGI middleware that refuses what it can before any request body is read.

    A request with a body under ``/api/`` (every such route needs a token) is answered 401
    at once when it carries no well-formed ``Authorization: Bearer`` header, and 413 when
    its declared ``Content-Length`` is over ``max_bytes`` (``part_bytes`` under
    ``/api/uploads/``, the parts of a results upload). Nothing is buffered here: the app
    reads the body itself, after its token check (an upload part's route checks the token
    first), and a body without ``Content-Length`` (chunked) is counted as the app reads
    it, answered 413 once it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, part_bytes: int = 0) -> None:
        self.app, self.max_bytes, self.part_bytes = app, max_bytes, max(part_bytes, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        upload = path.startswith("/api/uploads/")
        limit = self.part_bytes if upload else self.max_bytes
        headers = dict(scope.get("headers") or [])
        state = getattr(scope.get("app"), "state", None)
        if path.startswith("/api/") and getattr(state, "verifier", None) is not None:
            try:
                bearer_token(headers[b"authorization"].decode("latin-1")
                             if b"authorization" in headers else None)
            except AuthError as exc:
                await _auth_response(exc)({"type": "http"}, _no_receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refusal(declared.decode("latin-1")[:20], limit, upload)(
                {"type": "http"}, _no_receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
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


def _auth_response(exc: AuthError) -> JSONResponse:
    """The answer to a request whose credentials are refused (RFC 6750's header on 401/403)."""
    headers = {}
    if exc.status in (401, 403):
        description = exc.message.replace('"', "'")
        headers["WWW-Authenticate"] = (f'Bearer error="{exc.code}", '
                                       f'error_description="{description}"')
    return JSONResponse({"detail": exc.message, "error": exc.code}, status_code=exc.status,
                        headers=headers)


def _validation_message(exc: RequestValidationError) -> dict[str, Any]:
    errors = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
              for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return {"detail": f"invalid request: {summary}", "errors": errors}


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return _auth_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_message(exc), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


def _shown(url: str) -> str:
    """A database URL fit for a message (password hidden)."""
    try:
        return str(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return "(not a SQLAlchemy URL)"


def create_app(settings: ServiceSettings, *, verifier: TokenVerifier | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings : ServiceSettings
        Database, auth, limits and executor.
    verifier : TokenVerifier, optional
        Token verifier to use instead of one built from the settings' Globus client.

    Returns
    -------
    FastAPI
        The app; run it with uvicorn (``stembench serve``). The worker starts and stops with
        the app's lifespan when ``settings.run_worker`` is true.
    """
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise InputError(f"service data folder {settings.data_dir} is a file; give a folder "
                         "(--data-dir)")
    try:
        engine = connect(settings.resolved_database_url)
        revision = migrate(engine)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot use the database {_shown(settings.resolved_database_url)}: "
                         f"{reason}") from exc
    sessions = session_factory(engine)
    if verifier is None and settings.auth_configured:
        assert settings.globus_client_id and settings.globus_client_secret
        verifier = TokenVerifier(settings.globus_client_id, settings.globus_client_secret,
                                 required_scope=settings.resolved_scope or "",
                                 cache_ttl_s=settings.token_cache_ttl_s,
                                 timeout_s=settings.introspection_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from anyio import to_thread

        to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        worker = Worker(settings, sessions) if settings.run_worker else None
        app.state.worker = worker
        sweeper = UploadSweeper(settings)
        sweeper.start()  # abandoned uploads go now, and on a timer
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            sweeper.stop()
            engine.dispose()

    app = FastAPI(title="stembench", version=__version__, lifespan=lifespan,
                  description="Benchmark of models that locate atomic columns in STEM images: "
                              "submit evaluations, follow jobs, read scores, cutoffs and the "
                              "leaderboard. Submitting needs a Globus Auth bearer token.")
    app.state.settings, app.state.sessions, app.state.engine = settings, sessions, engine
    app.state.verifier, app.state.revision, app.state.worker = verifier, revision, None
    _install_handlers(app)
    from stembench.service import api, downloads, pages, uploads

    app.include_router(api.router)
    app.include_router(uploads.router)
    app.include_router(downloads.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(PayloadLimit, max_bytes=settings.max_payload_bytes,
                       part_bytes=settings.upload_part_bytes)
    return app
