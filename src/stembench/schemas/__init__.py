"""The wire formats as JSON Schema files, and the one check that client, endpoint and service use.

``shard-request.json`` is what the client sends an endpoint, ``shard-result.json`` what an
endpoint answers (and what a results file holds, one per line, and the service accepts);
``score-record.json`` is the scores of one image
(:meth:`stembench.scores.ImageScore.to_dict`), which a shard result carries per image.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from stembench.errors import InputError

__all__ = ["check_message", "schema"]

Kind = Literal["shard-request", "shard-result", "score-record"]
_KINDS: tuple[Kind, ...] = ("shard-request", "shard-result", "score-record")


@cache
def schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one wire format, read from the package data.

    Parameters
    ----------
    kind : {"shard-request", "shard-result", "score-record"}
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
    kind : {"shard-request", "shard-result", "score-record"}
        Which schema (one schema may refer to another by its file name).
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

    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(message))
    if error is not None:
        raise InputError(_one_line(error, what))


@cache
def _validator(kind: Kind) -> Any:
    """A validator of one schema that resolves references to the others by their ``$id``."""
    import jsonschema
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (schema(other)["$id"], Resource.from_contents(schema(other))) for other in _KINDS)
    return jsonschema.Draft202012Validator(schema(kind), registry=registry)


def _one_line(error: Any, what: str) -> str:
    """The first schema error as one line naming the field."""
    import jsonschema

    branches = [e for e in error.context or ()
                if not (e.validator == "type" and e.validator_value == "null")]
    if error.validator == "anyOf" and branches:  # "null or a record": what is wrong with it
        return _one_line(jsonschema.exceptions.best_match(branches), what)
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
