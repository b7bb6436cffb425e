"""Tokens logged out of the service (their SHA-256), kept until they expire.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_out_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True))


def downgrade() -> None:
    op.drop_table("logged_out_tokens")
