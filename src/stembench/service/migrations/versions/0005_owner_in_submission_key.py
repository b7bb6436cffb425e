"""The submission key of a worker job includes its owner (:func:`store.submission_key`).

Before this revision another user's identical submission returned the first user's live
job, which the second user could neither see nor cancel and which ran as the first user.
Keys of existing worker jobs are recomputed so that an owner's retried submission still
finds their live job; upload keys always held the owner and are unchanged.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JOBS = sa.table("jobs", sa.column("id", sa.String), sa.column("submission_key", sa.String),
                 sa.column("source", sa.String), sa.column("owner", sa.String),
                 sa.column("model", sa.String), sa.column("model_options", sa.Text),
                 sa.column("dataset_name", sa.String), sa.column("dataset_preset", sa.String),
                 sa.column("dataset_version", sa.String))


def upgrade() -> None:
    from stembench.service.store import submission_key

    connection = op.get_bind()
    rows = connection.execute(sa.select(_JOBS).where(_JOBS.c.source == "worker")).all()
    for row in rows:
        key = submission_key(row.owner, row.model, json.loads(row.model_options or "{}"),
                             row.dataset_name, row.dataset_preset, row.dataset_version)
        connection.execute(sa.update(_JOBS).where(_JOBS.c.id == row.id)
                           .values(submission_key=key))


def downgrade() -> None:
    """Keys stay as they are: a key with the owner only makes fewer jobs duplicates."""
