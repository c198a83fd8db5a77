"""Ingest runs as rows: who started each (the console or the command line), its progress and heartbeat while
it runs, a stop asked from any replica, and how it ended, interrupted included.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("collection_id", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(50)),
        sa.Column("metadata_csv", sa.Text()),
        sa.Column("started_by", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat", sa.DateTime(timezone=True)),
        sa.Column("converting_since", sa.DateTime(timezone=True)),
        sa.Column("ended", sa.DateTime(timezone=True)),
        sa.Column("total", sa.Integer()),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stop_requested", sa.DateTime(timezone=True)),
        sa.Column("stop_by", sa.Text()),
        sa.Column("report", sa.String(300)),
        sa.Column("message", sa.Text()),
    )
    op.create_index("ix_ingest_runs_collection_id", "ingest_runs", ["collection_id"])
    op.create_index("ix_ingest_runs_state", "ingest_runs", ["state"])
    op.create_index("ix_ingest_runs_created", "ingest_runs", ["created"])


def downgrade() -> None:
    op.drop_table("ingest_runs")
