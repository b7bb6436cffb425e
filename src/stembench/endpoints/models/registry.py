"""The model registry: built-in models, plug-ins by entry point, files and callables.

Built-in models are named by import path strings and imported only when loaded, so
importing this module never imports torch or TensorFlow. Plug-ins register an entry point in
the group ``stembench.models`` whose object is a :class:`Model` subclass, a :class:`Model`
instance, or a factory that returns a :class:`Model` when called with the load options::

    [project.entry-points."stembench.models"]
    my-net = "my_package.models:MyNet"
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from stembench.endpoints.models.base import Model
from stembench.endpoints.models.loaders import (
    CallableModel,
    KerasFileModel,
    OnnxFileModel,
    TorchFileModel,
    import_object,
)
from stembench.errors import MissingExtraError, ModelError, StembenchError
from stembench.identity import file_sha256

__all__ = ["ENTRY_POINT_GROUP", "ModelEntry", "available_models", "get_entry", "load_model",
           "model_identity"]

ENTRY_POINT_GROUP = "stembench.models"
_FRAMEWORK_MODULES = {"pytorch": "torch", "tensorflow": "tensorflow", "onnx": "onnxruntime"}
#: The extras that install each framework (pyproject: keras and onnxruntime are in `models`).
_FRAMEWORK_EXTRAS = {"pytorch": "torch", "tensorflow": "models,tensorflow", "onnx": "models"}


@dataclass(frozen=True)
class ModelEntry:
    """One model that :func:`load_model` can build by name.

    Attributes
    ----------
    name : str
        The name to load it by.
    description : str
        One line saying what it is.
    framework : str
        ``"pytorch"``, ``"tensorflow"``, ``"classical"``, or ``"plugin"`` for entry points.
    extra : str or None
        The stembench extra that installs what it needs, ``None`` if nothing.
    importable : bool
        Whether what it needs is installed now (checked without importing it).
    target : str
        ``"module:object"`` that builds it.
    options : dict
        Keyword options the target is called with, before the user's.
    source : str
        ``"built-in"``, ``"published weights"`` (fetched with ``stembench models fetch``) or
        the distribution that registers the entry point.
    """

    name: str
    description: str
    framework: str
    extra: str | None
    importable: bool
    target: str
    options: dict[str, Any]
    source: str = "built-in"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _built_in(
    name: str, description: str, framework: str, target: str, **options: Any
) -> ModelEntry:
    module = _FRAMEWORK_MODULES.get(framework)
    importable = module is None or _installed(module)
    extra = _FRAMEWORK_EXTRAS.get(framework)
    return ModelEntry(name, description, framework, extra, importable, target, options)


def _built_ins() -> list[ModelEntry]:
    models = "stembench.endpoints.models"
    return [
        _built_in("atomsegnet", "AtomSegNet gaussianMask+ U-Net (Lin et al. 2021), watershed "
                  "post-processing; weights trained here", "pytorch",
                  f"{models}.atomsegnet:AtomSegNet"),
        _built_in("atomnet-cubic", "AtomNet residual network for cubic lattices (Ziatdinov's "
                  "2019 PyTorch release, resatomsegnet_s2); weights trained here", "tensorflow",
                  f"{models}.atomnet:AtomNet", variant="cubic"),
        _built_in("atomnet-hexagonal", "AtomNet dilated network for hexagonal lattices "
                  "(Ziatdinov's 2019 PyTorch release, atomsegnet); weights trained here on "
                  "graphene", "tensorflow",
                  f"{models}.atomnet:AtomNet", variant="hexagonal"),
        _built_in("atomap-like", "Atomap-style local maxima, centre of mass and 2D Gaussian "
                  "refinement (no training)", "classical", f"{models}.classical:AtomapLike"),
        _built_in("log-blob", "Laplacian-of-Gaussian blobs with sub-pixel refinement (no "
                  "training)", "classical", f"{models}.classical:LoGDetector"),
    ]


def _published() -> list[ModelEntry]:
    """The published weight files (:mod:`.published`): loadable once fetched into the cache."""
    from stembench.endpoints.models.published import PUBLISHED, fetched_path

    entries = []
    for item in PUBLISHED:
        if item.unavailable:
            state = item.unavailable
        elif fetched_path(item.name).is_file():
            state = "fetched"
        else:
            state = f"not fetched: stembench models fetch {item.name}"
        entry = _built_in(item.name, f"{item.description}; {state}", item.framework,
                          "stembench.endpoints.models.published:load_published")
        entry = replace(entry, options={"name": item.name}, source="published weights")
        entries.append(entry)
    return entries


def _plugins(taken: set[str]) -> list[ModelEntry]:
    entries = []
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name in taken:
            continue
        dist = point.dist.name if point.dist is not None else "unknown distribution"
        entries.append(ModelEntry(
            name=point.name,
            description=f"plug-in {point.value} from {dist}",
            framework="plugin",
            extra=None,
            importable=_installed(point.module),
            target=point.value,
            options={},
            source=dist,
        ))
        taken.add(point.name)
    return entries


def available_models() -> list[ModelEntry]:
    """Built-in models, the published weight files, then the plug-ins in ``stembench.models``.

    A plug-in whose name a built-in already uses is skipped (built-ins win).
    """
    built_ins = _built_ins() + _published()
    return built_ins + _plugins({entry.name for entry in built_ins})


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``; :class:`ModelError` listing the names otherwise."""
    entries = available_models()
    for entry in entries:
        if entry.name == name:
            return entry
    raise ModelError(_unknown(name, entries))


