"""Name search a researcher can trust (issue 20).

- text_entries.unit: the words of one ALTO line are one unit (the id of the line's first word; NULL: the
  entry is a unit of its own, as a CSV row): a name's words match in any order within a unit, never across
  two; text_entries.block: the ALTO TextBlock of a word (a phrase runs over a line break within a block
  only). Words imported before this revision get their line as unit and one block per page, as they were
  matched before;
- text_keys: each word of the vocabulary of 4 to 32 letters under each of its deletions, for typos (one
  letter off) by equality; replaces the trigram indexes (pg_trgm GIN, SQLite FTS5), whose look-ups grew with
  the vocabulary;
- text_codes again, by the chart's J rule and its rule for repeated digits, and for words with the Dutch ij
  also the codes of their spelling with y;
- text_doc_terms (document_pk, norm): a document's words by prefix, for collection search.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ENTRY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TERM_TYPE = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
CHUNK = 5000


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    with op.batch_alter_table("text_entries") as batch:
        batch.add_column(sa.Column("unit", ENTRY_ID, nullable=True))
        batch.add_column(sa.Column("block", sa.Integer(), nullable=True))
    _units(bind)
    op.create_table(
        "text_keys",
        sa.Column("key", TERM_TYPE, primary_key=True),
        sa.Column("norm", TERM_TYPE, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_text_doc_terms_document", "text_doc_terms", ["document_pk", "norm"])
    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_text_vocab_trgm")
    else:
        op.execute("DROP TRIGGER IF EXISTS text_vocab_trgm_insert")
        op.execute("DROP TABLE IF EXISTS text_vocab_trgm")
    op.execute("DELETE FROM text_codes")
    last = ""
    while True:
        words = [w for (w,) in bind.execute(sa.text("SELECT norm FROM text_vocab WHERE norm > :last ORDER BY norm "
                                                   "LIMIT :n"), {"last": last, "n": CHUNK})]
        if not words:
            break
        # with the Dutch ij also as y (Kleijn meets Kleyn)
        code_rows = [{"code": c, "norm": w} for w in words
                     for c in sorted(set(codes(w)) | (set(codes(w.replace("ij", "y"))) if "ij" in w else set()))]
        key_rows = [{"key": k, "norm": w} for w in words if 4 <= len(w) <= 32 for k in _deletions(w)]
        if code_rows:
            bind.execute(sa.text("INSERT INTO text_codes (code, norm) VALUES (:code, :norm)"), code_rows)
        if key_rows:
            bind.execute(sa.text("INSERT INTO text_keys (key, norm) VALUES (:key, :norm)"), key_rows)
        last = words[-1]


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_text_doc_terms_document", "text_doc_terms")
    op.drop_table("text_keys")
    with op.batch_alter_table("text_entries") as batch:
        batch.drop_column("block")
        batch.drop_column("unit")
    if postgres:
        op.execute("CREATE INDEX ix_text_vocab_trgm ON text_vocab USING gin (norm gin_trgm_ops)")
    else:
        op.execute("CREATE VIRTUAL TABLE text_vocab_trgm USING fts5(norm, content='text_vocab', "
                   "content_rowid='id', tokenize='trigram')")
        op.execute("CREATE TRIGGER text_vocab_trgm_insert AFTER INSERT ON text_vocab BEGIN "
                   "INSERT INTO text_vocab_trgm(rowid, norm) VALUES (new.id, new.norm); END")
        op.execute("INSERT INTO text_vocab_trgm(text_vocab_trgm) VALUES ('rebuild')")
    # the codes as revision 0006 made them are not restored: a downgrade keeps this revision's (a superset in
    # most names; the search of that revision reads them alike)


def _units(bind: Any) -> None:
    """Each ALTO word (an entry with a `start` in its line) gets its line's first word as unit, and block 0 (the
    page was one block to the phrases of the revisions before), in key order and bounded chunks: an import gives
    a page's words consecutive ids in their order, and the first word of a line starts at 0."""
    last, unit = 0, 0
    while True:
        rows = bind.execute(sa.text("SELECT id, start FROM text_entries WHERE start IS NOT NULL AND id > :last "
                                    "ORDER BY id LIMIT :n"), {"last": last, "n": CHUNK}).all()
        if not rows:
            return
        updates = []
        for ident, start in rows:
            if start == 0 or not unit:
                unit = ident
            updates.append({"u": unit, "id": ident})
        bind.execute(sa.text("UPDATE text_entries SET unit = :u, block = 0 WHERE id = :id"), updates)
        last = rows[-1][0]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


# -- frozen: the word normalisation and Daitch–Mokotoff coding as they are at this revision ---------------------
# (copied, not imported: a migration must give the same tables whatever the code becomes later)

_FOLD = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# a reading: the code at the start, before a vowel, elsewhere ("" = not coded)
_Reading = tuple[str, str, str]
_CHART: dict[str, tuple[_Reading, ...]] = {}

# placeholders for the chart's letters with diacritics (they survive folding, outside A-Z)
OGONEK_A, OGONEK_E, CEDILLA_T = "\ue000", "\ue001", "\ue002"
_SPECIAL = str.maketrans({"ą": OGONEK_A, "ę": OGONEK_E, "ţ": CEDILLA_T, "ț": CEDILLA_T})


def _add(groups: str, *readings: _Reading) -> None:
    for group in groups.split():
        _CHART[group] = readings


