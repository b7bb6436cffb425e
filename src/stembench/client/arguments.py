"""Client command-line values turned into checked objects; messages name the option."""

from __future__ import annotations

from pathlib import PurePath

from stembench.endpoints.requests import DatasetRef
from stembench.errors import InputError

__all__ = ["DATASET_SUFFIXES", "dataset_reference"]

#: Suffixes of a stembench dataset file.
DATASET_SUFFIXES = (".h5", ".hdf5")


def dataset_reference(value: str) -> DatasetRef:
    """The dataset that ``--dataset VALUE`` names: an ``.h5`` file path or a preset name.

    The file is not opened here: it lives where the shards run (an endpoint, perhaps).

    Raises
    ------
    InputError
        If ``value`` looks like a path (a folder separator or a file suffix) but does not
        end in ``.h5`` or ``.hdf5``.
    """
    path = PurePath(value)
    if path.suffix.lower() in DATASET_SUFFIXES:
        return DatasetRef(source="path", path=value)
    if "/" in value or "\\" in value or path.suffix or not value:
        raise InputError(
            f"--dataset {value!r}: expected a dataset file ending in "
            f"{' or '.join(DATASET_SUFFIXES)}, or a preset name such as 'standard' or 'mini'"
            f"{f', got a {path.suffix!r} file' if path.suffix else ''}")
    return DatasetRef(preset=value)
