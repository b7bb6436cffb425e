"""Uploads a hostile user cannot abuse: parts count against the upload's limit and the user's
quota as they arrive, refused and abandoned uploads are deleted, built-in model names are
reserved, and user text in the scores CSV cannot run as a spreadsheet formula."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time

import pytest
from fastapi.testclient import TestClient
from service_helpers import bearer, lock_is_held, make_settings
from service_uploads import CARD, packed, results_file, shards, upload

from stembench.service.app import create_app
from stembench.service.worker import Worker

OCTETS = {"Content-Type": "application/octet-stream"}


def _put(client, digest: str, index: int, size: int, who: str = "alice"):
    return client.put(f"/api/uploads/{digest}/parts/{index}", content=b"x" * size,
                      headers={**bearer(who), **OCTETS})


def _parts(settings, who: str = "alice") -> list[str]:
    root = settings.data_dir / "uploads"
    owner = hashlib.sha256(who.encode()).hexdigest()[:24]
    return sorted(p.name for p in (root / owner).glob("*")) if (root / owner).is_dir() else []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_parts_count_against_limit_and_quota_as_they_arrive(tmp_path, database_url,
                                                           dataset_cache, globus_auth) -> None:
    settings = make_settings(tmp_path, database_url, max_upload_bytes=20_000,
                             upload_part_bytes=16_384, upload_quota_bytes=30_000)
    a, b, c, d = (hashlib.sha256(n.encode()).hexdigest() for n in "abcd")
    with TestClient(create_app(settings)) as client:
        assert _put(client, a, 0, 15_000).status_code == 200
        assert _put(client, a, 0, 15_000).status_code == 200  # a part sent again counts once
        over = _put(client, a, 1, 6_000)  # the upload would hold 21,000 bytes
        assert over.status_code == 413 and "limit of 20000 bytes" in over.json()["detail"]
        assert a not in _parts(settings)  # a refused upload is deleted
        assert _put(client, b, 0, 15_000).status_code == 200
        assert _put(client, c, 0, 15_000).status_code == 200
        quota = _put(client, d, 0, 100)
        assert quota.status_code == 413 and "quota of 30000 bytes" in quota.json()["detail"]
        assert _parts(settings) == sorted([b, c])
        assert _put(client, d, 0, 100, who="bob").status_code == 200  # quotas are per user
    _age(settings, b)
    with TestClient(create_app(settings)) as client:  # the start swept the abandoned upload
        assert _parts(settings) == [c]
        assert _put(client, d, 0, 100).status_code == 200  # which made room
        assert _parts(settings) == sorted([c, d])


def _age(settings, digest: str) -> None:
    """Make an upload's parts look as if they arrived before it counts as abandoned."""
    for part in (settings.data_dir / "uploads").rglob(f"{digest}/*.part"):
        os.utime(part, (time.time() - 2 * settings.upload_abandon_s,) * 2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_parts_count_against_a_quota_of_files(tmp_path, database_url, globus_auth) -> None:
    settings = make_settings(tmp_path, database_url, upload_quota_parts=3)
    a, b, c = (hashlib.sha256(n.encode()).hexdigest() for n in "abc")
    with TestClient(create_app(settings)) as client:
        for digest, index in ((a, 0), (a, 1), (b, 0), (a, 1)):  # a part sent again: one file
            assert _put(client, digest, index, 10).status_code == 200
        refused = _put(client, c, 0, 10)
        assert refused.status_code == 413 and "quota of 3 parts" in refused.json()["detail"]
        assert _put(client, c, 0, 10, who="bob").status_code == 200
        assert _parts(settings) == sorted([a, b])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_tally_is_kept_and_recounted_from_disk_at_start(tmp_path, database_url,
                                                           globus_auth, caplog) -> None:
    """A part is checked against a running tally, not by reading every stored part; the
    service's start recounts the tally from the files."""
    import shutil

    settings = make_settings(tmp_path, database_url, upload_quota_bytes=30_000)
    a, b, c = (hashlib.sha256(n.encode()).hexdigest() for n in "abc")
    with TestClient(create_app(settings)) as client:
        assert _put(client, a, 0, 15_000).status_code == 200
        assert _put(client, b, 0, 15_000).status_code == 200
        owner = hashlib.sha256(b"alice").hexdigest()[:24]
        shutil.rmtree(settings.data_dir / "uploads" / owner / b)  # behind the service's back
        assert _put(client, c, 0, 15_000).status_code == 413  # the tally still counts it
    with TestClient(create_app(settings)) as client:
        assert "did not match the parts on disk" in caplog.text
        assert _put(client, c, 0, 15_000).status_code == 200
        assert _parts(settings) == sorted([a, c])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_abandoned_uploads_are_swept_on_a_timer(tmp_path, database_url, globus_auth) -> None:
    """No later part is needed: the service's timer deletes an upload left unfinished."""
    settings = make_settings(tmp_path, database_url, upload_abandon_s=1.0)
    a = hashlib.sha256(b"a").hexdigest()
    with TestClient(create_app(settings)) as client:
        assert _put(client, a, 0, 10).status_code == 200
        deadline = time.monotonic() + 60  # a guard against a hang only
        while _parts(settings) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _parts(settings) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_refused_completion_deletes_the_parts(client, settings) -> None:
    data = b"not gzip at all"
    answer = upload(client, data)
    assert answer.status_code == 422 and "not a gzip" in answer.json()["detail"]
    assert _parts(settings) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("name", ["log-blob", "Atomap-Like", "atomsegnet"])
def test_builtin_model_names_are_reserved(client, tmp_path, dataset_cache, name) -> None:
    data = packed(shards(results_file(tmp_path / "r.jsonl", dataset_cache)))
    answer = upload(client, data, card={**CARD, "name": name})
    assert answer.status_code == 422
    assert f"model card name {name!r} is the name of a model" in answer.json()["detail"]


#: Cells a spreadsheet would run (OWASP CSV injection): plain, after leading whitespace or a
#: newline, and in full-width or small forms that fold onto a formula character.
HOSTILE = ["=HYPERLINK(\"http://x\")", "+1+cmd", "-2-cmd", "@SUM(A1)", "\t=1", " =1+1",
           "\n=1", "\r\n@SUM(A1)", "\uff1dHYPERLINK(1)", "\uff0b1", "\u3000=1", "\ufe661",
           "\u00a0\uff20SUM(A1)", "\u22121+1"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_csv_cells_cannot_run_as_formulas(client, settings, tmp_path, dataset_cache) -> None:
    import unicodedata

    items = shards(results_file(tmp_path / "r.jsonl", dataset_cache))
    for shard in items:
        shard["runtime"]["host"] = HOSTILE[0]
        shard["runtime"]["device"] = HOSTILE[1]
    images = [image for shard in items for image in shard["images"]]
    assert len(images) > len(HOSTILE)
    for image, value in zip(images, HOSTILE[2:], strict=False):
        image.update(error=value, coordinates=None)
    answer = upload(client, packed(items))
    assert answer.status_code == 202, answer.text
    entry = answer.json()["entry"]["id"]
    assert Worker(client.app.state.settings, client.app.state.sessions).run_once()
    assert not list((settings.data_dir / "uploads" / "complete").glob("*"))  # used and deleted
    text = client.get(f"/api/jobs/{entry}/scores.csv").text
    cells = {cell for row in csv.reader(io.StringIO(text)) for cell in row}
    assert {"'" + value for value in HOSTILE} <= cells
    visible = [unicodedata.normalize("NFKC", cell).lstrip() for cell in cells]
    assert not [cell for cell in visible if cell[:1] in ("=", "+", "@", "\u2212")]
    assert not [cell for cell in visible if cell.startswith("-") and not _number(cell)]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_upload_sweeper_survives_an_unexpected_error(tmp_path, monkeypatch,
                                                         caplog) -> None:
    import logging
    import threading

    from stembench.service import upload_parts

    swept, again = [], threading.Event()

    def flaky(settings: object, *, recount: bool = False) -> None:
        swept.append(recount)
        if len(swept) == 2:  # the timer's first sweep meets a bug
            raise RuntimeError("an unforeseen failure")
        if len(swept) == 3:
            again.set()

    monkeypatch.setattr(upload_parts, "sweep_uploads", flaky)
    caplog.set_level(logging.ERROR, logger="stembench.service.upload_parts")
    sweeper = upload_parts.UploadSweeper(make_settings(tmp_path, "sqlite://"), interval_s=0.01)
    sweeper.start()
    try:
        assert again.wait(60)  # a guard against a hang only: the timer swept again
    finally:
        sweeper.stop()
    assert "sweeping abandoned uploads failed" in caplog.text
    assert "RuntimeError: an unforeseen failure" in caplog.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_completion_joins_the_parts_under_the_owners_lock(client, monkeypatch) -> None:
    """A second completion of the same upload may be deleting its parts meanwhile."""
    from stembench.service import uploads
    from stembench.service.upload_parts import upload_folder

    real, held = uploads._joined, []

    def probed(folder: object, digest: str, parts: int, limit: int) -> bytes:
        owner_folder = upload_folder(client.app.state.settings, "alice", digest).parent
        held.append(lock_is_held(owner_folder.parent / f"{owner_folder.name}.lock"))
        return real(folder, digest, parts, limit)

    monkeypatch.setattr(uploads, "_joined", probed)
    digest = hashlib.sha256(b"x" * 10).hexdigest()
    put = client.put(f"/api/uploads/{digest}/parts/0", content=b"x" * 10,
                     headers={**bearer("alice"), "Content-Type": "application/octet-stream"})
    assert put.status_code == 200, put.text
    client.post(f"/api/uploads/{digest}/complete", json={"parts": 1, "model_card": CARD},
                headers=bearer("alice"))
    assert held == [True]
