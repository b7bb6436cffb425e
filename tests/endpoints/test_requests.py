"""Validation of the JSON messages that travel to endpoints."""

from __future__ import annotations

import pytest

from stembench.endpoints.requests import (
    DatasetRef,
    ModelSpec,
    ScoringOptions,
    ShardRequest,
    check_compatible,
)
from stembench.errors import InputError


def _request(**changes: object) -> ShardRequest:
    base = {"dataset": DatasetRef(), "model": ModelSpec("log-blob"), "image_ids": ("a", "b")}
    base.update(changes)
    return ShardRequest(**base)  # type: ignore[arg-type]


def test_round_trip_and_stable_shard_id() -> None:
    request = _request()
    again = ShardRequest.from_dict(request.to_dict())
    assert again == request
    assert again.shard_id == request.shard_id
    assert _request(image_ids=("a", "c")).shard_id != request.shard_id
    assert _request(model=ModelSpec("atomsegnet")).shard_id != request.shard_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": {}, "model": {"spec": "x"}}, "missing field 'image_ids'"),
        ({"dataset": {"sauce": "x"}, "model": {"spec": "x"}, "image_ids": ["a"]},
         "unknown field"),
        ({"dataset": {"source": "path"}, "model": {"spec": "x"}, "image_ids": ["a"]},
         "needs a 'path'"),
        ({"dataset": {}, "model": {"spec": ""}, "image_ids": ["a"]}, "must not be empty"),
        ({"dataset": {}, "model": {"spec": "x"}, "image_ids": []}, "image_ids"),
        ({"dataset": {}, "model": {"spec": "x"}, "image_ids": ["a"],
          "scoring": {"radius_angstrom": -1}}, "radius"),
        ("not a dict", "must be a dict"),
    ],
)
def test_bad_requests_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ShardRequest.from_dict(data)  # type: ignore[arg-type]


def test_model_options_must_be_json() -> None:
    with pytest.raises(InputError, match="JSON"):
        ModelSpec("x", {"weights": object()})
    assert ScoringOptions(mode="legacy").mode == "legacy"


def test_version_compatibility() -> None:
    check_compatible("0.1.0", "0.1.7")
    check_compatible("1.2.0", "1.5.1")
    with pytest.raises(InputError, match="matching version"):
        check_compatible("0.1.0", "0.2.0")
    with pytest.raises(InputError, match="matching version"):
        check_compatible("1.0.0", "2.0.0")
    with pytest.raises(InputError, match="unreadable"):
        check_compatible("banana", "0.1.0")


def test_not_after_is_sent_but_not_part_of_the_shard() -> None:
    """A copy's ``not_after_unix`` changes with every submission, never the shard id; a
    request without it (an older client) is still read."""
    request = _request(not_after_unix=1_900_000_000.5)
    assert request.shard_id == _request().shard_id
    assert ShardRequest.from_dict(request.to_dict()) == request
    old = _request().to_dict()  # without a time, the field is left out (read22b finding 1):
    assert "not_after_unix" not in old  # an endpoint older than the field reads it
    assert ShardRequest.from_dict(old).not_after_unix is None
    assert ShardRequest.from_dict({**old, "not_after_unix": None}).not_after_unix is None
    for bad in ("soon", True, float("inf")):
        with pytest.raises(InputError, match="not_after_unix"):
            ShardRequest.from_dict({**old, "not_after_unix": bad})
