"""``stembench evaluate --weights FILE``: a weights file reaches the built-in network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stembench.cli import app
from stembench.client.orchestrate import Evaluation
from stembench.client.results_file import ResultsFile
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.models.base import sha256_file

torch = pytest.importorskip("torch")


@pytest.fixture
def state_dict_file(tmp_path: Path) -> Path:
    from stembench.endpoints.models.atomsegnet import build_network

    torch.manual_seed(3)
    path = tmp_path / "gaussianMask+.pth"
    torch.save(build_network().state_dict(), path)
    return path


def test_cli_passes_the_weights_file_as_a_model_option(
        tmp_path: Path, state_dict_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_evaluate(model: str, **kwargs: Any) -> Evaluation:
        seen.update(model=model, options=kwargs.get("model_options"))
        return Evaluation(model, kwargs["results_path"], n_shards=0)

    monkeypatch.setattr("stembench.client.orchestrate.evaluate", fake_evaluate)
    answer = CliRunner().invoke(app, [
        "evaluate", "--model", "atomsegnet", "--weights", str(state_dict_file),
        "--dataset", str(tmp_path / "x.h5"), "--results", str(tmp_path / "r.jsonl"),
        "--no-report"])
    assert answer.exit_code == 0, answer.output
    assert seen == {"model": "atomsegnet", "options": {"weights": str(state_dict_file)}}


@pytest.mark.slow
def test_weights_file_is_the_one_scored(state_dict_file: Path, tmp_path: Path,
                                        mini_dataset_path: Path) -> None:
    from stembench.client.orchestrate import evaluate
    from stembench.endpoints.requests import DatasetRef

    with open_dataset(mini_dataset_path) as opened:
        ids = opened.ids[:2]
    results = tmp_path / "r.jsonl"
    outcome = evaluate("atomsegnet", results_path=results,
                       dataset=DatasetRef(source="path", path=str(mini_dataset_path)),
                       image_ids=ids, shard_size=2, progress=False,
                       model_options={"weights": str(state_dict_file)})
    assert outcome.complete
    records = ResultsFile(results).records()
    assert {r["weights_sha256"] for r in records} == {sha256_file(state_dict_file)}
