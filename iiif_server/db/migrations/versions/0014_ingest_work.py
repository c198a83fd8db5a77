"""Shared ingest runs (issue 24): the documents of a run, claimed by the processes that share it, and what a
joining process needs to know of the run.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingest_runs", sa.Column("shared", sa.JSON()))
    op.create_table(
        "ingest_work",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("ingest_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("document", sa.String(200), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("masters", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("claimed_by", sa.String(32)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.JSON()),
    )
    op.create_index("ix_ingest_work_state", "ingest_work", ["run_id", "state", "seq"])


def downgrade() -> None:
    op.drop_table("ingest_work")
    with op.batch_alter_table("ingest_runs") as batch:
        batch.drop_column("shared")