X = ""  # not coded
_add("AI AJ AY", ("0", "1", X))
_add("AU", ("0", "7", X))
_add(OGONEK_A, (X, X, "6"), (X, X, X))
_add("A", ("0", X, X))
_add("B", ("7", "7", "7"))
_add("CHS", ("5", "54", "54"))
_add("CH", ("5", "5", "5"), ("4", "4", "4"))
_add("CK", ("5", "5", "5"), ("45", "45", "45"))
_add("CZ CS CSZ CZS", ("4", "4", "4"))
_add("C", ("5", "5", "5"), ("4", "4", "4"))
_add("DRZ DRS DS DSH DSZ DZ DZH DZS", ("4", "4", "4"))
_add("D DT", ("3", "3", "3"))
_add("EI EJ EY", ("0", "1", X))
_add("EU", ("1", "1", X))
_add(OGONEK_E, (X, X, "6"), (X, X, X))
_add("E", ("0", X, X))
_add("FB F", ("7", "7", "7"))
_add("G", ("5", "5", "5"))
_add("H", ("5", "5", X))
_add("IA IE IO IU", ("1", X, X))
_add("I", ("0", X, X))
_add("J", ("1", X, X), ("4", "4", "4"))
_add("KS", ("5", "54", "54"))
_add("KH K", ("5", "5", "5"))
_add("L", ("8", "8", "8"))
_add("MN NM", ("66", "66", "66"))
_add("M N", ("6", "6", "6"))
_add("OI OJ OY", ("0", "1", X))
_add("O", ("0", X, X))
_add("P PF PH", ("7", "7", "7"))
_add("Q", ("5", "5", "5"))
_add("RZ RS", ("94", "94", "94"), ("4", "4", "4"))
_add("R", ("9", "9", "9"))
_add("SCHTSCH SCHTSH SCHTCH SHTCH SHCH SHTSH STCH STSCH SC STRZ STRS STSH SZCZ SZCS", ("2", "4", "4"))
_add("SCH SH SZ S", ("4", "4", "4"))
_add("SHT SCHT SCHD ST SZT SHD SZD SD", ("2", "43", "43"))
_add("TCH TTCH TTSCH TRZ TRS TSCH TSH TS TTS TTSZ TC TZ TTZ TZS TSZ", ("4", "4", "4"))
_add(CEDILLA_T, ("3", "3", "3"), ("4", "4", "4"))
_add("TH T", ("3", "3", "3"))
_add("UI UJ UY", ("0", "1", X))
_add("U UE", ("0", X, X))
_add("V W", ("7", "7", "7"))
_add("X", ("5", "54", "54"))
_add("Y", ("1", X, X))
_add("ZDZ ZDZH ZHDZH", ("2", "4", "4"))
_add("ZD ZHD", ("2", "43", "43"))
_add("ZH ZS ZSCH ZSH Z", ("4", "4", "4"))

_LONGEST = max(map(len, _CHART))
LENGTH = 6
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ" + OGONEK_A + OGONEK_E + CEDILLA_T)


def _vowel(reading: _Reading) -> bool:
    """A reading sounds as a vowel when the chart codes it 0 or 1 at the start of a name."""
    return reading[0] in ("0", "1")


def letters(word: str) -> str:
    """The letters the chart codes, upper case (Ą, Ę, Ţ as placeholders; other accents and ł folded)."""
    folded = unicodedata.normalize("NFC", word).casefold().translate(_SPECIAL)
    return "".join(c for c in normalise(folded).upper() if c in _LETTERS)


def groups(word: str) -> list[str]:
    """The word cut into the chart's letter groups, longest first at each position."""
    text = letters(word)
    found, i = [], 0
    while i < len(text):
        for size in range(min(_LONGEST, len(text) - i), 0, -1):
            if text[i:i + size] in _CHART:
                break
        found.append(text[i:i + size])
        i += size
    return found


def codes(word: str) -> list[str]:
    """The word's codes, sorted (empty when it has no letter the chart codes, e.g. a number)."""
    cut = groups(word)
    if not cut:
        return []
    # a branch: (code so far, the last digit written or "" after a group not coded, which reading of this
    # group the one before it assumed: None = either, True = a vowel reading, False = a consonant reading)
    branches: set[tuple[str, str, bool | None]] = {("", "", None)}
    for n, group in enumerate(cut):
        following = _CHART[cut[n + 1]] if n + 1 < len(cut) else None
        grown: set[tuple[str, str, bool | None]] = set()
        for code, last, assumed in branches:
            if len(code) >= LENGTH:
                grown.add((code, last, None))
                continue
            for reading in _CHART[group]:
                if assumed is not None and _vowel(reading) != assumed:
                    continue  # the group before was coded as if this one were read the other way
                # the column depends on how the next group sounds; a J there may sound either way
                nexts: list[bool | None] = sorted({_vowel(r) for r in following}) if following else [None]
                either = len(nexts) > 1
                for vowel_next in nexts:
                    column = 0 if n == 0 else 1 if vowel_next else 2
                    digits = reading[column]
                    if digits and digits[0] == last:
                        digits = digits[1:]  # the same digit as the group before ended with: written once
                    written = reading[column]
                    grown.add(((code + digits)[:LENGTH], written[-1] if written else "",
                               vowel_next if either else None))
        branches = grown
    return sorted({code.ljust(LENGTH, "0") for code, _, _ in branches})
