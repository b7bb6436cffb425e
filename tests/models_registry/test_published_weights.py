"""Published weights: fetch from a local mirror over real HTTP, verify, cache, load, include.

The mirror serves the real published file kept beside the project for tests
(``../shared/published-weights/``, or ``$STEMBENCH_TEST_PUBLISHED_WEIGHTS``); it is never
copied into the repository. Without it these tests are skipped.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stembench.cli import app
from stembench.endpoints.models.published import fetched_path, get_published

NAME = "atomnet-cubic-published"
FILE = "cubic-best_weights.pt"
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "published-weights"
SOURCE = Path(os.environ.get("STEMBENCH_TEST_PUBLISHED_WEIGHTS", _SHARED)) / FILE

pytestmark = pytest.mark.skipif(not SOURCE.is_file(), reason=f"no published file at {SOURCE}")


class _Handler(http.server.SimpleHTTPRequestHandler):
    cut_after: int | None = None  # send only this many bytes of a file, announcing them all

    def log_message(self, *args: object) -> None:
        pass

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        if self.cut_after is None:
            super().copyfile(source, outputfile)
        else:
            outputfile.write(source.read(self.cut_after))
            self.close_connection = True


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """Start a local HTTP mirror of a folder; yields ``start(folder, cut_after=None) -> url``."""
    servers = []

    def start(folder: Path, cut_after: int | None = None) -> str:
        handler = type("Handler", (_Handler,), {"cut_after": cut_after})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("STEMBENCH_CACHE", str(root))
    monkeypatch.delenv("STEMBENCH_WEIGHTS_MIRROR", raising=False)
    return root


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _fetch(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["models", "fetch", NAME, *args])
    return result.exit_code, result.output


def _mirror_with(tmp_path: Path, content: bytes) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / FILE).write_bytes(content)
    return folder


def test_fetch_over_http_verifies_caches_and_loads(cache: Path, serve, tmp_path: Path) -> None:
    """The real file over real HTTP: cached under its name with the pinned hash, then a model
    named as published (never as the network trained here) that finds SrTiO3's columns."""
    from stembench.dataset_publish.simulate.series import reference_image
    from stembench.endpoints.models.registry import load_model
    from stembench.scoring import score_image

    code, output = _fetch("--mirror", serve(SOURCE.parent))
    assert code == 0, output
    cached = fetched_path(NAME)
    assert _files(cache) == [cached]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == get_published(NAME).sha256
    assert "verified SHA-256" in output
    model = load_model(NAME)
    assert model.info.name == NAME
    assert model.info.weights_sha256 == get_published(NAME).sha256
    image = reference_image("SrTiO3[100]")
    score = score_image(model.locate(image.image, image.pixel_size), image.coords,
                        pixel_size=image.pixel_size, image_shape=image.image.shape,
                        image_id=image.image_id, faint=image.faint_coords)
    assert score.recall >= 0.9 and score.precision >= 0.9


def test_wrong_hash_gives_one_line_and_leaves_nothing(cache: Path, serve,
                                                      tmp_path: Path) -> None:
    content = bytearray(SOURCE.read_bytes())
    content[-1] ^= 0xFF  # same size, one byte changed
    code, output = _fetch("--mirror", serve(_mirror_with(tmp_path, bytes(content))))
    assert code == 2
    assert output.strip().count("\n") == 0
    assert "SHA-256" in output and get_published(NAME).sha256 in output
    assert _files(cache) == [] and not (cache / "published-weights").exists()


def test_cut_short_file_gives_one_line_and_leaves_nothing(cache: Path, serve,
                                                          tmp_path: Path) -> None:
    """A mirror holding half the file (complete HTTP answer, wrong size)."""
    half = SOURCE.read_bytes()[: SOURCE.stat().st_size // 2]
    code, output = _fetch("--mirror", serve(_mirror_with(tmp_path, half)))
    assert code == 2 and output.strip().count("\n") == 0
    assert f"gave {len(half):,} bytes, expected {SOURCE.stat().st_size:,}" in output
    assert _files(cache) == []


def test_connection_cut_mid_download_leaves_nothing(cache: Path, serve) -> None:
    """The server announces the whole file and closes after a quarter of it."""
    code, output = _fetch("--mirror", serve(SOURCE.parent, cut_after=1_000_000))
    assert code == 2 and output.strip().count("\n") == 0
    assert "cut short" in output
    assert _files(cache) == []


def test_unreachable_address_gives_one_line_and_leaves_nothing(cache: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, output = _fetch("--mirror", f"http://127.0.0.1:{port}", "--timeout", "5")
    assert code == 2 and output.strip().count("\n") == 0
    assert f"cannot reach http://127.0.0.1:{port}/{FILE}" in output
    assert _files(cache) == []


def test_tampered_cache_file_is_refused_on_load(cache: Path) -> None:
    from stembench.endpoints.models.registry import load_model
    from stembench.errors import ModelError

    with pytest.raises(ModelError, match=r"not in the weights cache.*stembench models fetch"):
        load_model(NAME)
    assert _fetch("--mirror", str(SOURCE.parent))[0] == 0  # a folder mirror
    with fetched_path(NAME).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"has SHA-256 .* and git blob SHA-1 .*delete it and run"):
        load_model(NAME)


def test_run_includes_fetched_published_models_and_names_the_rest(cache: Path) -> None:
    from stembench.client.run import BUILTIN_MODELS, default_models

    models, left_out = default_models()
    assert models == list(BUILTIN_MODELS)
    assert any(f"stembench models fetch {NAME}" in line for line in left_out)
    assert ("atomsegnet-gaussianmask-published: not fetched; include it with `stembench models "
            "fetch atomsegnet-gaussianmask-published`") in left_out
    assert _fetch("--mirror", str(SOURCE.parent))[0] == 0
    models, left_out = default_models()
    assert models == [*BUILTIN_MODELS, NAME]
    assert not any(line.startswith(NAME) for line in left_out)


def test_assess_includes_fetched_published_models_as_run_does(cache: Path) -> None:
    """Twin mode scores the models `stembench run` would: a fetched published model too."""
    from stembench.client.assess.twin.command import model_choices
    from stembench.client.run import BUILTIN_MODELS

    choices, left_out = model_choices([], [])
    assert [c.spec for c in choices] == list(BUILTIN_MODELS)
    assert any(f"stembench models fetch {NAME}" in line for line in left_out)
    assert _fetch("--mirror", str(SOURCE.parent))[0] == 0
    choices, left_out = model_choices([NAME], [])  # named again: scored once
    assert [c.spec for c in choices] == [*BUILTIN_MODELS, NAME]
    assert not any(line.startswith(NAME) for line in left_out)
    assert ("atomsegnet-gaussianmask-published: not fetched; include it with `stembench models "
            "fetch atomsegnet-gaussianmask-published`") in left_out


def test_fetched_model_is_evaluated_by_workers_and_reported_as_published(
        cache: Path, mini_dataset_path: Path, tmp_path: Path) -> None:
    """`stembench evaluate --model atomnet-cubic-published` in a worker process, end to end."""
    import json

    assert _fetch("--mirror", str(SOURCE.parent))[0] == 0
    results = tmp_path / "out" / "results.jsonl"
    result = CliRunner().invoke(app, ["evaluate", "--model", NAME, "--dataset",
                                      str(mini_dataset_path), "--workers", "1",
                                      "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert f"{NAME}: 102 image(s) evaluated, 0 failed" in result.output
    report = json.loads((results.parent / "report.json").read_text())
    assert report["models"][NAME]["weights"] == "published weights"
    assert report["models"][NAME]["weights_sha256"] == get_published(NAME).sha256
