"""Leaderboard entries: where a job's results came from, its model card, re-scoring
provenance, and failed images.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("source", sa.String(16), nullable=False,
                                    server_default="worker"))
    for column in (sa.Column("model_card_json", sa.Text),
                   sa.Column("dataset_sha256", sa.String(64)),
                   sa.Column("scorer_version", sa.String(16)),
                   sa.Column("n_failed", sa.Integer),
                   sa.Column("training_overlap", sa.String(8))):
        op.add_column("jobs", column)
    # results are immutable (triggers refuse UPDATE): adding a nullable column rewrites no row
    op.add_column("results", sa.Column("error", sa.Text))


def downgrade() -> None:
    op.drop_column("results", "error")
    with op.batch_alter_table("jobs") as batch:
        for name in ("training_overlap", "n_failed", "scorer_version", "dataset_sha256",
                     "model_card_json", "source"):
            batch.drop_column(name)
