"""The wire formats' JSON Schemas refuse a malformed message at the endpoint, client and service."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
import stembench_faults as faults

from stembench.client.orchestrate import RetryPolicy, evaluate
from stembench.client.results_file import ResultsFile
from stembench.endpoints.requests import DatasetRef, ShardRequest
from stembench.errors import InputError
from stembench.schemas import schema
from stembench.scoring import ImageScore, score_image
from stembench.service.entries import read_upload


def test_schemas_are_package_data_and_valid() -> None:
    import jsonschema

    for kind in ("shard-request", "shard-result", "score-record"):
        jsonschema.Draft202012Validator.check_schema(schema(kind))


def test_endpoint_refuses_a_request_with_a_wrongly_typed_field() -> None:
    request = {"dataset": {}, "model": {"spec": "x"}, "image_ids": ["a"],
               "return_coordinates": "yes"}
    with pytest.raises(InputError, match=r"^shard request: field 'return_coordinates': "
                                         r"'yes' is not of type 'boolean'$"):
        ShardRequest.from_dict(request)


def test_client_counts_a_malformed_result_as_a_failed_shard(tmp_path: Path) -> None:
    outcome = evaluate("echo", results_path=tmp_path / "results.jsonl",
                       dataset=DatasetRef(cache_dir=str(tmp_path)), image_ids=["a", "b"],
                       shard_size=2, retry=RetryPolicy(max_attempts=1, backoff_s=0.01),
                       progress=False, shard_function=faults.malformed_shard, identify=None)
    assert outcome.n_finished == 0 and not outcome.complete
    (reason,) = outcome.failed_shards.values()
    assert re.fullmatch(r"local: shard result: missing field 'images/\d+/image_id'", reason)


def test_service_refuses_an_upload_line_with_a_malformed_image() -> None:
    line = {"ok": True, "images": [{"image_id": 7, "coordinates": []}]}
    data = gzip.compress(json.dumps(line).encode())
    with pytest.raises(InputError, match=r"^results line 1 is not a shard result: field "
                                         r"'images/0/image_id': 7 is not of type 'string'$"):
        read_upload(data, max_bytes=10_000)


def _record() -> dict[str, object]:
    columns = [[10.0, 10.0], [20.0, 20.0]]
    return score_image(columns[:1], columns, pixel_size=0.1, image_shape=(40, 40),
                       image_id="a", column_types=["Sr", "O"]).to_dict()


def test_a_score_record_with_a_wrongly_typed_field_is_refused_in_one_line() -> None:
    assert ImageScore.from_dict(_record()).to_dict() == _record()
    with pytest.raises(InputError, match=r"^score record: field 'tp': '1' is not of type "
                                         r"'integer'$"):
        ImageScore.from_dict({**_record(), "tp": "1"})
    nested = _record()
    del nested["by_type"]["O"]["fn"]  # type: ignore[attr-defined]
    with pytest.raises(InputError, match=r"^score record: missing field 'by_type/O/fn'$"):
        ImageScore.from_dict(nested)


def test_a_results_file_with_a_malformed_score_record_is_refused(tmp_path: Path) -> None:
    line = {"shard_id": "s", "ok": True, "images": [
        {"image_id": "a", "error": None, "score": {**_record(), "f1": "high"}}]}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: line 1 is not a shard "
                                         r"result: field 'images/0/score/f1': 'high' is not "
                                         r"of type 'number'$"):
        ResultsFile(path).records()


def test_service_refuses_an_upload_with_a_malformed_score_record() -> None:
    record = _record()
    del record["mode"]
    line = {"ok": True, "images": [{"image_id": "a", "coordinates": [], "score": record}]}
    with pytest.raises(InputError, match=r"^results line 1 is not a shard result: missing "
                                         r"field 'images/0/score/mode'$"):
        read_upload(gzip.compress(json.dumps(line).encode()), max_bytes=10_000)
