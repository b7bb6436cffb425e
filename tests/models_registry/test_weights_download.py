"""Fetching published weights past the first contact: compressed answers, odd names, limits.

HTTP is answered by ``responses`` (no network); the pins are real (a synthetic file's own
SHA-256 and git blob, checked by :func:`fetch_published`).
"""

from __future__ import annotations

import gzip
import itertools
import re
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import responses

from stembench.endpoints.models import published, weights_download
from stembench.endpoints.models.published import fetch_published, file_hashes, get_published
from stembench.errors import ModelError

CONTENT = bytes(range(256)) * 600  # 153,600 bytes: three chunks of the download loop
MIRROR = "https://mirror.example.org/weights"


def _register(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, file_name: str) -> str:
    """A published entry pinned to ``CONTENT`` by size, SHA-256 and git blob."""
    monkeypatch.delenv("STEMBENCH_WEIGHTS_MIRROR", raising=False)
    scratch = tmp_path / "pins.bin"
    scratch.write_bytes(CONTENT)
    sha256, blob = file_hashes(scratch)
    entry = replace(get_published("atomnet-graphene-published"), name="synthetic",
                    file_name=file_name, sha256=sha256, size=len(CONTENT), git_blob=blob)
    monkeypatch.setattr(published, "PUBLISHED", (*published.PUBLISHED, entry))
    return entry.name


@responses.activate
def test_a_gzip_encoded_answer_of_the_right_file_is_accepted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Content-Length counts the compressed body; the decoded file is whole and verified."""
    name = _register(monkeypatch, tmp_path, "synthetic.pt")
    body = gzip.compress(CONTENT)
    responses.get(f"{MIRROR}/synthetic.pt", body=body,
                  headers={"Content-Encoding": "gzip", "Content-Length": str(len(body))})
    path = fetch_published(name, mirror=MIRROR, cache_dir=tmp_path / "cache")
    assert path.read_bytes() == CONTENT
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"


def test_a_file_url_mirror_serves_a_name_with_a_plus(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """gaussianMask+.pth is quoted to gaussianMask%2B.pth in the URL and read back unquoted."""
    name = _register(monkeypatch, tmp_path, "gaussianMask+.pth")
    mirror = tmp_path / "mirror folder"
    mirror.mkdir()
    (mirror / "gaussianMask+.pth").write_bytes(CONTENT)
    path = fetch_published(name, mirror=mirror.as_uri(), cache_dir=tmp_path / "cache")
    assert path.read_bytes() == CONTENT


def test_every_address_is_pinned_by_commit() -> None:
    """A moved branch must not turn every fetch into a hash mismatch."""
    for entry in published.PUBLISHED:
        assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/",
                        entry.url), entry.url
        assert "master" not in entry.url


@responses.activate
def test_http_429_says_when_to_retry_and_about_mirrors(tmp_path: Path) -> None:
    responses.get(f"{MIRROR}/f.pt", status=429, headers={"Retry-After": "30"})
    with (tmp_path / "out").open("wb") as out, pytest.raises(ModelError) as caught:
        weights_download.copy_source(f"{MIRROR}/f.pt", out, timeout_s=5)
    line = str(caught.value)
    assert "HTTP 429" in line and "try again after 30 s" in line and "--mirror" in line
    assert "\n" not in line


@pytest.mark.parametrize("error, variable", [
    (requests.exceptions.SSLError("certificate verify failed"), "REQUESTS_CA_BUNDLE"),
    (requests.exceptions.ProxyError("407 Proxy Authentication Required"), "HTTPS_PROXY")])
@responses.activate
def test_ssl_and_proxy_failures_name_the_variable_to_set(tmp_path: Path, error: Exception,
                                                         variable: str) -> None:
    responses.get(f"{MIRROR}/f.pt", body=error)
    with (tmp_path / "out").open("wb") as out, pytest.raises(ModelError, match=variable):
        weights_download.copy_source(f"{MIRROR}/f.pt", out, timeout_s=5)


@responses.activate
def test_the_whole_download_has_a_time_limit(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that keeps sending slowly is stopped (a clock that advances 100 s a read)."""
    ticks = itertools.count(0.0, 100.0)
    monkeypatch.setattr(weights_download.time, "monotonic", lambda: next(ticks))
    responses.get(f"{MIRROR}/f.pt", body=CONTENT)
    with (tmp_path / "out").open("wb") as out, \
            pytest.raises(ModelError, match=r"took longer than 150 s \(131,072 bytes so far\)"):
        weights_download.copy_source(f"{MIRROR}/f.pt", out, timeout_s=5, total_timeout_s=150)
