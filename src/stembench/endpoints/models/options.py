"""Checking a registered model's options before the model is built.

:func:`check_options` reads the signature of what builds the model (never builds it, so no
weights are read and no framework starts) and refuses, with one line naming the option,
an option the model does not take, one the registry sets itself, a value of a type the
signature does not allow (a model taking ``**options`` checks their names itself when
built), and (``allow_files=False``, as the service asks) an option that
names a file on the machine that runs the model.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from stembench.endpoints.models.base import Model
from stembench.errors import ModelError

__all__ = ["check_options"]

_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_file(hint: Any) -> bool:
    return any(isinstance(m, type) and issubclass(m, PurePath) for m in _members(hint))


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON scalar ``value`` is allowed by the annotation ``hint``."""
    for member in _members(hint):
        if member is Any:
            return True
        if typing.get_origin(member) is typing.Literal:
            if value in typing.get_args(member):
                return True
        elif member is type(None):
            if value is None:
                return True
        elif member is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True
        elif member is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif typing.get_origin(member) in (tuple, list, dict):
            continue  # a JSON scalar is never a sequence or mapping
        elif isinstance(member, type):
            if isinstance(value, member) or (issubclass(member, PurePath)
                                             and isinstance(value, str)):
                return True
        else:  # an annotation this check does not know: the model's own checks decide
            return True
    return False


def check_options(name: str, options: Mapping[str, Any], *, allow_files: bool = True) -> None:
    """Refuse options the registered model ``name`` would not accept, before it is built.

    Parameters
    ----------
    name : str
        A registry name (built-in or plug-in).
    options : mapping
        The options a user gives (JSON scalars).
    allow_files : bool
        Whether an option may name a file (weights); a service passes False.

    Raises
    ------
    ModelError
        Naming the model and the option: an unknown option, one the registry sets, a
        file where files are not allowed, or a value of the wrong type.
    """
    from stembench.endpoints.models.loaders import import_object
    from stembench.endpoints.models.registry import get_entry

    entry = get_entry(name)
    target = import_object(entry.target)
    if isinstance(target, Model):
        if options:
            raise ModelError(f"model {name!r} takes no options, got {sorted(options)}")
        return
    builder = target.__init__ if inspect.isclass(target) else target
    signature = inspect.signature(target).parameters
    parameters = {key: p for key, p in signature.items()
                  if p.kind in _KINDS and key not in entry.options}
    extra = next((key for key, p in signature.items()
                  if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # an annotation that cannot be resolved: names are still checked
        hints = {}
    for key, value in options.items():
        if key in entry.options or (key not in parameters and extra is None):
            raise ModelError(f"model {name!r} has no option {key!r}; its options: "
                             f"{', '.join(sorted(parameters)) or 'none'}")
        hint = hints.get(key if key in parameters else str(extra))
        if hint is not None and not allow_files and _is_file(hint):
            raise ModelError(f"model {name!r}: option {key!r} names a file on the machine "
                             "that runs the model, which this service does not take")
        if hint is not None and not _fits(value, hint):
            raise ModelError(f"model {name!r}: option {key!r} must be "
                             f"{inspect.formatannotation(hint)}, got {value!r}")
