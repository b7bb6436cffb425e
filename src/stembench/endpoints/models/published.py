"""Published weight files: fetched from their public address, verified, scored as published.

stembench never ships a published weight file (AICrystallographer states no licence; AtomSegNet
is MIT-licensed, but its files are fetched the same way so every published file has one path).
``stembench models fetch NAME`` downloads the file from its public address (or from a mirror:
``--mirror`` or ``$STEMBENCH_WEIGHTS_MIRROR``, a base URL or a folder holding the file under its
published name), checks every pin it has (size, SHA-256, git blob SHA-1: all must match), and
only then moves it into
``<cache>/published-weights/<NAME>/`` (``<cache>`` as for datasets: ``$STEMBENCH_CACHE`` or
``~/.cache/stembench``). A failed fetch leaves nothing in the cache. Once fetched, ``NAME`` is a
registry model like any other; its file is verified again every time it is loaded.

The git blob SHA-1 is the content hash the upstream repository publishes for the file
(``git ls-tree``): ``sha1(b"blob <size>\\0" + content)``. An entry with neither hash pinned, or
with a reason in ``unavailable``, is listed with its address and never fetched.
"""

from __future__ import annotations

import hashlib
import os
import socket
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
from stembench.endpoints.models.weights_download import DEFAULT_TOTAL_TIMEOUT_S, copy_source
from stembench.errors import ModelError

