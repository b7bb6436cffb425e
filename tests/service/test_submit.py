"""``stembench submit`` against a live local service: compressed upload in parts, the
service's own scores back, a retry answering the same entry, clear refusals."""

from __future__ import annotations

import pytest
import yaml
from service_helpers import LiveServer, make_settings
from service_uploads import CARD, results_file
from typer.testing import CliRunner

from stembench.cli import app as cli
from stembench.service.app import create_app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_submit_uploads_and_is_idempotent(tmp_path, database_url, dataset_cache, globus_auth,
                                          monkeypatch) -> None:
    results = results_file(tmp_path / "r.jsonl", dataset_cache, quality=0.9)
    card = tmp_path / "card.yaml"
    card.write_text(yaml.safe_dump(CARD))
    app = create_app(make_settings(tmp_path, database_url, run_worker=True,
                                   upload_part_bytes=20_000))
    runner = CliRunner()
    with LiveServer(app) as server:
        arguments = ["submit", str(results), "--model-card", str(card), "--service", server.url,
                     "--preset", "mini"]
        monkeypatch.delenv("STEMBENCH_TOKEN", raising=False)
        missing = runner.invoke(cli, arguments)
        assert missing.exit_code != 0 and "STEMBENCH_TOKEN" in str(missing.exception)
        monkeypatch.setenv("STEMBENCH_TOKEN", "alice-token")
        first = runner.invoke(cli, [*arguments, "--model", "log-blob"])
        assert first.exit_code == 0, first.output
        assert "re-scored by the service: 102 images" in first.output
        url = first.output.strip().splitlines()[-1]
        assert url.startswith(f"{server.url}/entries/")
        parts = int(first.output.split("(")[1].split(" part")[0])
        assert parts > 1  # sent in parts of at most 20,000 bytes
        again = runner.invoke(cli, arguments)
        assert again.exit_code == 0 and "already submitted: same entry" in again.output
        assert again.output.strip().splitlines()[-1] == url
        wrong = runner.invoke(cli, [*arguments, "--preset", "standard"])
        assert wrong.exit_code == 2
        assert "holds no copy of dataset 'atom-locating-benchmark' preset 'standard'" in \
            wrong.output
    app.state.engine.dispose()
