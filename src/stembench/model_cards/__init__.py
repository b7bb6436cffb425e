"""Model cards: what a leaderboard entry's model is, validated by a JSON Schema.

A card (YAML or JSON) names the model, its version, authors, code URL, licence, weights
SHA-256, framework, the hardware it ran on, and its training data, with a required
``overlaps_benchmark`` answer (``yes``, ``no`` or ``unknown``) saying whether that data
overlaps the benchmark's structures or its image generator. The schema
(``model_cards/schema.json``) refuses unknown keys. The built-in models' cards ship in
``model_cards/builtin/<name>.yaml``.

Example card::

    name: my-unet
    version: "2.1"
    authors: [A. Person, B. Person]
    code_url: https://github.com/example/my-unet
    license: MIT
    weights_sha256: 3a90da3a...  (64 hex digits, or null for a model without weights)
    framework: pytorch
    hardware: NVIDIA A100 40GB
    training_data:
      description: 2000 experimental HAADF images of perovskites, labelled by hand
      overlaps_benchmark: "no"
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from stembench.errors import InputError

__all__ = ["builtin_card", "card_schema", "load_card", "parse_card", "validate_card"]

_OVERLAP_FIELD = "overlaps_benchmark"


@cache
def card_schema() -> dict[str, Any]:
    """The model-card JSON Schema (draft 2020-12) as a dict."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _where(path: Any) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _message(error: Any) -> str:
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return (f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: "
                f"{', '.join(allowed)}")
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "pattern":
        return f"{where}: {error.instance!r} does not match the pattern {error.validator_value}"
    return f"{where}: {error.message}"


def validate_card(data: Any, *, source: str = "model card") -> dict[str, Any]:
    """Check a card against the schema and return it.

    Parameters
    ----------
    data : Any
        The parsed card.
    source : str
        Named in error messages (a file name, or ``"model card"``).

    Returns
    -------
    dict
        The card, unchanged.

    Raises
    ------
    InputError
        Listing every problem, each with the key path and what was expected.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(card_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = "; ".join(_message(e) for e in errors[:10])
        raise InputError(f"{source}: invalid model card ({len(errors)} problem(s)): {problems}")
    assert isinstance(data, dict)
    return data


def _yaml_booleans(data: Any) -> Any:
    """YAML 1.1 reads an unquoted yes/no as a boolean: map it back for ``overlaps_benchmark``."""
    training = data.get("training_data") if isinstance(data, dict) else None
    if isinstance(training, dict) and isinstance(training.get(_OVERLAP_FIELD), bool):
        training[_OVERLAP_FIELD] = "yes" if training[_OVERLAP_FIELD] else "no"
    return data


def parse_card(text: str, *, source: str = "model card") -> dict[str, Any]:
    """Parse a YAML (or JSON) card and validate it (see :func:`validate_card`)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{source}: a model card is a mapping of keys to values, got "
                         f"{type(data).__name__}")
    return validate_card(_yaml_booleans(data), source=source)


def load_card(path: str | Path) -> dict[str, Any]:
    """Read and validate a model card file (YAML or JSON).

    Raises
    ------
    InputError
        When the file cannot be read, is not YAML, or is not a valid card.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model card {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"model card {path}: cannot read it as UTF-8 text: {exc}") from exc
    return parse_card(text, source=f"model card {path}")


def builtin_card(model: str) -> dict[str, Any] | None:
    """The shipped card of a built-in model, or None when there is none."""
    if not model.replace("-", "").replace("_", "").isalnum():
        return None
    entry = resources.files(__package__).joinpath("builtin", f"{model}.yaml")
    if not entry.is_file():
        return None
    return parse_card(entry.read_text(encoding="utf-8"), source=f"built-in card {model}")
