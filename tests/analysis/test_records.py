"""Validation and JSON-lines input/output of score records."""

from __future__ import annotations

import math

import pytest

from stembench.client.analysis import read_records, validate_records, write_records
from stembench.errors import InputError


def test_missing_field_names_record_index_and_field(records_builder):
    records = records_builder([100.0, 110.0])
    del records[1]["recall"]
    with pytest.raises(InputError, match=r"score record 1 .*lacks field 'recall'"):
        validate_records(records)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tp", 2.5, "field 'tp' must be an integer"),
        ("recall", "high", "field 'recall' must be a number"),
        ("model", 3, "field 'model' must be a string"),
    ],
)
def test_wrong_types_are_rejected(records_builder, field, value, message):
    records = records_builder([100.0])
    records[0][field] = value
    with pytest.raises(InputError, match=f"score record 0: {message}"):
        validate_records(records)


def test_one_model_name_with_two_weights_is_rejected(records_builder):
    records = records_builder([100.0, 110.0])
    records[1]["weights_sha256"] = "f" * 64
    with pytest.raises(InputError, match="score record 1: model 'net'"):
        validate_records(records)


def test_empty_records_are_rejected():
    with pytest.raises(InputError, match="no score records"):
        validate_records([])


def test_none_becomes_nan_and_ints_are_normalised(records_builder):
    records = records_builder([100.0])
    records[0]["rms_angstrom"] = None
    records[0]["tp"] = 10.0
    (checked,) = validate_records(records)
    assert math.isnan(checked["rms_angstrom"])
    assert checked["tp"] == 10 and isinstance(checked["tp"], int)


def test_json_lines_round_trip_keeps_nan_and_extra_fields(records_builder, tmp_path):
    records = records_builder([100.0, 110.0], seeds=(0, 1))
    records[2]["rms_angstrom"] = math.nan
    records[0]["mode"] = "one-to-one"
    path = write_records(records, tmp_path / "scores.jsonl")
    assert "NaN" not in path.read_text()
    back = read_records(path)
    assert len(back) == 4
    assert math.isnan(back[2]["rms_angstrom"])
    assert back[0]["mode"] == "one-to-one"
    assert [r["recall"] for r in back] == [r["recall"] for r in records]


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text('{"model": "x"}\nnot json\n')
    with pytest.raises(InputError, match="line 2 is not JSON"):
        read_records(path)
