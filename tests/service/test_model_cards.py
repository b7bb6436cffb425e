"""Model cards: the schema refuses unknown keys with clear messages; every built-in model
has a valid card."""

from __future__ import annotations

import pytest

from stembench.endpoints.models.registry import available_models
from stembench.errors import InputError
from stembench.model_cards import builtin_card, load_card, parse_card

GOOD = """\
name: my-unet
version: "2.1"
authors: [A. Person]
code_url: https://example.org/my-unet
license: MIT
weights_sha256: null
framework: pytorch
hardware: NVIDIA A100 40GB
training_data:
  description: hand-labelled experimental images
  overlaps_benchmark: no
"""


def test_every_built_in_model_has_a_valid_card() -> None:
    for entry in available_models():
        if entry.source != "built-in":
            continue
        card = builtin_card(entry.name)
        assert card is not None, entry.name
        assert card["name"] == entry.name and card["framework"] == entry.framework
    assert builtin_card("log-blob")["training_data"]["overlaps_benchmark"] == "no"
    assert builtin_card("atomsegnet")["training_data"]["overlaps_benchmark"] == "no"
    assert builtin_card("no-such-model") is None


def test_network_cards_name_the_shipped_weights() -> None:
    """A card's weights hash is that of the weights file the package ships (no stale card)."""
    from importlib import resources

    weights = resources.files("stembench.endpoints") / "weights"
    for name, file in (("atomsegnet", "atomsegnet.pt"), ("atomnet-cubic", "atomnet-cubic.keras"),
                       ("atomnet-hexagonal", "atomnet-hexagonal.keras")):
        expected = (weights / f"{file}.sha256").read_text().split()[0]
        assert builtin_card(name)["weights_sha256"] == expected, name


def test_unquoted_yaml_no_means_no(tmp_path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(GOOD)
    assert load_card(path)["training_data"]["overlaps_benchmark"] == "no"


@pytest.mark.parametrize(("change", "message"), [
    ("colour: blue\n", "(top level): unknown key(s) 'colour'; allowed keys: authors"),
    ("", "training_data.overlaps_benchmark: 'maybe' is not one of ['yes', 'no', 'unknown']"),
    ("weights_sha256_typo: 1\n", "unknown key(s) 'weights_sha256_typo'"),
])
def test_bad_cards_name_the_problem(change: str, message: str) -> None:
    text = GOOD + change
    if not change:
        text = text.replace("overlaps_benchmark: no", "overlaps_benchmark: maybe")
    with pytest.raises(InputError, match="invalid model card") as caught:
        parse_card(text, source="card.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("card.yaml:")


def test_missing_fields_and_files_are_named(tmp_path) -> None:
    with pytest.raises(InputError, match="'training_data' is a required property"):
        parse_card(GOOD.split("training_data")[0])
    with pytest.raises(InputError, match="no such file"):
        load_card(tmp_path / "absent.yaml")
    with pytest.raises(InputError, match="not valid YAML"):
        parse_card("name: [unclosed")
