"""Published-weight pins: git blob SHA-1 beside SHA-256, every pin checked; messages that say where.

No published file is needed: synthetic files stand for the two entries pinned by git blob only
(their contents are not at hand here), and real ``git hash-object`` is the reference hash.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from stembench.endpoints.models import published
from stembench.endpoints.models.published import fetch_published, file_hashes, get_published
from stembench.errors import MissingExtraError, ModelError

CONTENT = b"synthetic weights \0\xff" * 1000


def _git_blob(path: Path) -> str:
    return subprocess.run(["git", "hash-object", "--no-filters", str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A folder mirror holding the synthetic file, and an empty cache root."""
    monkeypatch.delenv("STEMBENCH_WEIGHTS_MIRROR", raising=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "synthetic.pt").write_bytes(CONTENT)
    return mirror, tmp_path / "cache"


def _register(monkeypatch: pytest.MonkeyPatch, **pins: object) -> str:
    entry = replace(get_published("atomnet-graphene-published"), name="synthetic",
                    file_name="synthetic.pt", **pins)
    monkeypatch.setattr(published, "PUBLISHED", (*published.PUBLISHED, entry))
    return entry.name


def test_file_hashes_give_gits_blob_id(synthetic: tuple[Path, Path]) -> None:
    mirror, _ = synthetic
    assert file_hashes(mirror / "synthetic.pt")[1] == _git_blob(mirror / "synthetic.pt")


def test_a_git_blob_pin_alone_verifies_a_fetch(synthetic: tuple[Path, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, cache = synthetic
    name = _register(monkeypatch, sha256=None, size=None,
                     git_blob=_git_blob(mirror / "synthetic.pt"))
    path = fetch_published(name, mirror=str(mirror), cache_dir=cache)
    assert path.read_bytes() == CONTENT


@pytest.mark.parametrize("wrong", ["sha256", "git_blob"])
def test_every_pin_must_match(synthetic: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                              wrong: str) -> None:
    mirror, cache = synthetic
    sha256, blob = file_hashes(mirror / "synthetic.pt")
    pins = {"sha256": sha256, "git_blob": blob, wrong: "0" * (64 if wrong == "sha256" else 40)}
    name = _register(monkeypatch, size=len(CONTENT), **pins)
    label = "SHA-256" if wrong == "sha256" else "git blob SHA-1"
    with pytest.raises(ModelError, match=f"has {label} [0-9a-f]+, expected 0+; nothing was cached"):
        fetch_published(name, mirror=str(mirror), cache_dir=cache)
    assert not cache.exists()


@pytest.mark.parametrize("name, blob", [
    ("atomnet-graphene-published", "012f4f6417eb78aa6ff900ef95985733505d06bf"),
    ("atomsegnet-gaussianmask-published", "04464d67b166dfe32eba05b81e3e70aa4fda1bf1")])
def test_graphene_and_gaussianmask_are_fetched_against_their_git_blob(
        synthetic: tuple[Path, Path], name: str, blob: str) -> None:
    """Listed as fetchable; any file that is not the upstream blob is refused, naming it."""
    mirror, cache = synthetic
    entry = get_published(name)
    assert not entry.unavailable and entry.git_blob == blob
    shutil.copy(mirror / "synthetic.pt", mirror / entry.file_name)
    with pytest.raises(ModelError, match=f"git blob SHA-1 [0-9a-f]{{40}}, expected {blob}"):
        fetch_published(name, mirror=str(mirror), cache_dir=cache)
    assert not cache.exists()


def test_an_unpinned_entry_is_never_fetched(synthetic: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, cache = synthetic
    name = _register(monkeypatch, sha256=None, git_blob=None)
    with pytest.raises(ModelError, match="synthetic: no content hash of it is pinned"):
        fetch_published(name, mirror=str(mirror), cache_dir=cache)
    assert not cache.exists()


def test_not_fetched_says_on_which_host_where_and_how(tmp_path: Path) -> None:
    """On a Globus Compute endpoint the loading host is the endpoint's: the line says so."""
    name = "atomnet-cubic-published"
    with pytest.raises(ModelError) as caught:
        published.load_published(name, cache_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"host {socket.gethostname()!r}" in message and "endpoint's host" in message
    assert str(published.fetched_path(name, cache_dir=tmp_path)) in message
    for how in (f"`stembench models fetch {name}` run on that host", "STEMBENCH_WEIGHTS_MIRROR",
                "STEMBENCH_CACHE"):
        assert how in message


def test_pt_route_names_the_extras_that_install_torch_and_tensorflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint names pyproject extras that really hold torch and tensorflow."""
    import importlib

    from stembench import _optional
    from stembench.endpoints.models import atomnet

    real = importlib.import_module
    monkeypatch.setattr(_optional.importlib, "import_module",
                        lambda name: _missing(name) if name == "torch" else real(name))
    with pytest.raises(MissingExtraError) as caught:
        atomnet._load_state_dict(None, "cubic", tmp_path / "w.pt")
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    named = caught.value.extra.split(",")
    held = {req.split(">")[0].split("=")[0] for extra in named for req in extras[extra]}
    assert {"torch", "tensorflow"} <= held
    assert f"pip install 'stembench[{caught.value.extra}]'" in str(caught.value)


def _missing(name: str) -> None:
    raise ImportError(f"No module named {name!r}")


def test_blob_pinned_models_are_reported_as_published_weights() -> None:
    """A SHA-256-pinned entry still needs its SHA-256; a blob-only entry is known by its name."""
    from stembench.endpoints.models.published import weights_origin

    assert weights_origin("ab" * 32, model="atomnet-graphene-published") == "published weights"
    assert weights_origin("ab" * 32, model="atomnet-cubic-published") == "other"
    assert weights_origin("ab" * 32) == "other"
