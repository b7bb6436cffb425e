"""Exceptions raised by stembench.

Every error names what went wrong in terms a user can act on: the file, the image
id, the field, and the expected against the received value.
"""

from __future__ import annotations

__all__ = [
    "DatasetError",
    "InputError",
    "IntegrityError",
    "MissingExtraError",
    "ModelError",
    "StembenchError",
]


class StembenchError(Exception):
    """Base class of every error stembench raises on purpose."""


class InputError(StembenchError, ValueError):
    """Bad input: wrong shape, non-finite values, out-of-range parameters."""


class DatasetError(StembenchError):
    """A dataset file or layout cannot be read or does not follow the expected layout."""


class IntegrityError(DatasetError):
    """A stored array or file does not match the hash its manifest records."""


class ModelError(StembenchError):
    """A model cannot be loaded, or its weights do not match its architecture."""


class MissingExtraError(StembenchError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package '{package}'. "
            f"Install it with: pip install 'stembench[{extra}]'"
        )
        self.package = package
        self.extra = extra
        self.purpose = purpose

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str, str]]:
        """Rebuild from the three fields, so that it crosses process boundaries intact."""
        return (type(self), (self.package, self.extra, self.purpose))
