"""Page text in the catalogue database, and the look-ups the search services make.

Words are normalised in Python at import (case folded, accents removed), so `Levy` and `lévy`
are the same term on SQLite and PostgreSQL alike, and exact and prefix matches are range scans
of one index per document. Every look-up takes the pages the requester may not see (or, when
the document itself is out of reach, the only pages they may see): hidden text never leaves SQL.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from ..manifests.catalogue import Base, Catalogue, Collection, Document, Image

# SQLite makes only INTEGER PRIMARY KEY an alias of the rowid (autoincrement)
ENTRY_ID = BigInteger().with_variant(Integer(), "sqlite")
# byte order, so that a prefix is a range (PostgreSQL's default collation is not)
TERM_TYPE = String(200).with_variant(String(200, collation="C"), "postgresql")
TOP = "\U0010ffff"  # above every character: [p, p + TOP) holds every term starting with p
_WORD = re.compile(r"\w+")
_FOLD = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})
SCAN_LIMIT = 5000  # term rows an autocomplete reads at most


def normalise(text: str) -> str:
    """Case folded, without accents: what a researcher types and what a 1940s typist wrote meet here."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    return [t[:200] for t in _WORD.findall(normalise(text))]


class TextEntry(Base):
    __tablename__ = "text_entries"
    __table_args__ = (Index("ix_text_entries_image", "image_pk", "source"),
                      Index("ix_text_entries_document", "document_pk", "id"))

    id: Mapped[int] = mapped_column(ENTRY_ID, primary_key=True, autoincrement=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.pk", ondelete="CASCADE"))
    document_pk: Mapped[int] = mapped_column(ForeignKey("documents.pk", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(10))  # alto, csv: a re-import replaces its own source only
    kind: Mapped[str] = mapped_column(String(20))  # word, line, entry, or the CSV's kind
    text: Mapped[str] = mapped_column(Text)
    line: Mapped[str | None] = mapped_column(Text, default=None)  # the line a word stands in
    start: Mapped[int | None] = mapped_column(Integer, default=None)  # where the word starts in it
    x: Mapped[int | None] = mapped_column(Integer, default=None)
    y: Mapped[int | None] = mapped_column(Integer, default=None)
    w: Mapped[int | None] = mapped_column(Integer, default=None)
    h: Mapped[int | None] = mapped_column(Integer, default=None)


class TextTerm(Base):
    __tablename__ = "text_terms"
    __table_args__ = (Index("ix_text_terms_document_norm", "document_pk", "norm", "entry_id"),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("text_entries.id", ondelete="CASCADE"), primary_key=True)
    ord: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_pk: Mapped[int] = mapped_column(Integer)
    norm: Mapped[str] = mapped_column(TERM_TYPE)


@dataclass(frozen=True)
class Entry:
    """One region of text to import for a page; no box: the whole page."""

    text: str
    kind: str
    box: tuple[int, int, int, int] | None = None
    line: str | None = None
    start: int | None = None


@dataclass(frozen=True)
class Hit:
    id: int
    page: str
    text: str
    kind: str
    box: tuple[int, int, int, int]
    before: str
    after: str


@dataclass(frozen=True)
class Pages:
    """The pages of one document a requester may read: all but `denied`, or (everything=False) only `allowed`."""

    everything: bool
    denied: tuple[int, ...] = ()
    allowed: tuple[int, ...] = ()

    @property
    def none(self) -> bool:
        return not self.everything and not self.allowed

    def clause(self, column: ColumnElement[int]) -> ColumnElement[bool] | None:
        if self.everything:
            return column.not_in(self.denied) if self.denied else None
        return column.in_(self.allowed)


@dataclass(frozen=True)
class Target:
    """A document as the search sees it: its key, and the tiers that decide who reads which page."""

    document_pk: int
    collection_tier: str
    document_tier: str | None
    page_tiers: dict[int, str]  # image pk -> tier, only the pages that set their own


class TextStore:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    # -- import ---------------------------------------------------------------------

    def page_keys(self, session: Session, collection: str, document: str, page: str) -> tuple[int, int] | None:
        """(document pk, image pk) of a catalogued page, None when it does not exist."""
        row = session.execute(
            select(Document.pk, Image.pk).join(Image, Image.document_pk == Document.pk)
            .where(Document.collection_id == collection, Document.ident == document, Image.ident == page)
        ).first()
        return (row[0], row[1]) if row else None

    def replace_page(self, session: Session, document_pk: int, image_pk: int, source: str,
                     entries: Sequence[Entry]) -> None:
        """The page's text from `source` becomes `entries` (a re-import replaces, never adds)."""
        old = select(TextEntry.id).where(TextEntry.image_pk == image_pk, TextEntry.source == source)
        session.execute(delete(TextTerm).where(TextTerm.entry_id.in_(old)))
        session.execute(delete(TextEntry).where(TextEntry.image_pk == image_pk, TextEntry.source == source))
        for entry in entries:
            box = entry.box or (None, None, None, None)
            entry_id = session.execute(insert(TextEntry).values(
                image_pk=image_pk, document_pk=document_pk, source=source, kind=entry.kind, text=entry.text,
                line=entry.line, start=entry.start, x=box[0], y=box[1], w=box[2], h=box[3],
            ).returning(TextEntry.id)).scalar_one()
            words = terms(entry.text)
            if words:
                session.execute(insert(TextTerm), [
                    {"entry_id": entry_id, "ord": n, "document_pk": document_pk, "norm": word}
                    for n, word in enumerate(words)])

    # -- look-ups -------------------------------------------------------------------

    def target(self, collection: str, document: str) -> Target | None:
        """The document's tiers, when it has text (None: no such document, or no text)."""
        with self.catalogue.sessions() as session:
            row = session.execute(
                select(Document.pk, Collection.tier, Document.tier).join(Collection)
                .where(Document.collection_id == collection, Document.ident == document)).first()
            if row is None or not self._has_text(session, row[0]):
                return None
            pages = {pk: tier for pk, tier in session.execute(select(Image.pk, Image.tier).where(
                Image.document_pk == row[0], Image.tier.is_not(None)))}
        return Target(row[0], row[1], row[2], pages)

    @staticmethod
    def _has_text(session: Session, document_pk: int) -> bool:
        return session.execute(select(TextEntry.id).where(TextEntry.document_pk == document_pk).limit(1)).first() \
            is not None

    def has_text(self, document_pk: int) -> bool:
        with self.catalogue.sessions() as session:
            return self._has_text(session, document_pk)

    def _matching(self, document_pk: int, words: Iterable[str], pages: Pages) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [TextEntry.document_pk == document_pk]
        for word in words:
            where.append(TextEntry.id.in_(select(TextTerm.entry_id).where(
                TextTerm.document_pk == document_pk, TextTerm.norm == word)))
        clause = pages.clause(TextEntry.image_pk)
        if clause is not None:
            where.append(clause)
        return where

    def search(self, document_pk: int, query: str, pages: Pages, after: int = 0,
               limit: int = 100) -> tuple[list[Hit], int, bool]:
        """Entries holding every word of `query`, in import order after entry `after`:
        (hits, total, whether more follow)."""
        words = terms(query)
        if not words or pages.none:
            return [], 0, False
        where = self._matching(document_pk, words, pages)
        with self.catalogue.sessions() as session:
            rows = session.execute(
                select(TextEntry.id, Image.ident, TextEntry.text, TextEntry.kind, TextEntry.line, TextEntry.start,
                       TextEntry.x, TextEntry.y, TextEntry.w, TextEntry.h, Image.width, Image.height)
                .join(Image, Image.pk == TextEntry.image_pk)
                .where(*where, TextEntry.id > after).order_by(TextEntry.id).limit(limit + 1)).all()
            # bounded by the matches in one document, through the (document, term) index
            total = session.execute(select(func.count()).select_from(TextEntry).where(*where)).scalar_one()
        hits = [_hit(row) for row in rows[:limit]]
        return hits, total, len(rows) > limit

    def complete(self, document_pk: int, prefix: str, pages: Pages, limit: int = 10) -> list[tuple[str, int]]:
        """Terms starting with `prefix` (normalised), with how many entries hold each, at most `limit`."""
        words = terms(prefix)
        if not words or pages.none:
            return []
        start = words[-1]
        where = [TextTerm.document_pk == document_pk, TextTerm.norm >= start, TextTerm.norm < start + TOP]
        clause = pages.clause(TextEntry.image_pk)
        stmt = select(TextTerm.norm).where(*where)
        if clause is not None:
            stmt = stmt.join(TextEntry, TextEntry.id == TextTerm.entry_id).where(clause)
        counts: dict[str, int] = {}
        with self.catalogue.sessions() as session:
            # the first SCAN_LIMIT rows in term order: a short prefix reads no more than that
            for (norm,) in session.execute(stmt.order_by(TextTerm.norm).limit(SCAN_LIMIT)):
                if norm not in counts and len(counts) == limit:
                    break
                counts[norm] = counts.get(norm, 0) + 1
        return list(counts.items())


def _hit(row: Sequence[object]) -> Hit:
    entry_id, page, text, kind, line, start, x, y, w, h, width, height = row
    box = (x, y, w, h) if x is not None else (0, 0, width, height)
    before = after = ""
    if isinstance(line, str) and isinstance(start, int):
        before, after = line[:start].rstrip(), line[start + len(str(text)):].lstrip()
    return Hit(int(entry_id), str(page), str(text), str(kind), box, before, after)  # type: ignore[arg-type]


__all__ = ["Entry", "Hit", "Pages", "Target", "TextStore", "normalise", "terms"]
