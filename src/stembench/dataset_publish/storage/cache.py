"""The local dataset cache behind :func:`stembench.load`.

A named dataset lives at ``<cache>/<name>/<version>/<preset>.h5`` (with its
``.manifest.json`` beside it). :func:`load_cached` (the cache's part of
:func:`stembench.load`) returns it from the cache, filling the cache on first use, and fully
verifies the cached file against its manifest (once per content: see
:func:`~stembench.dataset_publish.storage.verified.verify_dataset_file`).

Filling the cache tries, in order:

1. every registered *source* (:func:`register_source`), e.g. a download from the Materials
   Data Facility / Foundry. A source is a callable ``source(request) -> bool`` that
   receives a :class:`CacheRequest` and either places the dataset file at
   ``request.path`` (atomically: write a temporary file beside it, then rename) and returns
   ``True``, or returns ``False`` when it cannot provide that name, version and preset.
   :func:`load_cached` then verifies what the source placed exactly as it verifies any cached
   file, and refuses it on a mismatch.
2. the dataset's builder (``stembench.dataset_publish.build.build_dataset``), which
   generates the dataset locally; only the current generator version can be built.
"""

from __future__ import annotations

import fcntl
import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stembench._moved import moved_names
from stembench.dataset_publish.storage.cache_dir import default_cache_dir
from stembench.dataset_publish.storage.manifest import manifest_sidecar_path, read_manifest
from stembench.dataset_publish.storage.published import H5ImageSet
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.dataset_publish.storage.verified import verify_dataset_file
from stembench.errors import DatasetError, InputError, IntegrityError

__all__ = [
    "BUILDER_MODULES",
    "CacheRequest",
    "DatasetSource",
    "cache_path",
    "default_cache_dir",
    "load_cached",
    "provenance_path",
    "register_source",
    "registered_sources",
    "unregister_source",
]

BUILDER_MODULES: dict[str, str] = {
    "atom-locating-benchmark": "stembench.dataset_publish.build",
}
"""Known dataset names and the module whose ``build_dataset`` and ``DATASET_VERSION``
build them."""


@dataclass(frozen=True)
class CacheRequest:
    """One dataset file the cache wants.

    Attributes
    ----------
    name, version, preset : str
        Which dataset.
    path : Path
        Where its HDF5 file must be placed (its folder exists).
    service : str, optional
        The MDF service to ask (``"prod"``, ``"staging"``, ``"dev"``); ``None`` lets the
        source choose (mdf-cli's default, or ``$MDF_SERVICE``).
    provenance : dict
        Sources record here where the file came from, or why they did not provide it;
        :func:`load` stores it beside the file (:func:`provenance_path`).
    """

    name: str
    version: str
    preset: str
    path: Path
    service: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)


DatasetSource = Callable[[CacheRequest], bool]
"""A callable that may place the requested dataset file; see the module docstring."""

_SOURCES: list[DatasetSource] = []


def register_source(source: DatasetSource, *, first: bool = False) -> None:
    """Add a source tried before building (after the ones already registered).

    Parameters
    ----------
    source : callable
        ``source(request: CacheRequest) -> bool``; see the module docstring.
    first : bool
        Try this source before the ones already registered.
    """
    if source in _SOURCES:
        return
    if first:
        _SOURCES.insert(0, source)
    else:
        _SOURCES.append(source)


def unregister_source(source: DatasetSource) -> None:
    """Remove a registered source (no error if it is not registered)."""
    if source in _SOURCES:
        _SOURCES.remove(source)


def registered_sources() -> tuple[DatasetSource, ...]:
    """Return the registered sources in the order they are tried."""
    return tuple(_SOURCES)


