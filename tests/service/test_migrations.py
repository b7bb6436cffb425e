"""Data migrations of the service database, from the revision before them to the newest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from stembench.service import db, store
from stembench.service.models import Job


def _at_revision(url: str, revision: str) -> sa.Engine:
    engine = db.connect(url)
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).with_name("migrations")))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def test_worker_job_keys_gain_their_owner(tmp_path: Path) -> None:
    engine = _at_revision(f"sqlite:///{tmp_path / 'db.sqlite'}", "0004")
    # a live job keyed as revision 0004 keyed it: model, options and dataset, no owner
    old_key = hashlib.sha256(json.dumps(
        {"model": "log-blob", "options": {}, "dataset": "stembench", "preset": "mini",
         "version": "3.0.0"}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO jobs (id, owner, submission_key, model, model_options, dataset_name, "
            "dataset_preset, dataset_version, status, cancel_requested, n_done, attempts, "
            "created_at, updated_at, source, endpoint_options) VALUES ('j1', 'alice', :key, "
            "'log-blob', '{}', 'stembench', 'mini', '3.0.0', 'queued', 0, 0, 0, "
            "'2026-12-01', '2026-12-01', 'worker', '{}')"), {"key": old_key})
    assert db.migrate(engine) == "0005"
    sessions = db.session_factory(engine)
    with sessions() as session:
        job = session.get(Job, "j1")
        assert job is not None and job.submission_key == store.submission_key(
            "alice", "log-blob", {}, "stembench", "mini", "3.0.0")
        # so the owner's retried submission still finds the live job, another user's does not
        again, created = store.create_job(
            session, owner="alice", owner_name="alice", model="log-blob", options={},
            dataset_name="stembench", dataset_preset="mini", dataset_version="3.0.0",
            endpoint_id=None)
        assert (again.id, created) == ("j1", False)
        bobs, created = store.create_job(
            session, owner="bob", owner_name="bob", model="log-blob", options={},
            dataset_name="stembench", dataset_preset="mini", dataset_version="3.0.0",
            endpoint_id=None)
        assert created and bobs.owner == "bob"
