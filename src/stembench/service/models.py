"""Database tables of the service (SQLAlchemy 2 declarative models).

``jobs`` is the job queue and the record of every submission. ``results`` (one row per
scored image) and ``cutoffs`` (one row per model, group, axis and method) are written once,
when a job finishes, and never changed: the migrations install triggers that refuse UPDATE
and DELETE on them, and the ORM refuses to flush a change to a stored row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from stembench.errors import StembenchError

__all__ = [
    "ACTIVE_STATUSES",
    "JOB_STATUSES",
    "Base",
    "CutoffRow",
    "ImmutableRowError",
    "Job",
    "LoggedOutToken",
    "ResultRow",
    "result_row",
]

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running", "done")


class ImmutableRowError(StembenchError):
    """Something tried to change or delete a stored result."""


class Base(DeclarativeBase):
    """Base of the service's tables."""


class Job(Base):
    """One submitted evaluation (``source="worker"``) or uploaded result (``"upload"``).

    A finished job is a leaderboard entry: ``model_card_json`` holds its model card,
    ``dataset_sha256`` and ``scorer_version`` what its stored scores were computed against
    and with (the service re-scores every result), ``n_failed`` its failed images.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    owner_name: Mapped[str | None] = mapped_column(String(255))
    submission_key: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(128))
    model_options: Mapped[str] = mapped_column(Text, default="{}")
    dataset_name: Mapped[str] = mapped_column(String(128))
    dataset_preset: Mapped[str] = mapped_column(String(64))
    dataset_version: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[str | None] = mapped_column(String(64))
    endpoint_options: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    n_images: Mapped[int | None] = mapped_column(Integer)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16), default="worker", server_default="worker")
    model_card_json: Mapped[str | None] = mapped_column(Text)
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    scorer_version: Mapped[str | None] = mapped_column(String(16))
    n_failed: Mapped[int | None] = mapped_column(Integer)
    training_overlap: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (
        # One live (queued, running or done) job per submission key: re-submissions and
        # concurrent duplicates are detected by the database itself.
        Index("uq_jobs_live_submission", "submission_key", unique=True,
              sqlite_where=text("status IN ('queued', 'running', 'done')"),
              postgresql_where=text("status IN ('queued', 'running', 'done')")),
    )


class ResultRow(Base):
    """The score of one image in one finished job, with its provenance (immutable)."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    image_id: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    framework: Mapped[str | None] = mapped_column(String(64))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    dataset_name: Mapped[str | None] = mapped_column(String(128))
    dataset_version: Mapped[str | None] = mapped_column(String(64))
    dataset_manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    group: Mapped[str] = mapped_column("data_group", String(64), index=True)
    series: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)
    axis_value: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    recall: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    rms_angstrom: Mapped[float | None] = mapped_column(Float)
    tp: Mapped[int] = mapped_column(Integer)
    fp: Mapped[int] = mapped_column(Integer)
    fn: Mapped[int] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(255))
    stembench_version: Mapped[str | None] = mapped_column(String(64))
    record_json: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("job_id", "image_id", name="uq_results_job_image"),)


class CutoffRow(Base):
    """One cutoff of a finished job (immutable), as :meth:`Cutoff.to_dict` JSON."""

    __tablename__ = "cutoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    group: Mapped[str] = mapped_column("data_group", String(64))
    axis: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    cutoff_json: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("job_id", "data_group", "axis", "method", name="uq_cutoffs_key"),
    )


def _refuse_change(mapper: Mapper[object], connection: object, target: object) -> None:
    raise ImmutableRowError(f"{type(target).__name__} rows are immutable once stored")


for _model in (ResultRow, CutoffRow):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)


class LoggedOutToken(Base):
    """A bearer token logged out of the service (its SHA-256), refused by every process
    until ``expires_at``, the token's own expiry (the row may go after it)."""

    __tablename__ = "logged_out_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def result_row(job_id: str, record: Mapping[str, Any], stored_at: Any) -> ResultRow:
    """The stored row of one re-scored score record (non-finite numbers stored as NULL).

    Parameters
    ----------
    job_id : str
        The job the record belongs to.
    record : mapping
        One re-scored score record (:func:`stembench.service.rescore.rescore`'s output).
    stored_at : datetime
        When it is stored.
    """
    safe = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()}
    return ResultRow(
        job_id=job_id, image_id=str(record["image_id"]), model=str(record["model"]),
        model_version=str(record["model_version"]), framework=record.get("framework"),
        weights_sha256=str(record["weights_sha256"]), dataset_name=record.get("dataset_name"),
        dataset_version=record.get("dataset_version"),
        dataset_manifest_sha256=record.get("dataset_manifest_sha256"),
        group=str(record["group"]), series=str(record["series"]), step=int(record["step"]),
        axis_value=_number(record.get("axis_value")), seed=int(record["seed"]),
        recall=_number(record.get("recall")), precision=_number(record.get("precision")),
        f1=_number(record.get("f1")), rms_angstrom=_number(record.get("rms_angstrom")),
        tp=int(record["tp"]), fp=int(record["fp"]), fn=int(record["fn"]),
        host=record.get("host"), device=record.get("device"),
        stembench_version=record.get("stembench_version"), error=record.get("error"),
        record_json=json.dumps(safe, sort_keys=True, allow_nan=False), stored_at=stored_at)
