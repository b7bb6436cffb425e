"""Every public function with three or more parameters documents each of them (numpydoc).

Public: named by a module's ``__all__`` (or, in a module without one, not starting with an
underscore) in a module whose path has no private part, or named by a package's public API
(its ``__all__`` or the ``_PUBLIC`` table of a lazy ``__init__``); and the methods not starting
with an underscore of such classes. Read from the source with :mod:`ast`, so nothing is
imported. A parameter of a CLI command that is a ``typer`` option or argument with ``help=`` is
documented by that help text (``--help`` shows it), so it needs no entry in the Parameters
section. Methods that implement another library's interface are documented there
(:data:`INTERFACE_METHODS`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
MIN_PARAMETERS = 3
#: Methods whose signature and meaning another library defines -> where they are documented.
INTERFACE_METHODS = {
    "submit": "concurrent.futures.Executor.submit(fn, /, *args, **kwargs)",
    "settings_customise_sources": "pydantic_settings.BaseSettings.settings_customise_sources",
}

_SECTION = re.compile(r"^Parameters\n-{3,}\n(.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", re.M | re.S)
_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::|$)", re.M)


def _literal(node: ast.stmt, name: str) -> Any:
    """The value of ``name = <literal>`` if ``node`` is that assignment, else None."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None
    if not (isinstance(target, ast.Name) and target.id == name):
        return None
    return ast.literal_eval(value)


def _public_names(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        names = _literal(node, "__all__")
        if names is not None:
            return set(names)
    return None


def _api_of_packages() -> set[tuple[Path, str]]:
    """(defining module, name) for each name a package ``__init__`` makes public."""
    found: set[tuple[Path, str]] = set()
    for init in SRC.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        public = _public_names(tree) or set()
        for node in tree.body:
            lazy: dict[str, str] = _literal(node, "_PUBLIC") or {}
            for name, defined_in in lazy.items():
                found.add((init.parent / f"{defined_in}.py", name))
            if isinstance(node, ast.ImportFrom) and node.module:
                base = init.parent if node.level else SRC
                module = base.joinpath(*node.module.split("."))
                found |= {(module.with_suffix(".py"), alias.name) for alias in node.names
                          if (alias.asname or alias.name) in public}
    return found


def _has_help(node: ast.AST | None) -> bool:
    """Whether ``node`` holds a ``typer.Option(..., help=...)`` / ``typer.Argument`` call."""
    return any(isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
               and call.func.attr in ("Option", "Argument")
               and any(keyword.arg == "help" for keyword in call.keywords)
               for call in (ast.walk(node) if node is not None else ()))


@cache
def _documented_option_aliases() -> frozenset[str]:
    """Module-level names bound to an ``Annotated[..., typer.Option(..., help=...)]``."""
    return frozenset(target.id for path in SRC.rglob("*.py")
                     for node in ast.parse(path.read_text()).body
                     if isinstance(node, ast.Assign) and _has_help(node.value)
                     for target in node.targets if isinstance(target, ast.Name))


def _is_documented_cli_option(argument: ast.arg, default: ast.expr | None) -> bool:
    """True for a ``typer.Option(..., help=...)`` / ``typer.Argument`` parameter, given in
    place or through a module-level alias of one."""
    annotation = argument.annotation
    return _has_help(annotation) or _has_help(default) or (
        isinstance(annotation, ast.Name) and annotation.id in _documented_option_aliases())


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], list[str]]:
    """(all parameter names, those a docstring must name), ``self``/``cls`` left out."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    pairs = list(zip(positional, defaults + list(args.defaults), strict=True))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    pairs += [(extra, None) for extra in (args.vararg, args.kwarg) if extra is not None]
    pairs = [(a, d) for a, d in pairs if a.arg not in ("self", "cls")]
    return ([a.arg for a, _ in pairs],
            [a.arg for a, d in pairs if not _is_documented_cli_option(a, d)])


def _documented(docstring: str) -> set[str]:
    section = _SECTION.search(docstring)
    if section is None:
        return set()
    return {name.strip().lstrip("*") for entry in _ENTRY.findall(section.group(1))
            for name in entry.split(",")}


def undocumented_parameters() -> Iterator[str]:
    """One line per public function that leaves a parameter out of its Parameters section."""
    api = _api_of_packages()
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        private_module = any(part.startswith("_") and part != "__init__" for part in parts)
        tree = ast.parse(path.read_text())
        listed = _public_names(tree)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            exported = (node.name in listed if listed is not None
                        else not node.name.startswith("_"))
            if not ((exported and not private_module) or (path, node.name) in api):
                continue
            if isinstance(node, ast.ClassDef):
                functions = [(f"{node.name}.{method.name}", method) for method in node.body
                             if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                             and not method.name.startswith("_")
                             and method.name not in INTERFACE_METHODS]
            else:
                functions = [(node.name, node)]
            for name, function in functions:
                every, needed = _parameters(function)
                if len(every) < MIN_PARAMETERS:
                    continue
                missing = [parameter for parameter in needed
                           if parameter not in _documented(ast.get_docstring(function) or "")]
                if missing:
                    yield f"{path.relative_to(SRC)}:{function.lineno} {name}: {', '.join(missing)}"


def test_the_api_of_the_packages_is_found() -> None:
    api = {(path.relative_to(SRC).as_posix(), name) for path, name in _api_of_packages()}
    assert ("stembench/dataset_publish/storage/cache.py", "load_cached") in api  # _PUBLIC
    assert ("stembench/client/analysis/cutoffs.py", "compute_cutoffs") in api  # __all__


def test_every_public_function_documents_its_parameters() -> None:
    missing = list(undocumented_parameters())
    assert not missing, f"{len(missing)} public functions leave parameters undocumented:\n" + \
        "\n".join(missing)
