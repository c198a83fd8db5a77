"""The first catalogue schema: collections, documents, images, activities, state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _described() -> list[sa.Column]:
    return [
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text()),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("rights", sa.String(500)),
        sa.Column("required_statement", sa.Text()),
        sa.Column("nav_date", sa.DateTime(timezone=True)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tier", sa.String(50), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        *_described(),
    )
    op.create_table(
        "documents",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("collection_id", sa.String(200), sa.ForeignKey("collections.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("ident", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(50)),
        *_described(),
        sa.UniqueConstraint("collection_id", "ident"),
    )
    op.create_table(
        "images",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_pk", sa.Integer(), sa.ForeignKey("documents.pk", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("ident", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("source_page", sa.Integer(), nullable=False),
        sa.Column("source_size", sa.BigInteger(), nullable=False),
        sa.Column("source_mtime", sa.Float(), nullable=False),
        sa.Column("tier", sa.String(50)),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("document_pk", "ident"),
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("object_type", sa.String(20), nullable=False),
        sa.Column("collection_id", sa.String(200), nullable=False, index=True),
        sa.Column("document_ident", sa.String(200)),
        sa.Column("tier", sa.String(50), nullable=False, index=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "catalogue_state",
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("catalogue_state", "activities", "images", "documents", "collections"):
        op.drop_table(table)
