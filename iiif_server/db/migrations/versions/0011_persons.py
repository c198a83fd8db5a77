"""People of the archive and their links to pages (issue 21).

- persons: the archive's list of deportees, one row a person, names as the list spells them; `birth_date`
  as given (a year, a month or a day), `birth_year` for the filter, `number_key` the list order;
- person_links: a person's portrait page or line on a list page (a box), suggested, confirmed or rejected;
- transports: each transport's date, destination and its kept counts of people and portraits.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# as the schema had them at this revision
SORT_KEY_TYPE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("surname", sa.Text(), nullable=False),
        sa.Column("given_names", sa.Text(), nullable=False, server_default=""),
        sa.Column("birth_date", sa.String(10), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_place", sa.Text(), nullable=True),
        sa.Column("nationality", sa.Text(), nullable=True),
        sa.Column("transport", sa.String(50), nullable=True),
        sa.Column("number", sa.String(20), nullable=True),
        sa.Column("number_key", SORT_KEY_TYPE, nullable=False, server_default=""),
        sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_persons_transport", "persons", ["transport", "number_key", "id"])
    op.create_table(
        "person_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(100), sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_pk", sa.Integer(), sa.ForeignKey("images.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("box", sa.String(60), nullable=False, server_default=""),
        sa.Column("x", sa.Integer(), nullable=True),
        sa.Column("y", sa.Integer(), nullable=True),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("person_id", "image_pk", "kind", "box"),
    )
    op.create_index("ix_person_links_person_id", "person_links", ["person_id"])
    op.create_index("ix_person_links_image", "person_links", ["image_pk", "state"])
    op.create_index("ix_person_links_review", "person_links", ["state", "score", "id"])
    op.create_table(
        "transports",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("sort_key", SORT_KEY_TYPE, nullable=False, server_default=""),
        sa.Column("date", sa.String(10), nullable=True),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("people", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("portraits", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("transports")
    op.drop_table("person_links")
    op.drop_table("persons")
