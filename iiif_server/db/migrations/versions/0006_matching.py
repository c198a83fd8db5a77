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

import json
import re
import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    _reindex_labels(bind)

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


# -- frozen: the word normalisation and Daitch–Mokotoff coding as they were at this revision -------------------
# (copied, not imported: a migration must give the same tables whatever the code becomes later)

TERM_TYPE = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
_WORD = re.compile(r"\w+")
_FOLD = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})


def normalise(text: str) -> str:
    """Case folded, without accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    return [t[:200] for t in _WORD.findall(normalise(text))]


# group: one reading (start, before a vowel, other) or several; "" = not coded
_Reading = tuple[str, str, str]
_CHART: dict[str, tuple[_Reading, ...]] = {}


def _add(groups: str, *readings: _Reading) -> None:
    for group in groups.split():
        _CHART[group] = readings


_add("AI AJ AY", ("0", "1", ""))
_add("AU", ("0", "7", ""))
_add("A", ("0", "", ""))
_add("B", ("7", "7", "7"))
_add("CHS", ("5", "54", "54"))
_add("CH", ("5", "5", "5"), ("4", "4", "4"))
_add("CK", ("5", "5", "5"), ("45", "45", "45"))
_add("CSZ CZS CS CZ", ("4", "4", "4"))
_add("C", ("5", "5", "5"), ("4", "4", "4"))
_add("DRZ DRS DS DSH DSZ DZ DZH DZS", ("4", "4", "4"))
_add("D DT", ("3", "3", "3"))
_add("EI EJ EY", ("0", "1", ""))
_add("EU", ("1", "1", ""))
_add("E", ("0", "", ""))
_add("FB F", ("7", "7", "7"))
_add("G", ("5", "5", "5"))
_add("H", ("5", "5", ""))
_add("IA IE IO IU", ("1", "", ""))
_add("I", ("0", "", ""))
_add("J", ("1", "1", "1"), ("4", "4", "4"))
_add("KS", ("5", "54", "54"))
_add("KH K", ("5", "5", "5"))
_add("L", ("8", "8", "8"))
_add("MN NM", ("66", "66", "66"))
_add("M N", ("6", "6", "6"))
_add("OI OJ OY", ("0", "1", ""))
_add("O", ("0", "", ""))
_add("P PF PH", ("7", "7", "7"))
_add("Q", ("5", "5", "5"))
_add("RZ RS", ("94", "94", "94"), ("4", "4", "4"))
_add("R", ("9", "9", "9"))
_add("SCHTSCH SCHTSH SCHTCH SHTCH SHCH SHTSH STCH STSCH SC STRZ STRS STSH SZCZ SZCS", ("2", "4", "4"))
_add("SCH SH SZ S", ("4", "4", "4"))
_add("SHT SCHT SCHD ST SZT SHD SZD SD", ("2", "43", "43"))
_add("TCH TTCH TTSCH TRZ TRS TSCH TSH TS TTS TTSZ TC TZ TTZ TZS TSZ", ("4", "4", "4"))
_add("TH T", ("3", "3", "3"))
_add("UI UJ UY", ("0", "1", ""))
_add("U UE", ("0", "", ""))
_add("V W", ("7", "7", "7"))
_add("X", ("5", "54", "54"))
_add("Y", ("1", "", ""))
_add("ZDZ ZDZH ZHDZH", ("2", "4", "4"))
_add("ZD ZHD", ("2", "43", "43"))
_add("ZH ZS ZSCH ZSH Z", ("4", "4", "4"))

_LONGEST = max(map(len, _CHART))
_VOWELS = frozenset("AEIOU")
_ALWAYS = frozenset({"MN", "NM"})  # coded as two digits even after an M or N
LENGTH = 6


def codes(word: str) -> list[str]:
    """The word's codes, sorted (empty when it has no letter the chart codes, e.g. a number)."""
    letters = "".join(c for c in normalise(word).upper() if "A" <= c <= "Z")
    branches: set[tuple[str, str | None]] = {("", None)}  # (code so far, the previous group's digits)
    i = 0
    while i < len(letters) and any(len(code) < LENGTH for code, _ in branches):
        for size in range(min(_LONGEST, len(letters) - i), 0, -1):
            group = letters[i:i + size]
            if group in _CHART:
                break
        following = letters[i + size:i + size + 1]
        column = 0 if i == 0 else 1 if following and following in _VOWELS else 2
        grown: set[tuple[str, str | None]] = set()
        for code, previous in branches:
            for reading in _CHART[group]:
                digits = reading[column]
                repeat = previous is not None and previous.endswith(digits) and group not in _ALWAYS
                grown.add((code if repeat or len(code) >= LENGTH else code + digits, digits))
        branches = grown
        i += size
    found = {code[:LENGTH].ljust(LENGTH, "0") for code, _ in branches if code}
    return sorted(found)


def _described_words(label: str | None, summary: str | None, metadata: Any) -> set[str]:
    parts = [label or "", summary or ""]
    if isinstance(metadata, list):
        parts += [str(pair[1]) for pair in metadata if isinstance(pair, list | tuple) and len(pair) == 2]
    return {t for part in parts for t in terms(part)}


def _reindex_labels(bind: Any, chunk: int = 2000) -> None:
    """text_label_terms for every document, in key order and bounded chunks."""
    last = 0
    while True:
        rows = bind.execute(sa.text("SELECT pk, label, summary, metadata FROM documents WHERE pk > :last "
                                    "ORDER BY pk LIMIT :chunk"), {"last": last, "chunk": chunk}).all()
        if not rows:
            return
        values = []
        for pk, label, summary, metadata in rows:
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            values += [{"norm": w, "pk": pk} for w in sorted(_described_words(label, summary, metadata))]
        if values:
            bind.execute(sa.text("INSERT INTO text_label_terms (norm, document_pk) VALUES (:norm, :pk)"), values)
        last = rows[-1][0]