def _unknown(spec: str, entries: list[ModelEntry]) -> str:
    names = ", ".join(entry.name for entry in entries)
    return (
        f"unknown model {spec!r}: not a registered name ({names}), not an existing .pt/.pth/"
        ".keras/.onnx file, and not 'module:function'"
    )


def _as_model(built: Any, spec: str) -> Model:
    if not isinstance(built, Model):
        raise ModelError(f"model {spec!r} built a {type(built).__name__}, not a stembench Model")
    return built


def _from_entry(entry: ModelEntry, options: dict[str, Any]) -> Model:
    if not entry.importable and entry.extra is not None:
        module = _FRAMEWORK_MODULES[entry.framework]
        raise MissingExtraError(module, entry.extra, f"The model {entry.name!r}")
    target = import_object(entry.target)
    merged = {**entry.options, **options}
    if isinstance(target, Model):
        if merged:
            raise ModelError(f"model {entry.name!r} is a ready instance and takes no options")
        return target
    if not callable(target):
        raise ModelError(f"model {entry.name!r}: {entry.target} is not a Model or a factory")
    return _as_model(target(**merged), entry.name)


def _from_file(path: Path, options: dict[str, Any]) -> Model:
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return TorchFileModel(path, **options)
    if suffix == ".keras":
        return KerasFileModel(path, **options)
    if suffix == ".onnx":
        return OnnxFileModel(path, **options)
    raise ModelError(
        f"model file {str(path)!r}: unknown suffix {suffix!r}; expected .pt, .pth, .keras or .onnx"
    )


def _from_object(spec: str, options: dict[str, Any]) -> Model:
    target = import_object(spec)
    if isinstance(target, type) and issubclass(target, Model):
        return target(**options)
    if isinstance(target, Model):
        return target
    if options:
        raise ModelError(f"model {spec!r} is a plain function and takes no options, got {options}")
    return CallableModel(target, name=spec)


def load_model(spec: str, **options: Any) -> Model:
    """Build the model that ``spec`` names.

    Parameters
    ----------
    spec : str
        A registry name (``"atomap-like"``), an entry-point name, a path to a ``.pt``/``.pth``
        (TorchScript, or a state dict with ``model_class="module:Class"``), ``.keras`` or
        ``.onnx`` file, or ``"module:function"`` for a callable ``f(image, pixel_size) -> (N, 2)``
        (``"module:Class"`` of a :class:`Model` subclass is built with ``options``).
    **options
        Keyword options for the model's constructor.

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        If the spec names nothing known (the message lists the registered names) or the model
        cannot be built (whatever its own code raised while it was built).
    MissingExtraError
        If the model's framework is not installed; the message names the extra.

    Examples
    --------
    >>> import numpy as np
    >>> model = load_model("atomap-like")
    >>> model.info.name
    'atomap-like'
    >>> rows, cols = np.mgrid[0:48, 0:48]
    >>> image = np.exp(-((cols - 24.0) ** 2 + (rows - 20.0) ** 2) / 8.0)  # one column
    >>> model.locate(image, pixel_size=0.1).round(1)
    array([[24., 20.]])
    """
    try:
        return _build(spec, options)
    except StembenchError:
        raise
    except (Exception, SystemExit) as exc:  # a model's own code failed while it was built
        raise ModelError(f"model {spec!r} failed to load: {type(exc).__name__}: {exc}") from exc


def _build(spec: str, options: dict[str, Any]) -> Model:
    entries = available_models()
    for entry in entries:
        if entry.name == spec:
            return _from_entry(entry, options)
    path = Path(spec)
    if path.suffix.lower() in (".pt", ".pth", ".keras", ".onnx"):
        if not path.is_file():
            raise ModelError(f"model file {spec!r} does not exist")
        return _from_file(path, options)
    if ":" in spec and not path.exists():
        return _from_object(spec, options)
    raise ModelError(_unknown(spec, entries))


def _source_sha256(spec: str) -> str | None:
    """SHA-256 of the file defining a ``module:object`` model, ``None`` if it has none."""
    target = import_object(spec)
    owner = target if inspect.isfunction(target) or inspect.isclass(target) else type(target)
    try:
        source = inspect.getsourcefile(owner)
    except TypeError:  # a built-in or C extension object
        return None
    return file_sha256(source) if source and Path(source).is_file() else None


def model_identity(model: Any, spec: str) -> dict[str, Any]:
    """Identity of a loaded model: its info, plus its source's hash for ``module:object``.

    A file model's info already carries its file's SHA-256 (``weights_sha256``); a
    registered model is identified by its name, version and weights hash.

    Parameters
    ----------
    model : Model
        The loaded model.
    spec : str
        The spec it was loaded from (registry name, file path or ``module:object``).

    Returns
    -------
    dict
        ``{"name", "version", "framework", "weights_sha256", "source_sha256"}``.
    """
    identity = asdict(model.info)
    is_object = ":" in spec and not Path(spec).exists() and spec not in {
        entry.name for entry in available_models()}
    identity["source_sha256"] = _source_sha256(spec) if is_object else None
    return identity
