"""The FastAPI application factory.

:func:`create_app` connects the database (migrating it to the newest schema), builds the
Globus Auth token verifier when a client is configured, mounts the API, the leaderboard
pages and their static files, and starts the job worker with the app (stopped with it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
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
from stembench.service.auth import AuthError, TokenVerifier
from stembench.service.db import REQUEST_THREADS, connect, migrate, session_factory
from stembench.service.logouts import LogoutRecord
from stembench.service.payload_limit import PayloadLimit, auth_response
from stembench.service.settings import ServiceSettings
from stembench.service.upload_parts import UploadSweeper
from stembench.service.uploads import UploadGate
from stembench.service.worker import Worker

__all__ = ["create_app"]

log = logging.getLogger(__name__)

def _validation_message(exc: RequestValidationError) -> dict[str, Any]:
    errors = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
              for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return {"detail": f"invalid request: {summary}", "errors": errors}


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return auth_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_message(exc), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_id = uuid.uuid4().hex[:12]
        log.error("%s %s failed (log id %s)", request.method, request.url.path, log_id,
                  exc_info=exc)
        return JSONResponse({"detail": f"internal error (log id {log_id}): the service's log "
                                       "has the details", "log_id": log_id}, status_code=500)

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
    app.state.logouts, app.state.upload_gate = LogoutRecord(sessions), UploadGate()
    if verifier is not None:
        verifier.logged_out = app.state.logouts
    _install_handlers(app)
    from stembench.service import api, downloads, pages, uploads

    app.include_router(api.router)
    app.include_router(uploads.router)
    app.include_router(downloads.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(PayloadLimit, max_bytes=settings.max_payload_bytes,
                       part_bytes=settings.upload_part_bytes,
                       read_timeout_s=settings.body_read_timeout_s)
    return app
