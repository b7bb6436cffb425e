"""Lazy public API of a package: each name is imported from its module on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_public"]


def lazy_public(
    package: str, public: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package's public names.

    Parameters
    ----------
    package : str
        The package (its ``__name__``).
    public : mapping of str to str
        Each public name -> the module of ``package`` that defines it.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__, __all__)`` to assign in the package's ``__init__``.
    """

    def lazy_getattr(name: str) -> Any:
        try:
            module = public[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def lazy_dir() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return lazy_getattr, lazy_dir, sorted(public)
