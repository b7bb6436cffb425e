"""A request's credentials: the bearer token it carries, who it is, and why it is refused."""

from __future__ import annotations

from dataclasses import dataclass

from stembench.errors import StembenchError

__all__ = ["AuthError", "Identity", "bearer_token"]


class AuthError(StembenchError):
    """A request's credentials are missing or not good enough.

    Attributes
    ----------
    status : int
        401, 403 or 503.
    code : str
        RFC 6750 error code (``invalid_request``, ``invalid_token``, ``insufficient_scope``)
        or ``temporarily_unavailable``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Identity:
    """Who made a request: the Globus identity ``sub``, a display name, linked identities."""

    sub: str
    username: str | None = None
    identity_set: tuple[str, ...] = ()
    expires_at: float = 0.0  # the token's ``exp`` (epoch seconds)

    @property
    def identities(self) -> tuple[str, ...]:
        """``sub`` and every identity linked to it."""
        return (self.sub, *(i for i in self.identity_set if i != self.sub))

    def owns(self, owner: str) -> bool:
        """True when ``owner`` (a job's submitter) is one of this caller's identities."""
        return owner in self.identities


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; :class:`AuthError` otherwise."""
    if header is None or not header.strip():
        raise AuthError(401, "invalid_request", "missing Authorization header: send "
                        "'Authorization: Bearer <Globus access token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > 4096:
        raise AuthError(401, "invalid_request", "malformed Authorization header: expected "
                        "'Bearer <token>' (one token, no spaces)")
    return token
