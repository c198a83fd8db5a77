"""Page text for IIIF Content Search: entries (a word, line or index entry with its box) and their terms.

- text_entries: one hit region of a page; `line` and `start` give the surrounding words of an
  ALTO word (the hit's context) without a second look-up;
- text_terms: the entry's words, normalised at import (case folded, accents removed) so that
  exact and prefix look-ups are plain index range scans on both engines, per document.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# as the schema had them at this revision (a migration never changes with the code after it)
ENTRY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TERM_TYPE = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_entries",
        sa.Column("id", ENTRY_ID, primary_key=True, autoincrement=True),
        sa.Column("image_pk", sa.Integer(), sa.ForeignKey("images.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("document_pk", sa.Integer(), sa.ForeignKey("documents.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=True),
        sa.Column("start", sa.Integer(), nullable=True),
        sa.Column("x", sa.Integer(), nullable=True),
        sa.Column("y", sa.Integer(), nullable=True),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
    )
    op.create_index("ix_text_entries_image", "text_entries", ["image_pk", "source"])
    op.create_index("ix_text_entries_document", "text_entries", ["document_pk", "id"])
    op.create_table(
        "text_terms",
        sa.Column("entry_id", ENTRY_ID, sa.ForeignKey("text_entries.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("ord", sa.Integer(), primary_key=True),
        sa.Column("document_pk", sa.Integer(), nullable=False),
        sa.Column("norm", TERM_TYPE, nullable=False),
    )
    op.create_index("ix_text_terms_document_norm", "text_terms", ["document_pk", "norm", "entry_id"])


def downgrade() -> None:
    op.drop_table("text_terms")
    op.drop_table("text_entries")
