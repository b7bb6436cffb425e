"""Deprecated aliases of names and modules that moved, kept for one release.

A moved name is resolved on first use, through :mod:`importlib`, so that the module that lost
it imports nothing of the module that now holds it (a lower layer never imports a higher one).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["install_moved_modules", "moved_names"]

_LAST_RELEASE = "the old path stops working in the next release"


def moved_names(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved to other modules.

    Parameters
    ----------
    module : str
        The module that lost the names (its ``__name__``).
    moved : mapping of str to str
        Each moved name -> the module that now defines it, or ``"module:new_name"`` for a
        name that was also renamed.

    Returns
    -------
    callable
        ``__getattr__(name)``: the name from its new module, with a
        :class:`DeprecationWarning`; :class:`AttributeError` for any other name.
    """

    def moved_getattr(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, _, new_name = moved[name].partition(":")
        new_name = new_name or name
        warnings.warn(f"{module}.{name} moved to {target}.{new_name}; {_LAST_RELEASE}",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(target), new_name)

    return moved_getattr


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import an old module path as the module that now lives elsewhere."""

    def __init__(self, package: str, moved: Mapping[str, str]) -> None:
        self.package = package
        self.moved = dict(moved)
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != self.package or name not in self.moved:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = self.moved[spec.name.rpartition(".")[2]]
        warnings.warn(f"{spec.name} moved to {new}; {_LAST_RELEASE}", DeprecationWarning,
                      stacklevel=2)
        module = importlib.import_module(new)
        self._specs[new] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """The module ran under its new name: give it back the spec the import system replaced."""
        module.__spec__ = self._specs[module.__name__]


def install_moved_modules(package: str, moved: Mapping[str, str]) -> None:
    """Let ``<package>.<old name>`` import as the module that now lives elsewhere.

    Parameters
    ----------
    package : str
        The package that lost the modules (its ``__name__``).
    moved : mapping of str to str
        Each old module name (without the package) -> the full name of its new module.
    """
    if not any(isinstance(finder, _MovedModuleFinder) and finder.package == package
               for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder(package, moved))