def cache_path(name: str, *, preset: str, version: str, cache_dir: Path | None = None) -> Path:
    """Return where a dataset file lives in the cache: ``<cache>/<name>/<version>/<preset>.h5``.

    Parameters
    ----------
    name : str
        The dataset's name (a plain file name).
    preset : str
        Its preset, e.g. ``"mini"`` or ``"standard"``.
    version : str
        Its version.
    cache_dir : pathlib.Path, optional
        Cache root; default :func:`default_cache_dir`.
    """
    for label, value in (("name", name), ("preset", preset), ("version", version)):
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise InputError(f"dataset {label} must be a plain non-empty name, got {value!r}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / name / version / f"{preset}.h5"


def provenance_path(path: Path) -> Path:
    """Return where the provenance of a cached file is kept: ``<file>.provenance.json``."""
    return path.with_name(path.name + ".provenance.json")


def _read_provenance(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(provenance_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    manifest_sidecar_path(path).unlink(missing_ok=True)
    provenance_path(path).unlink(missing_ok=True)


def _check_cached(path: Path, *, name: str, version: str, cache_dir: Path | None) -> None:
    advice = (
        f"Rebuild it with stembench.load(..., rebuild=True) or delete {path} "
        "(and its .manifest.json)."
    )
    try:
        manifest = read_manifest(path)
        verify_dataset_file(path, cache_dir=cache_dir)
    except IntegrityError as exc:
        raise IntegrityError(f"cached dataset {exc} {advice}") from exc
    except DatasetError as exc:
        raise IntegrityError(
            f"cached dataset {path} is unreadable or truncated: {exc}. {advice}"
        ) from exc
    if (manifest.name, manifest.version) != (name, version):
        raise IntegrityError(
            f"cached dataset {path} holds {manifest.name!r} version {manifest.version!r}, "
            f"expected {name!r} version {version!r}. {advice}"
        )


def _builder(name: str) -> Any:
    return importlib.import_module(BUILDER_MODULES[name])


def _fill(request: CacheRequest) -> None:
    for source in _SOURCES:
        if source(request) and request.path.is_file():
            request.provenance.setdefault("origin", getattr(source, "__name__", "source"))
            _write_provenance(request)
            return
    builder = _builder(request.name)
    current = str(builder.DATASET_VERSION)
    if request.version != current:
        raise DatasetError(
            f"dataset {request.name!r} version {request.version!r} is not in the cache "
            f"({request.path}) and no registered source provides it; this stembench builds "
            f"version {current!r} only"
        )
    request.path.parent.mkdir(parents=True, exist_ok=True)
    builder.build_dataset(request.path, preset=request.preset)
    request.provenance["origin"] = "built"
    _write_provenance(request)


@contextmanager
def _one_filler(path: Path) -> Iterator[None]:
    """Fill a cache entry in one process at a time; remove what a killed filler left.

    Every filler of ``path`` holds an exclusive ``flock`` on ``<path>.lock`` (released by
    the kernel however the holder ends), so the temporary files beside ``path``
    (``.<name>.<hex>.tmp``, see :class:`stembench.atomic.AtomicPath`) found while holding
    it belong to no live writer: they are the leftovers of a build that was killed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        yield


def _write_provenance(request: CacheRequest) -> None:
    provenance_path(request.path).write_text(json.dumps(request.provenance, indent=1) + "\n",
                                             encoding="utf-8")


def load_cached(name: str, *, preset: str, version: str | None, cache_dir: Path | None,
                rebuild: bool, service: str | None = None) -> H5ImageSet:
    """Return a dataset of :data:`BUILDER_MODULES` from the cache, filling it on first use.

    The part of :func:`stembench.load` (:func:`stembench.dataset_publish.loading.load`) that
    knows only the cache: its arguments have the same meaning there (``service`` goes to
    the sources in the :class:`CacheRequest`). The dataset's ``provenance`` is what the
    source or the build recorded when the file was placed (:func:`provenance_path`).

    Parameters
    ----------
    name : str
        The dataset's name, one of :data:`BUILDER_MODULES`.
    preset, version, cache_dir, rebuild, service
        As in :func:`stembench.dataset_publish.loading.load` (``version`` ``None``: the version
        this stembench generates).
    """
    if version is None:
        version = str(_builder(name).DATASET_VERSION)
    path = cache_path(name, preset=preset, version=version, cache_dir=cache_dir)
    if rebuild:
        _remove(path)
    if not path.is_file():
        with _one_filler(path):
            if not path.is_file():  # another process may have filled it while we waited
                _fill(CacheRequest(name=name, version=version, preset=preset, path=path,
                                   service=service))
    _check_cached(path, name=name, version=version, cache_dir=cache_dir)
    dataset = open_dataset(path, verify=True)
    dataset.provenance = _read_provenance(path)
    return dataset


__getattr__ = moved_names(__name__, {"load": "stembench.dataset_publish.loading"})
