"""The wire formats as JSON Schema files, and the one check that client, endpoint and service use.

``shard-request.json`` is what the client sends an endpoint, ``shard-result.json`` what an
endpoint answers (and what a results file holds, one per line, and the service accepts).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from stembench.errors import InputError

__all__ = ["check_message", "schema"]

Kind = Literal["shard-request", "shard-result"]


@cache
def schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one wire format, read from the package data.

    Parameters
    ----------
    kind : {"shard-request", "shard-result"}
        Which message.

    Returns
    -------
    dict
        The schema (JSON Schema draft 2020-12).
    """
    text = resources.files(__package__).joinpath(f"{kind}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def check_message(kind: Kind, message: Any, *, what: str) -> None:
    """Refuse a message its schema does not allow, in one line naming the field.

    Parameters
    ----------
    kind : {"shard-request", "shard-result"}
        Which schema.
    message : Any
        The decoded JSON message.
    what : str
        How the message is named in the error, e.g. ``"shard request"``.

    Raises
    ------
    InputError
        ``"<what>: field <path>: <reason>"`` for the first error found.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(kind))
    error = jsonschema.exceptions.best_match(validator.iter_errors(message))
    if error is not None:
        raise InputError(_one_line(error, what))


def _one_line(error: Any, what: str) -> str:
    """The first schema error as one line naming the field."""
    path = [str(p) for p in error.absolute_path]
    where = "/".join(path)
    instance = error.instance
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in instance]
        return f"{what}: missing field {'/'.join([*path, missing[0]])!r}"
    if error.validator == "additionalProperties":
        unknown = sorted(set(instance) - set(error.schema.get("properties", {})))
        expected = sorted(error.schema.get("properties", {}))
        return (f"{what}: unknown field(s) {unknown} in {where or 'the message'}; expected "
                f"some of {expected}")
    if error.validator in ("minLength", "minItems"):
        return f"{what}: field {where!r} must not be empty"
    if error.validator == "type" and not path:
        return f"{what} must be a dict (a JSON object), got {type(instance).__name__}"
    return f"{what}: field {where!r}: {error.message}"
