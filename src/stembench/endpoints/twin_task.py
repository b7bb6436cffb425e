"""The endpoint operation that renders an image's twins into a dataset file there.

``stembench assess`` sends the fitted :class:`~stembench.dataset_publish.simulate.twin.TwinModel`
and its plan as JSON; :func:`build_twin_dataset` renders them where the models will run and
answers with the file's path and image ids, which the client then evaluates exactly as
``stembench evaluate`` does (a :class:`~stembench.endpoints.requests.DatasetRef` with
``source="path"``). The file is named by the content of the model and plan, so asking again
reuses it; :func:`remove_twin_dataset` deletes it once the client has the scores.

The folder (:func:`twin_dir`) must be readable by every worker that may evaluate a shard: on a
cluster these are other nodes and other batch jobs (each with its own ``$TMPDIR``), so the
default is ``~/.cache/stembench/twins`` in the user's home (per user, on the shared home of most
clusters; not under ``$STEMBENCH_CACHE``, which an administrator may share between users or
keep read-only), created readable by its owner only. ``$STEMBENCH_TWIN_DIR`` names another
such folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import uuid
from pathlib import Path
from typing import Any

from stembench._version import __version__
from stembench.dataset_publish.storage.cache_dir import home_cache_dir
from stembench.endpoints.requests import check_compatible
from stembench.errors import DatasetError, InputError

__all__ = ["TWIN_DIR_ENV", "build_twin_dataset", "check_twin_file", "remove_twin_dataset",
           "twin_dir"]

#: Environment variable naming the folder twin datasets are written to, a folder every worker
#: of the user's endpoint can read (default: ``~/.cache/stembench/twins``).
TWIN_DIR_ENV = "STEMBENCH_TWIN_DIR"
_TWIN_NAME = re.compile(r"twin-[0-9a-f]{24}-[0-9a-f]{12}\.h5")


def twin_dir() -> Path:
    """The folder twin datasets are written to: ``$STEMBENCH_TWIN_DIR``, else
    ``~/.cache/stembench/twins`` of the user running this."""
    env = os.environ.get(TWIN_DIR_ENV)
    return Path(env).expanduser() if env else home_cache_dir() / "twins"


def _where_hint() -> str:
    return (f"set {TWIN_DIR_ENV} in the endpoint's environment to a folder of this user's that "
            "all the endpoint's workers can read (default: ~/.cache/stembench/twins)")


def check_twin_file(path: str) -> None:
    """Raise one line naming the folder and :data:`TWIN_DIR_ENV` when a twin file cannot be read.

    Parameters
    ----------
    path : str
        A dataset file about to be opened on this worker; only twin files
        (``twin-<key>-<render>.h5``) are checked.

    Raises
    ------
    DatasetError
        If ``path`` is a twin file this worker cannot read.
    """
    target = Path(path)
    if _TWIN_NAME.fullmatch(target.name) and not os.access(target, os.R_OK):
        raise DatasetError(
            f"twin file {target.name} not readable on worker {socket.gethostname()!r}: the "
            f"twins are written to {target.parent} by the worker that renders them and read by "
            f"every worker; {_where_hint()}")


def build_twin_dataset(model: dict[str, Any], plan: list[dict[str, Any]],
                       client_version: str) -> dict[str, Any]:
    """Render the twins of ``model`` as ``plan`` says into a dataset file on this machine.

    Parameters
    ----------
    model : dict
        :meth:`TwinModel.to_dict` of the fitted model.
    plan : list of dict
        The variants (:func:`~stembench.dataset_publish.simulate.twin.plan_to_json`).
    client_version : str
        The caller's stembench version (checked for compatibility).

    Returns
    -------
    dict
        ``{"path": str, "twin_set": str, "image_ids": [str, ...]}``: the file of this render
        (``twin-<key>-<render>.h5``, its own for each call, so that an assess that ends and
        deletes its file never deletes one another assess of the same image still reads) and
        the name of the twin set (``twin-<key>``, the same for the same model and plan).
    """
    from stembench.dataset_publish.simulate.twin import TwinModel, TwinVariant, write_twin_dataset

    check_compatible(client_version, __version__)
    twin = TwinModel.from_dict(model)
    try:
        variants = [TwinVariant(**{k: (math.nan if k == "axis_value" and v is None else v)
                                   for k, v in item.items()})  # type: ignore[arg-type]
                    for item in plan]
    except TypeError as exc:
        raise InputError(f"malformed twin plan: {exc}") from exc
    if not variants:
        raise InputError("twin plan is empty")
    folder = twin_dir()
    key = hashlib.sha256(json.dumps([model, plan, __version__], sort_keys=True)
                         .encode()).hexdigest()[:24]
    path = folder / f"twin-{key}-{uuid.uuid4().hex[:12]}.h5"
    try:
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)  # the user's own: no other user reads it
        write_twin_dataset(twin, variants, path)
    except OSError as exc:  # not writable by this user, not a folder, full...
        raise DatasetError(f"cannot write the twins to {folder} on worker "
                           f"{socket.gethostname()!r} ({exc.strerror or exc}); "
                           f"{_where_hint()}") from exc
    return {"path": str(path), "twin_set": f"twin-{key}",
            "image_ids": [v.image_id for v in variants]}


def remove_twin_dataset(path: str, client_version: str) -> bool:
    """Delete a twin file :func:`build_twin_dataset` wrote, once its scores are back.

    Parameters
    ----------
    path : str
        The ``path`` :func:`build_twin_dataset` answered.
    client_version : str
        The caller's stembench version (checked for compatibility).

    Returns
    -------
    bool
        Whether a file was deleted (``False``: it was gone already).

    Raises
    ------
    InputError
        If ``path`` is not a twin file in this worker's :func:`twin_dir` (nothing else is
        ever deleted).
    """
    check_compatible(client_version, __version__)
    target = Path(path)
    if not _TWIN_NAME.fullmatch(target.name) or \
            target.parent.resolve() != twin_dir().resolve():
        raise InputError(f"{path}: not a twin file in {twin_dir()}; nothing deleted")
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    return True
