"""Published weight files: fetched from their public address, verified, scored as published.

stembench never ships a published weight file (their repositories state no licence that would
let it). ``stembench models fetch NAME`` downloads the file from its public address (or from a
mirror: ``--mirror`` or ``$STEMBENCH_WEIGHTS_MIRROR``, a base URL or a folder holding the file
under its published name), checks its size and its pinned SHA-256, and only then moves it into
``<cache>/published-weights/<NAME>/`` (``<cache>`` as for datasets: ``$STEMBENCH_CACHE`` or
``~/.cache/stembench``). A failed fetch leaves nothing in the cache. Once fetched, ``NAME`` is a
registry model like any other; its file is verified again every time it is loaded.

An entry whose SHA-256 could not be established is listed with its address and the reason,
and is never fetched: a file nobody pinned could be anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import numpy as np
from numpy.typing import NDArray

from stembench.atomic import AtomicPath
from stembench.endpoints.models.base import Model, ModelInfo
from stembench.endpoints.models.loaders import import_object
from stembench.errors import ModelError

__all__ = [
    "MIRROR_ENV",
    "PUBLISHED",
    "PublishedModel",
    "PublishedWeights",
    "fetch_published",
    "fetched_path",
    "get_published",
    "load_published",
    "published_dir",
    "weights_origin",
]

MIRROR_ENV = "STEMBENCH_WEIGHTS_MIRROR"
_CHUNK = 1 << 16
_MODELS = "stembench.endpoints.models"


@dataclass(frozen=True)
class PublishedWeights:
    """One published weight file and the network it belongs to.

    Attributes
    ----------
    name : str
        Registry name of the published model.
    description : str
        One line saying what it is.
    url : str
        The public address of the file.
    file_name : str
        The file's published name (also its name in a mirror).
    sha256 : str or None
        Pinned SHA-256; ``None`` when it could not be established (then it is never fetched).
    size : int or None
        Pinned size in bytes.
    framework : str
        Framework the network runs in here.
    target : str
        ``"module:object"`` that builds the network from ``weights=<file>``.
    options : dict
        Further keyword options of ``target``.
    unavailable : str
        Why it cannot be fetched (empty when it can).
    """

    name: str
    description: str
    url: str
    file_name: str
    sha256: str | None
    size: int | None
    framework: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    unavailable: str = ""


_AICRYSTALLOGRAPHER = "https://github.com/pycroscopy/AICrystallographer/raw/master/AtomNet/saved_models"

#: Every published weight file stembench knows, fetchable or not.
PUBLISHED: tuple[PublishedWeights, ...] = (
    PublishedWeights(
        "atomnet-cubic-published",
        "Ziatdinov's published AtomNet for cubic lattices (AICrystallographer 2019 release, "
        "the model Wei et al. 2023 scored on SrTiO3)",
        f"{_AICRYSTALLOGRAPHER}/cubic-best_weights.pt", "cubic-best_weights.pt",
        "dc305d6f48bb3e6a22fd91385ef561b4425e73e74a9ecaf8b206a86bbe327c35", 4_034_538,
        "tensorflow", f"{_MODELS}.atomnet:AtomNet", {"variant": "cubic"}),
    PublishedWeights(
        "atomnet-graphene-published",
        "Ziatdinov's published AtomNet for graphene (G-Si-DFT0-1-4, the model Wei et al. "
        "2023 scored on WS2)",
        f"{_AICRYSTALLOGRAPHER}/G-Si-DFT0-1-4-best_weights.pt", "G-Si-DFT0-1-4-best_weights.pt",
        None, None, "tensorflow", f"{_MODELS}.atomnet:AtomNet", {"variant": "hexagonal"},
        unavailable="could not be fetched or verified: the file named by the authors' scripts "
        "is not in the repository's stored history, Wei et al.'s packaging keeps it inside the "
        "container of Garden/DLHub DOI 10.26311/bf7a-7071, and no SHA-256 of it is published"),
    PublishedWeights(
        "atomsegnet-gaussianmask-published",
        "Lin et al.'s published AtomSegNet gaussianMask+ (the model Wei et al. 2023 scored)",
        "https://raw.githubusercontent.com/xinhuolin/AtomSegNet/master/model_weights/"
        "gaussianMask%2B.pth", "gaussianMask+.pth", None, None, "pytorch",
        f"{_MODELS}.atomsegnet:AtomSegNet",
        unavailable="could not be fetched or verified: xinhuolin/AtomSegNet keeps model_weights/ "
        "out of git (the address is the one its users' scripts try), Wei et al.'s packaging "
        "keeps it inside the container of Garden/DLHub DOI 10.26311/8s9h-dz64, and no SHA-256 "
        "of it is published"),
)


def get_published(name: str) -> PublishedWeights:
    """The published entry called ``name``; :class:`ModelError` listing the names otherwise."""
    for entry in PUBLISHED:
        if entry.name == name:
            return entry
    names = ", ".join(entry.name for entry in PUBLISHED)
    raise ModelError(f"unknown published model {name!r}; known: {names}")


def published_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/published-weights``; ``<cache>`` is the dataset cache's folder by default."""
    from stembench.dataset_publish.storage.cache import default_cache_dir

    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "published-weights"


