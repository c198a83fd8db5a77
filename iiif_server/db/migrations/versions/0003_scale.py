"""The catalogue at the archive's size: kept counts, sort keys and the indexes the queries need.

- documents.sort_key: the natural-order key of the ident, so a new document finds its
  place by an index look-up instead of reading the whole collection;
- collections.document_count / image_count: kept by every change, so listings never
  join every image;
- catalogue_state 'public_activities': the Change Discovery totalItems, kept;
- indexes for paging documents and pages by position, activities by (tier, id), and the
  sparse tier overrides; the indexes that only repeated a unique constraint's leading
  column are dropped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

# as the schema had them at this revision (a migration never changes with the code after it)
SORT_KEY_TYPE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
_DIGITS = re.compile(r"\d+")


def sort_key(name: str) -> str:
    return _DIGITS.sub(lambda m: m.group().lstrip("0").rjust(20, "0"), name.casefold())[:400]


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("sort_key", SORT_KEY_TYPE, nullable=False, server_default=""))
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("document_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("image_count", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_documents_collection_id", "documents")
    op.drop_index("ix_images_document_pk", "images")
    op.drop_index("ix_activities_tier", "activities")

    conn = op.get_bind()
    docs = sa.table("documents", sa.column("pk", sa.Integer), sa.column("ident", sa.String),
                    sa.column("sort_key", sa.String))
    rows = conn.execute(sa.select(docs.c.pk, docs.c.ident)).all()
    for pk, ident in rows:
        conn.execute(sa.update(docs).where(docs.c.pk == pk).values(sort_key=sort_key(ident)))
    conn.execute(sa.text(
        "UPDATE collections SET "
        "document_count = (SELECT count(*) FROM documents d WHERE d.collection_id = collections.id), "
        "image_count = (SELECT count(*) FROM images i JOIN documents d ON i.document_pk = d.pk "
        "WHERE d.collection_id = collections.id)"
    ))
    public = conn.execute(sa.text("SELECT count(*) FROM activities WHERE tier = 'public'")).scalar() or 0
    conn.execute(sa.text("INSERT INTO catalogue_state (key, value) VALUES ('public_activities', :n)"), {"n": public})

    op.create_index("ix_documents_position", "documents", ["collection_id", "position"])
    op.create_index("ix_documents_sort_key", "documents", ["collection_id", "sort_key"])
    op.create_index("ix_documents_tier_set", "documents", ["collection_id"],
                    sqlite_where=sa.text("tier IS NOT NULL"), postgresql_where=sa.text("tier IS NOT NULL"))
    op.create_index("ix_images_position", "images", ["document_pk", "position"])
    op.create_index("ix_images_tier_set", "images", ["document_pk"],
                    sqlite_where=sa.text("tier IS NOT NULL"), postgresql_where=sa.text("tier IS NOT NULL"))
    op.create_index("ix_activities_tier_id", "activities", ["tier", "id"])


def downgrade() -> None:
    for name, table in (("ix_activities_tier_id", "activities"), ("ix_images_tier_set", "images"),
                        ("ix_images_position", "images"), ("ix_documents_tier_set", "documents"),
                        ("ix_documents_sort_key", "documents"), ("ix_documents_position", "documents")):
        op.drop_index(name, table)
    op.execute("DELETE FROM catalogue_state WHERE key = 'public_activities'")
    op.create_index("ix_activities_tier", "activities", ["tier"])
    op.create_index("ix_images_document_pk", "images", ["document_pk"])
    op.create_index("ix_documents_collection_id", "documents", ["collection_id"])
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("image_count")
        batch.drop_column("document_count")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("sort_key")
