"""Search that suits names, phrases, several CSV sources per page, and collection-wide search.

- text_entries.pos: an entry's place among its page's entries from one source (consecutive ALTO
  words make a phrase), indexed with the page (which replaces the (page, source) index);
  `source` is now `alto` or `csv:<name>` (up to 200 characters);
- text_vocab: every distinct normalised word once, with a trigram index (PostgreSQL pg_trgm GIN;
  SQLite an FTS5 trigram table kept by a trigger) for typos;
- text_codes: each word's Daitch–Mokotoff codes, for spelling variants of names;
- text_doc_terms: which documents hold a word, per collection, for collection-wide search;
- text_label_terms: the words of documents' labels, summaries and metadata, for catalogue search.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from iiif_server.search.store import TERM_TYPE

    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("text_entries") as batch:
        batch.add_column(sa.Column("pos", sa.Integer(), nullable=True))
        if postgres:  # SQLite does not enforce a VARCHAR's length; PostgreSQL widens without a rewrite
            batch.alter_column("source", type_=sa.String(200), existing_type=sa.String(10))
    op.create_index("ix_text_entries_page_pos", "text_entries", ["image_pk", "pos"])
    op.drop_index("ix_text_entries_image", "text_entries")  # (image_pk, pos) serves its look-ups
    # document first: with `source` first, SQLite preferred it to the page index when replacing a batch of
    # pages' entries, and read every entry of that source per batch (an import slowing as the index grew)
    op.create_index("ix_text_entries_document_source", "text_entries", ["document_pk", "source"])
    op.create_table(
        "text_vocab",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("norm", TERM_TYPE, nullable=False, unique=True),
    )
    op.create_table(
        "text_codes",
        sa.Column("code", sa.String(6), primary_key=True),
        sa.Column("norm", TERM_TYPE, primary_key=True),
    )
    op.create_table(
        "text_doc_terms",
        sa.Column("norm", TERM_TYPE, primary_key=True),
        sa.Column("collection_id", sa.String(200), primary_key=True),
        sa.Column("document_pk", sa.Integer(), primary_key=True),
    )
    op.create_table(
        "text_label_terms",
        sa.Column("norm", TERM_TYPE, primary_key=True),
        sa.Column("document_pk", sa.Integer(), sa.ForeignKey("documents.pk", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_text_label_terms_document_pk", "text_label_terms", ["document_pk"])
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_text_vocab_trgm ON text_vocab USING gin (norm gin_trgm_ops)")
    else:
        op.execute("CREATE VIRTUAL TABLE text_vocab_trgm USING fts5(norm, content='text_vocab', "
                    "content_rowid='id', tokenize='trigram')")
        op.execute("CREATE TRIGGER text_vocab_trgm_insert AFTER INSERT ON text_vocab BEGIN "
                   "INSERT INTO text_vocab_trgm(rowid, norm) VALUES (new.id, new.norm); END")
    # the words already imported
    op.execute("INSERT INTO text_vocab (norm) SELECT DISTINCT norm FROM text_terms")
    op.execute("INSERT INTO text_doc_terms (norm, collection_id, document_pk) SELECT DISTINCT t.norm, "
               "d.collection_id, t.document_pk FROM text_terms t JOIN documents d ON d.pk = t.document_pk")
    bind = op.get_bind()
    from iiif_server.search.labels import reindex_all
    from iiif_server.search.soundex import codes

    reindex_all(bind)

    rows = [{"code": c, "norm": n} for (n,) in bind.execute(sa.text("SELECT norm FROM text_vocab")) for c in codes(n)]
    if rows:
        bind.execute(sa.text("INSERT INTO text_codes (code, norm) VALUES (:code, :norm)"), rows)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER text_vocab_trgm_insert")
        op.execute("DROP TABLE text_vocab_trgm")
    op.drop_table("text_label_terms")
    op.drop_table("text_doc_terms")
    op.drop_table("text_codes")
    op.drop_table("text_vocab")
    op.drop_index("ix_text_entries_document_source", "text_entries")
    op.create_index("ix_text_entries_image", "text_entries", ["image_pk", "source"])
    op.drop_index("ix_text_entries_page_pos", "text_entries")
    with op.batch_alter_table("text_entries") as batch:
        batch.drop_column("pos")
