"""Results files of the fake model and uploading them through the API (service tests)."""

from __future__ import annotations

import concurrent.futures as cf
import gzip
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import service_fakes as fakes
from service_helpers import bearer

from stembench.dataset_publish.simulate.build import DATASET_VERSION

CARD: dict[str, Any] = {
    "name": "my-unet", "version": "2.1", "authors": ["A. Person"],
    "code_url": "https://example.org/my-unet", "license": "MIT", "weights_sha256": None,
    "framework": "pytorch", "hardware": "NVIDIA A100 40GB",
    "training_data": {"description": "hand-labelled experimental images",
                      "overlaps_benchmark": "no"}}


def results_file(path: Path, cache_dir: Path, **options: Any) -> Path:
    """Evaluate the fake model on the mini dataset into a results file (as a user would)."""
    from stembench.client.orchestrate import Target, evaluate
    from stembench.endpoints.requests import DatasetRef

    dataset = DatasetRef(name="atom-locating-benchmark", preset="mini",
                         version=str(DATASET_VERSION),
                         cache_dir=str(cache_dir))
    ids = [row["image_id"] for row in fakes.fake_describe(asdict(dataset), "0.1.0")["images"]]
    with cf.ThreadPoolExecutor(2) as pool:
        evaluate("log-blob", results_path=path, dataset=dataset, image_ids=ids,
                 targets=[Target("t", pool, max_in_flight=4)], model_options=options,
                 progress=False, shard_function=fakes.fake_shard, identify=None)
    return path


def shards(path: Path) -> list[dict[str, Any]]:
    """The shard results in a results file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def packed(items: list[dict[str, Any]]) -> bytes:
    """Shards as a gzip-compressed results file."""
    text = "".join(json.dumps(s) + "\n" for s in items)
    return gzip.compress(text.encode(), mtime=0)


def upload(client: Any, data: bytes, *, card: dict[str, Any] | None = None, who: str = "alice",
           part_bytes: int = 50_000, preset: str = "mini") -> Any:
    """Send ``data`` in parts and complete the upload; the completion's answer."""
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    for index, chunk in enumerate(chunks):
        answer = client.put(f"/api/uploads/{digest}/parts/{index}", content=chunk,
                            headers={**bearer(who), "Content-Type": "application/octet-stream"})
        assert answer.status_code == 200, answer.text
    return client.post(f"/api/uploads/{digest}/complete", headers=bearer(who),
                       json={"parts": len(chunks), "model_card": card or CARD,
                             "dataset_preset": preset})
