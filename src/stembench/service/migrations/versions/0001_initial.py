"""Jobs, results and cutoffs; results and cutoffs immutable by trigger.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_LIVE = "status IN ('queued', 'running', 'done')"
_IMMUTABLE = ("results", "cutoffs")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False, index=True),
        sa.Column("owner_name", sa.String(255)),
        sa.Column("submission_key", sa.String(64), nullable=False, index=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("model_options", sa.Text, nullable=False),
        sa.Column("dataset_name", sa.String(128), nullable=False),
        sa.Column("dataset_preset", sa.String(64), nullable=False),
        sa.Column("dataset_version", sa.String(64), nullable=False),
        sa.Column("endpoint_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("n_images", sa.Integer),
        sa.Column("n_done", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", _timestamp()),
        sa.Column("weights_sha256", sa.String(64)),
        sa.Column("model_version", sa.String(64)),
        sa.Column("duplicate_of", sa.String(32)),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp()),
    )
    op.create_index("uq_jobs_live_submission", "jobs", ["submission_key"], unique=True,
                    sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        sa.Column("image_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("framework", sa.String(64)),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("dataset_name", sa.String(128)),
        sa.Column("dataset_version", sa.String(64)),
        sa.Column("dataset_manifest_sha256", sa.String(64)),
        sa.Column("data_group", sa.String(64), nullable=False, index=True),
        sa.Column("series", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("axis_value", sa.Float),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("recall", sa.Float),
        sa.Column("precision", sa.Float),
        sa.Column("f1", sa.Float),
        sa.Column("rms_angstrom", sa.Float),
        sa.Column("tp", sa.Integer, nullable=False),
        sa.Column("fp", sa.Integer, nullable=False),
        sa.Column("fn", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("device", sa.String(255)),
        sa.Column("stembench_version", sa.String(64)),
        sa.Column("record_json", sa.Text, nullable=False),
        sa.Column("stored_at", _timestamp(), nullable=False),
        sa.UniqueConstraint("job_id", "image_id", name="uq_results_job_image"),
    )
    op.create_table(
        "cutoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        sa.Column("data_group", sa.String(64), nullable=False),
        sa.Column("axis", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("cutoff_json", sa.Text, nullable=False),
        sa.UniqueConstraint("job_id", "data_group", "axis", "method", name="uq_cutoffs_key"),
    )
    _install_immutability_guards()


def _install_immutability_guards() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _IMMUTABLE:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable once stored'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION stembench_refuse_change() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION '% rows are immutable once stored', TG_TABLE_NAME; END; "
            "$$ LANGUAGE plpgsql"
        )
        for table in _IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION stembench_refuse_change()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _IMMUTABLE:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS stembench_refuse_change()")
    op.drop_table("jobs")
