"""Staff console sessions as rows of their own in `tokens` (kind `session`): ended server-side at sign-out,
on every replica within a second, like a revoked token. And `collections.unannounced`: documents joined the
listing (at their commit) since the collection's last Update activity, which the ingest announces at its end,
or the next one after a crash.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="token"))
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("unannounced", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("unannounced")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("kind")