def fetched_path(name: str, *, cache_dir: Path | None = None) -> Path:
    """Where the published file of ``name`` lives in the cache (whether or not it is there)."""
    entry = get_published(name)
    return published_dir(cache_dir) / entry.name / entry.file_name


def _source(entry: PublishedWeights, mirror: str | None) -> str:
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if mirror is None:
        return entry.url
    if urlparse(mirror).scheme in ("http", "https", "file"):
        return f"{mirror.rstrip('/')}/{quote(entry.file_name)}"
    return str(Path(mirror).expanduser() / entry.file_name)


def _copy_hashed(source: str, out: Any, timeout_s: float) -> tuple[int, str]:
    """Write ``source`` (URL or local path) to ``out``; bytes written and their SHA-256."""
    digest, written = hashlib.sha256(), 0
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            with requests.get(source, stream=True, timeout=timeout_s) as response:
                if response.status_code != 200:
                    raise ModelError(f"{source} answered HTTP {response.status_code}")
                announced = response.headers.get("Content-Length")
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
        except requests.exceptions.Timeout:
            raise ModelError(f"no answer from {source} within {timeout_s:g} s") from None
        except requests.exceptions.ChunkedEncodingError:  # the server stopped mid-file
            raise ModelError(f"download from {source} was cut short after {written:,} "
                             "bytes") from None
        except requests.exceptions.ConnectionError as exc:
            raise ModelError(f"cannot reach {source}: {type(exc).__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise ModelError(f"download from {source} failed: {type(exc).__name__}") from None
        if announced is not None and announced.isdigit() and int(announced) != written:
            raise ModelError(f"download from {source} was cut short: {written:,} of "
                             f"{int(announced):,} bytes")
        return written, digest.hexdigest()
    path = Path(parsed.path if parsed.scheme == "file" else source)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return written, digest.hexdigest()


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    created = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        created.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    return created


def fetch_published(name: str, *, mirror: str | None = None, cache_dir: Path | None = None,
                    timeout_s: float = 60.0) -> Path:
    """Download, verify and cache the published weight file of ``name``.

    Parameters
    ----------
    name : str
        A name of :data:`PUBLISHED`.
    mirror : str, optional
        Base URL (``http(s)://``, ``file://``) or folder holding the file under its published
        name; default ``$STEMBENCH_WEIGHTS_MIRROR``, else the public address.
    cache_dir : Path, optional
        Cache root (default: the dataset cache's).
    timeout_s : float
        Seconds to wait for the server to connect and for each read.

    Returns
    -------
    Path
        The verified file in the cache (returned at once when it is there already).

    Raises
    ------
    ModelError
        One line naming the problem: unknown name, no pinned hash, unreachable address, a
        cut-short download, a wrong size or SHA-256. Nothing is left in the cache.
    """
    entry = get_published(name)
    if entry.sha256 is None:
        raise ModelError(f"{name}: {entry.unavailable} ({entry.url})")
    final = fetched_path(name, cache_dir=cache_dir)
    if final.is_file() and _sha256(final) == entry.sha256:
        return final
    source = _source(entry, mirror)
    created = _make_dirs(final.parent)
    try:
        with AtomicPath(final) as temporary:
            with temporary.open("wb") as out:
                size, digest = _copy_hashed(source, out, timeout_s)
            if entry.size is not None and size != entry.size:
                raise ModelError(f"{name}: {source} gave {size:,} bytes, expected "
                                 f"{entry.size:,} (cut short or another file); nothing was "
                                 "cached")
            if digest != entry.sha256:
                raise ModelError(f"{name}: {source} has SHA-256 {digest}, expected "
                                 f"{entry.sha256}; nothing was cached")
    except BaseException:
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return final


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class PublishedModel(Model):
    """A network with published weights, under the published entry's name.

    Delegates everything to the network it wraps; only the name in :attr:`info` differs, so
    results of the published weights are never mixed with those of a network trained here.
    """

    def __init__(self, inner: Model, name: str) -> None:
        self.inner = inner
        info = inner.info
        self._info = ModelInfo(name, info.version, info.framework, info.weights_sha256)

    @property
    def info(self) -> ModelInfo:
        """The wrapped network's identity under the published name."""
        return self._info

    @property
    def batch_size(self) -> int:
        """The wrapped network's batch size."""
        return self.inner.batch_size

    def locate(self, image: NDArray[np.floating], pixel_size: float) -> NDArray[np.float64]:
        """Column positions (x, y) in pixels, as the wrapped network finds them."""
        return self.inner.locate(image, pixel_size)

    def locate_batch(self, images: Sequence[NDArray[np.floating]],
                     pixel_sizes: Sequence[float]) -> list[NDArray[np.float64]]:
        """Column positions for several images, batched as the wrapped network batches."""
        return self.inner.locate_batch(images, pixel_sizes)


def load_published(name: str, *, cache_dir: Path | None = None, **options: Any) -> Model:
    """Build the published model ``name`` from its fetched, re-verified file.

    Raises
    ------
    ModelError
        When it was not fetched (the message gives the command that fetches it), cannot be
        fetched, or the cached file no longer has the pinned SHA-256.
    """
    entry = get_published(name)
    if entry.sha256 is None:
        raise ModelError(f"{name}: {entry.unavailable} ({entry.url})")
    path = fetched_path(name, cache_dir=cache_dir)
    if not path.is_file():
        raise ModelError(f"{name} is not in the cache ({path}); fetch it with "
                         f"`stembench models fetch {name}`")
    digest = _sha256(path)
    if digest != entry.sha256:
        raise ModelError(f"{name}: the cached {path} has SHA-256 {digest}, expected "
                         f"{entry.sha256}; delete it and run `stembench models fetch {name}`")
    build = import_object(entry.target)
    return PublishedModel(build(**{**entry.options, **options, "weights": path}), name)


@cache
def _shipped_hashes() -> frozenset[str]:
    folder = resources.files("stembench.endpoints") / "weights"
    return frozenset(item.read_text(encoding="utf-8").split()[0] for item in folder.iterdir()
                     if item.name.endswith(".sha256"))


def weights_origin(weights_sha256: str | None) -> str:
    """Where a model's weights come from, judged by their SHA-256.

    Returns ``"published weights"`` for a pinned published file, ``"trained here"`` for the
    weights stembench ships, ``"no weights"`` for a model without any, and ``"other"`` for
    anything else (a user's file).
    """
    if not weights_sha256:
        return "no weights"
    if any(entry.sha256 == weights_sha256 for entry in PUBLISHED):
        return "published weights"
    return "trained here" if weights_sha256 in _shipped_hashes() else "other"
