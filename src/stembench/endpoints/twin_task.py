"""The endpoint operation that renders an image's twins into a dataset file there.

``stembench assess`` sends the fitted :class:`~stembench.dataset_publish.simulate.twin.TwinModel`
and its plan as JSON; :func:`build_twin_dataset` renders them where the models will run and
answers with the file's path and image ids, which the client then evaluates exactly as
``stembench evaluate`` does (a :class:`~stembench.endpoints.requests.DatasetRef` with
``source="path"``). The file is named by the content of the model and plan, so asking again
reuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from stembench._version import __version__
from stembench.endpoints.requests import check_compatible
from stembench.errors import InputError

__all__ = ["TWIN_DIR_ENV", "build_twin_dataset"]

#: Environment variable naming the folder twin datasets are written to (default: the
#: system's temporary folder, ``stembench-twins``).
TWIN_DIR_ENV = "STEMBENCH_TWIN_DIR"


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
        ``{"path": str, "image_ids": [str, ...]}``.
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
    folder = Path(os.environ.get(TWIN_DIR_ENV) or Path(tempfile.gettempdir())
                  / "stembench-twins")
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([model, plan, __version__], sort_keys=True)
                         .encode()).hexdigest()[:24]
    path = folder / f"twin-{key}.h5"
    if not path.is_file():
        write_twin_dataset(twin, variants, path)
    return {"path": str(path), "image_ids": [v.image_id for v in variants]}