__all__ = [
    "MIRROR_ENV",
    "PUBLISHED",
    "PublishedModel",
    "PublishedWeights",
    "fetch_published",
    "fetched_path",
    "file_hashes",
    "get_published",
    "load_published",
    "published_dir",
    "verified_pins",
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
    git_blob : str or None
        Pinned git blob SHA-1 of the file in its upstream repository.
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
    git_blob: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether a content hash of the file is pinned (SHA-256 or git blob SHA-1)."""
        return self.sha256 is not None or self.git_blob is not None


#: Each file addressed by a commit of its repository (the same blob is at that path in every
#: later commit), so a moved branch cannot turn every fetch into a hash mismatch.
_AICRYSTALLOGRAPHER = "https://raw.githubusercontent.com/pycroscopy/AICrystallographer"
_CUBIC_COMMIT = "503f21a46ac7e22b724e9a7c7a09e6afa7992e3d"
_GRAPHENE_COMMIT = "1cf8f82a38f42147ff0443e93fd41feee3c8740c"
_ATOMSEGNET_COMMIT = "b884d02a32fbbca2fef21ebf763d296db308c2d8"

#: Every published weight file stembench knows, fetchable or not.
PUBLISHED: tuple[PublishedWeights, ...] = (
    PublishedWeights(
        "atomnet-cubic-published",
        "Ziatdinov's published AtomNet for cubic lattices (AICrystallographer 2019 release, "
        "the model Wei et al. 2023 scored on SrTiO3)",
        f"{_AICRYSTALLOGRAPHER}/{_CUBIC_COMMIT}/AtomNet/saved_models/cubic-best_weights.pt",
        "cubic-best_weights.pt",
        "dc305d6f48bb3e6a22fd91385ef561b4425e73e74a9ecaf8b206a86bbe327c35", 4_034_538,
        "tensorflow", f"{_MODELS}.atomnet:AtomNet", {"variant": "cubic"},
        git_blob="2604d2a2b412db2fa5b1f57d3c06caf1a3523199"),
    PublishedWeights(
        "atomnet-graphene-published",
        "Ziatdinov's published AtomNet for graphene (G-Si-DFT0-1-4, the model Wei et al. "
        "2023 scored on WS2)",
        f"{_AICRYSTALLOGRAPHER}/{_GRAPHENE_COMMIT}/AtomNet/saved_models/G-Si-DFT0-1-4-best_weights.pt",
        "G-Si-DFT0-1-4-best_weights.pt",
        None, None, "tensorflow", f"{_MODELS}.atomnet:AtomNet", {"variant": "hexagonal"},
        # On master since 1cf8f82 (2019-02-28); the file loaded by dcnn.load_torchmodel("graphene").
        git_blob="012f4f6417eb78aa6ff900ef95985733505d06bf"),
    PublishedWeights(
        "atomsegnet-gaussianmask-published",
        "Lin et al.'s published AtomSegNet gaussianMask+ (the model Wei et al. 2023 scored)",
        f"https://raw.githubusercontent.com/xinhuolin/AtomSegNet/{_ATOMSEGNET_COMMIT}/"
        "model_weights/gaussianMask%2B.pth", "gaussianMask+.pth", None, None, "pytorch",
        f"{_MODELS}.atomsegnet:AtomSegNet",
        # On master since b884d02 (2019-10-30), loaded by utils.load_model into unet_sigmoid.UNet.
        git_blob="04464d67b166dfe32eba05b81e3e70aa4fda1bf1"),
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
                    timeout_s: float = 60.0,
                    total_timeout_s: float = DEFAULT_TOTAL_TIMEOUT_S) -> Path:
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
    total_timeout_s : float
        Seconds the whole download may take.

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
    entry = _fetchable(name)
    final = fetched_path(name, cache_dir=cache_dir)
    if final.is_file() and not _mismatch(entry, final):
        return final
    source = _source(entry, mirror)
    created = _make_dirs(final.parent)
    try:
        with AtomicPath(final) as temporary:
            with temporary.open("wb") as out:
                size = copy_source(source, out, timeout_s=timeout_s,
                                   total_timeout_s=total_timeout_s)
            if entry.size is not None and size != entry.size:
                raise ModelError(f"{name}: {source} gave {size:,} bytes, expected "
                                 f"{entry.size:,} (cut short or another file); nothing was "
                                 "cached")
            if mismatch := _mismatch(entry, temporary):
                raise ModelError(f"{name}: {source} has {mismatch}; nothing was cached")
    except BaseException:
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return final


def _fetchable(name: str) -> PublishedWeights:
    """The entry ``name``; :class:`ModelError` when it is not pinned or cannot be fetched."""
    entry = get_published(name)
    if entry.unavailable or not entry.pinned:
        reason = entry.unavailable or "no content hash of it is pinned"
        raise ModelError(f"{name}: {reason} ({entry.url})")
    return entry


def file_hashes(path: Path) -> tuple[str, str]:
    """SHA-256 and git blob SHA-1 (``sha1(b"blob <size>\\0" + content)``) of the file ``path``."""
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest()


def _mismatch(entry: PublishedWeights, path: Path) -> str:
    """What of ``path`` differs from the entry's pins (every pin is checked); ``""`` if none."""
    sha256, blob = file_hashes(path)
    wrong = [f"{label} {got}, expected {pin}" for label, got, pin in
             (("SHA-256", sha256, entry.sha256), ("git blob SHA-1", blob, entry.git_blob))
             if pin is not None and got != pin]
    return " and ".join(wrong)


def verified_pins(name: str) -> str:
    """The pins of ``name`` a fetch verifies, for messages (``"SHA-256 ..., git blob ..."``)."""
    entry = get_published(name)
    return ", ".join(f"{label} {pin}" for label, pin in
                     (("SHA-256", entry.sha256), ("git blob SHA-1", entry.git_blob)) if pin)


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

    Parameters
    ----------
    name : str
        The published model (see :func:`get_published`).
    cache_dir : pathlib.Path, optional
        Weights cache root; default :func:`published_dir`'s.
    **options
        Keyword options of the model built from the file, over the entry's own options.

    Raises
    ------
    ModelError
        When it was not fetched on the machine that loads it (the message names that host, its
        cache path and how to fetch there: on a Globus Compute endpoint that is the endpoint's
        host), cannot be fetched, or the cached file no longer matches its pins.
    """
    entry = _fetchable(name)
    path = fetched_path(name, cache_dir=cache_dir)
    if not path.is_file():
        raise ModelError(
            f"{name} is not in the weights cache of host {socket.gethostname()!r} ({path}), "
            f"the machine loading it (for a remote run: the endpoint's host); fetch it there "
            f"with `stembench models fetch {name}` run on that host as the user the endpoint "
            f"runs as (add `--mirror DIR_OR_URL` or set {MIRROR_ENV} where it cannot reach "
            f"{urlparse(entry.url).netloc}), or set STEMBENCH_CACHE in its environment to a folder "
            "holding a fetched copy")
    if mismatch := _mismatch(entry, path):
        raise ModelError(f"{name}: the cached {path} has {mismatch}; delete it and run "
                         f"`stembench models fetch {name}`")
    build = import_object(entry.target)
    return PublishedModel(build(**{**entry.options, **options, "weights": path}), name)


@cache
def _shipped_hashes() -> frozenset[str]:
    folder = resources.files("stembench.endpoints") / "weights"
    return frozenset(item.read_text(encoding="utf-8").split()[0] for item in folder.iterdir()
                     if item.name.endswith(".sha256"))


def weights_origin(weights_sha256: str | None, *, model: str | None = None) -> str:
    """Where a model's weights come from, judged by their SHA-256 (and the model's name).

    Returns ``"published weights"`` for a file with a pinned published SHA-256, or for the
    model of a published entry pinned by its git blob only (``load_published`` verified it),
    ``"trained here"`` for the weights stembench ships, ``"no weights"`` for a model without
    any, and ``"other"`` for anything else (a user's file).
    """
    if not weights_sha256:
        return "no weights"
    if any(entry.sha256 == weights_sha256 or (entry.name == model and entry.sha256 is None
                                              and entry.pinned) for entry in PUBLISHED):
        return "published weights"
    return "trained here" if weights_sha256 in _shipped_hashes() else "other"
