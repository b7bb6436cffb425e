"""The JSON Schema a Foundry dataset's metadata (``dc`` and ``foundry`` blocks) must satisfy,
and the check against it (foundry-ml's own models where installed).
"""

from __future__ import annotations

from typing import Any

from stembench._optional import require
from stembench.errors import InputError

__all__ = ["FOUNDRY_JSON_SCHEMA", "validate_foundry_metadata"]


_KEY_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["key", "type", "description", "units"],
    "properties": {"key": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                   "type": {"enum": ["input", "target"]}, "description": {"type": "string"},
                   "units": {"type": "string"}},
}
FOUNDRY_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["dc", "foundry"],
    "properties": {
        "dc": {"type": "object",
               "required": ["creators", "titles", "publisher", "publicationYear",
                            "resourceType", "rightsList", "descriptions", "relatedIdentifiers"],
               "properties": {
                   "creators": {"type": "array", "minItems": 1, "items": {
                       "type": "object", "required": ["creatorName"]}},
                   "titles": {"type": "array", "minItems": 1, "items": {
                       "type": "object", "required": ["title"],
                       "properties": {"title": {"type": "string", "minLength": 1}}}},
                   "publisher": {"type": "string", "minLength": 1},
                   "publicationYear": {"type": "integer", "minimum": 0, "maximum": 9999},
                   "resourceType": {"type": "object", "required": ["resourceTypeGeneral"],
                                    "properties": {"resourceTypeGeneral": {"const": "Dataset"}}},
                   "rightsList": {"type": "array", "minItems": 1},
                   "descriptions": {"type": "array", "items": {
                       "type": "object", "required": ["description", "descriptionType"]}},
                   "relatedIdentifiers": {"type": "array", "items": {
                       "type": "object",
                       "required": ["relatedIdentifier", "relatedIdentifierType",
                                    "relationType"],
                       "properties": {"relatedIdentifier": {"pattern": "^10\\..+/.+"}}}},
               }},
        "foundry": {"type": "object", "additionalProperties": False,
                    "required": ["data_type", "splits", "keys"],
                    "properties": {
                        "short_name": {"type": "string"},
                        "data_type": {"const": "hdf5"},
                        "task_type": {"type": "array", "items": {"type": "string"}},
                        "domain": {"type": "array", "items": {"type": "string"}},
                        "n_items": {"type": "number", "minimum": 1},
                        "splits": {"type": "array", "minItems": 1, "items": {
                            "type": "object", "additionalProperties": False,
                            "required": ["type", "path", "label"],
                            "properties": {k: {"type": "string"}
                                           for k in ("type", "path", "label")}}},
                        "keys": {"type": "array", "minItems": 1, "items": _KEY_SCHEMA},
                    }},
    },
}
"""JSON schema the metadata must satisfy when foundry-ml's models are not installed."""


def validate_foundry_metadata(dc: dict[str, Any], foundry: dict[str, Any]) -> str:
    """Validate the two blocks; return which validator was used.

    Returns
    -------
    str
        ``"foundry-ml"`` when foundry-ml's pydantic models (``FoundryDatacite``,
        ``FoundrySchema``'s strict model) validated them, else ``"json-schema"``.

    Raises
    ------
    InputError
        Naming the block and the problem.
    """
    try:
        from foundry.jsonschema_models.dc_model import Dc1
        from foundry.jsonschema_models.project_model import Foundry as FoundryModel
    except ImportError:
        jsonschema = require("jsonschema", extra="test",
                             purpose="Validating Foundry metadata without foundry-ml")
        errors = sorted(jsonschema.Draft202012Validator(FOUNDRY_JSON_SCHEMA).iter_errors(
            {"dc": dc, "foundry": foundry}), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise InputError(f"Foundry metadata is invalid at {where!r}: {errors[0].message}"
                             ) from None
        return "json-schema"
    from pydantic import ValidationError

    for label, model, block in (("dc", Dc1, dc), ("foundry", FoundryModel, foundry)):
        try:
            model.model_validate(block)
        except ValidationError as exc:
            raise InputError(f"Foundry metadata block {label!r} is rejected by foundry-ml: "
                             f"{exc}") from exc
    return "foundry-ml"
