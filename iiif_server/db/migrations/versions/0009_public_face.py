"""The public face of the catalogue: collections described for everyone, and the activities of one object found
by key.

- collections.description: the full description (`summary` stays the short one); `dates`: the dates the
  collection covers, as the archive writes them (1942-1944); `provenance`: donor or partner archive;
  `record`: the archive's own reference of the collection, for the link to its catalogue record;
- activities (collection_id, document_ident, id) replaces the index on collection_id alone: a document's
  last activity (a sitemap's lastmod) is one index probe.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dates", sa.String(200), nullable=True))
        batch.add_column(sa.Column("provenance", sa.Text(), nullable=True))
        batch.add_column(sa.Column("record", sa.String(500), nullable=True))
    op.create_index("ix_activities_object", "activities", ["collection_id", "document_ident", "id"])
    op.drop_index("ix_activities_collection_id", "activities")


def downgrade() -> None:
    op.create_index("ix_activities_collection_id", "activities", ["collection_id"])
    op.drop_index("ix_activities_object", "activities")
    with op.batch_alter_table("collections") as batch:
        for name in ("record", "provenance", "dates", "description"):
            batch.drop_column(name)
