"""Database engine, migrations at start-up, and sessions.

SQLite (the default, a file in the data directory) and PostgreSQL (by URL,
``postgresql+psycopg://...``) are supported. :func:`migrate` brings the schema to the newest
alembic revision shipped inside the package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["POOL_CONNECTIONS", "REQUEST_THREADS", "connect", "migrate", "session_factory",
           "utcnow"]

#: Threads that serve blocking requests at once; more wait their turn on the event loop
#: (holding nothing). Request work is mostly CPU under the GIL, so more threads add no
#: throughput, while each one delays the event loop (and /api/health on it) by a GIL
#: switch interval every time it takes the GIL back.
REQUEST_THREADS = 6
#: Connections an engine may open: more than the request threads plus the worker's, so a
#: request never waits on the pool while holding a thread.
POOL_CONNECTIONS = 40

_MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and a busy timeout.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=10, max_overflow=POOL_CONNECTIONS - 10)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10,
                         max_overflow=POOL_CONNECTIONS - 10)


def migrate(engine: Engine) -> str:
    """Upgrade the database to the newest migration; return the revision now current."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    return str(revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
