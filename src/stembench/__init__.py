"""stembench: an open benchmark for models that locate atomic columns in STEM images.

Importing the package is light; :func:`load` is resolved on first use.

Examples
--------
>>> import stembench
>>> dataset = stembench.load("atom-locating-benchmark", preset="mini")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stembench._version import __version__

if TYPE_CHECKING:
    from stembench.dataset_publish.loading import load

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from stembench.dataset_publish.loading import load

        return load
    raise AttributeError(f"module 'stembench' has no attribute {name!r}")
