"""``stembench serve``: run the service with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "serve", "uvicorn_config"]

app = typer.Typer(help="The hosted service: HTTP API, leaderboard and job worker.",
                  no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db "
             "(default: SQLite in the data folder).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder for job results, reports and the default SQLite database.")] = None,
    executor: Annotated[str | None, typer.Option(
        help="Where jobs run: local (process pool), thread, or globus.")] = None,
    workers: Annotated[int | None, typer.Option(help="Workers per job.")] = None,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Serve the API only; run no jobs.")] = False,
) -> None:
    """Serve the API and leaderboard; settings not given here come from STEMBENCH_SERVICE_* env
    variables (Globus client id/secret, scope, limits)."""
    from stembench._optional import require

    uvicorn = require("uvicorn", extra="service", purpose="stembench serve")
    require("pydantic_settings", extra="service", purpose="stembench serve")
    from stembench.service.app import create_app
    from stembench.service.settings import ServiceSettings

    settings = ServiceSettings.from_env(
        database_url=database_url, data_dir=data_dir, executor=executor, workers=workers,
        run_worker=False if no_worker else None)
    typer.echo(f"stembench service on http://{host}:{port}/ (database: "
               f"{settings.resolved_database_url.split('@')[-1]})")
    uvicorn.Server(uvicorn_config(create_app(settings), host=host, port=port)).run()


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str = "info") -> Any:
    """The uvicorn configuration ``serve`` runs ``app`` with: at most ``max_connections``
    at once (503 beyond), and requests in flight cancelled ``graceful_shutdown_s`` after a
    stop was asked for (the app's settings). uvicorn has no timer on reading a request's
    head: run it behind a reverse proxy that has one (README).

    Parameters
    ----------
    app : fastapi.FastAPI
        The service (:func:`~stembench.service.app.create_app`).
    host, port : str, int
        Where to listen.
    log_level : str, optional
        uvicorn's log level; default ``"info"``.
    """
    import uvicorn

    settings = app.state.settings
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                          limit_concurrency=settings.max_connections,
                          timeout_graceful_shutdown=settings.graceful_shutdown_s)
