"""The service's cases of the adversarial sweep (issue 27): each bad input answers with one
line naming the problem, never a traceback. Rows run the real ``stembench serve`` entry point
or the service function that reads an upload; the HTTP cases (scores, cancel, token floods,
uploads) have their own tests in ``tests/service``."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from stembench.errors import InputError

Setup = Callable[[Path], list[str]]


def _serve(tmp: Path, url: str) -> list[str]:
    return ["serve", "--database-url", url, "--data-dir", str(tmp / "data"), "--no-worker"]


def unknown_dialect(tmp: Path) -> list[str]:
    return _serve(tmp, "nonsense://somewhere/db")


def not_a_url(tmp: Path) -> list[str]:
    return _serve(tmp, "not a url")


def unreachable_postgres(tmp: Path) -> list[str]:
    return _serve(tmp, "postgresql+psycopg://someone:hunter2@127.0.0.1:9/db")


def data_dir_is_a_file(tmp: Path) -> list[str]:
    (tmp / "data").write_text("mine\n")
    return ["serve", "--data-dir", str(tmp / "data"), "--no-worker"]


SERVE_CASES: list[tuple[str, Setup, list[str]]] = [
    ("serve --database-url with an unknown dialect", unknown_dialect,
     ["cannot use the database nonsense://somewhere/db: Can't load plugin: "
      "sqlalchemy.dialects:nonsense"]),
    ("serve --database-url that is not a URL", not_a_url,
     ["cannot use the database (not a SQLAlchemy URL): Could not parse SQLAlchemy URL"]),
    ("serve --database-url of a server that is not there", unreachable_postgres,
     ["cannot use the database postgresql+psycopg://someone:***@127.0.0.1:9/db: "
      "(psycopg.OperationalError) connection failed"]),
    ("serve --data-dir FILE", data_dir_is_a_file,
     ["data is a file; give a folder (--data-dir)"]),
]


@pytest.mark.parametrize(("setup", "words"), [c[1:] for c in SERVE_CASES],
                         ids=[c[0] for c in SERVE_CASES])
def test_serve_refuses_with_one_line(stembench, tmp_path, setup, words) -> None:
    answer = stembench(*setup(tmp_path))
    assert answer.code == 2, answer.text
    for word in words:
        assert word in answer.text, answer.text
    assert "Traceback" not in answer.text and "hunter2" not in answer.text


def test_deeply_nested_upload_is_refused_with_one_line() -> None:
    from stembench.service.entries import read_upload

    line = b'{"ok": true, "images": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    with pytest.raises(InputError, match="results line 1 nests its JSON too deeply"):
        read_upload(gzip.compress(line), max_bytes=10_000_000)
