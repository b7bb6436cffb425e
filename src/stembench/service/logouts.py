"""Tokens logged out of the service, kept in its database until they expire.

``POST /api/logout`` records the token's SHA-256 with the token's own expiry; every
process of the service refuses a recorded token when it next looks it up (a token it holds
accepted in its cache is dropped at once in the process that logged it out, within
``token_cache_ttl_s`` in the others, which look an accepted token up again that often).
The record lives apart from the cache of refused tokens, so no number of made-up tokens can
push a logout out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from stembench.service.auth import AuthError
from stembench.service.db import utcnow
from stembench.service.models import LoggedOutToken

__all__ = ["LogoutRecord"]


class LogoutRecord:
    """The logged-out tokens of one service database.

    Parameters
    ----------
    sessions : sqlalchemy.orm.sessionmaker
        Sessions of the service's database.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def add(self, token_sha256: str, expires_at: float) -> None:
        """Record a logout until ``expires_at`` (epoch seconds); expired records go now."""
        with self.sessions() as session:
            session.execute(delete(LoggedOutToken).where(LoggedOutToken.expires_at < utcnow()))
            if session.get(LoggedOutToken, token_sha256) is None:
                session.add(LoggedOutToken(token_sha256=token_sha256,
                                           expires_at=datetime.fromtimestamp(expires_at, UTC)))
            try:
                session.commit()
            except IntegrityError:  # logged out twice at once: recorded already
                session.rollback()

    def __call__(self, token_sha256: str) -> bool:
        """True when the token was logged out (and has not expired).

        Raises
        ------
        AuthError
            503 when the database cannot be asked.
        """
        try:
            with self.sessions() as session:
                found = session.scalar(select(LoggedOutToken.token_sha256).where(
                    LoggedOutToken.token_sha256 == token_sha256,
                    LoggedOutToken.expires_at > utcnow()))
        except SQLAlchemyError as exc:
            raise AuthError(503, "temporarily_unavailable", "cannot check the token against "
                            "this service's logouts; try again later") from exc
        return found is not None
