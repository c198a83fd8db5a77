"""Page text in the catalogue database, and the look-ups the search services make.

Words are normalised in Python at import (case folded, accents removed), so `Levy` and `lévy` are the
same term on SQLite and PostgreSQL alike, and exact and prefix matches are range scans of one index per
document. Spelling variants go through the vocabulary of distinct words: its Daitch–Mokotoff codes
(text_codes) and the index of its deletions (text_keys: a word one letter off another shares a key with
it) and of its reading (text_keys too: the word with registers' spellings and OCR's misreadings set aside), as
exact sets.

The unit of a name is an entry: a CSV row, or an ALTO line (the words of a line share a `unit`). A query
matches each of its words through the tiers (matching.py, names.py), in any order within a unit, and ranks
hits by how many words match how closely; a phrase typed in order may run on over a line break within
one ALTO TextBlock. Pages are cut by keyset on (rank, first entry id). Every look-up takes the pages the
requester may read: hidden text never leaves SQL, and never changes what a requester sees.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import (
    and_,
    delete,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from iiif_server.db.bulk import bulk_insert, chunks, insert_ignore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image, TextEntry, TextTerm, TextVocab
from iiif_server.search import names, soundex
from iiif_server.search.matching import PHRASE_MAX, TOP, Found, Matcher, scope_of
from iiif_server.search.names import EXACT, FOLDED, PREFIX, SOUNDS, TYPO
from iiif_server.search.results import CONTEXT, Hit, Pages, Place, Target, _hit, parse_cursor
from iiif_server.words import normalise, terms

SCAN_LIMIT = 5000  # term rows an autocomplete reads at most
LEGACY_CSV = "csv"  # the source of every CSV before each file became a source of its own
_DIACRITICS = frozenset("ąęţțĄĘŢȚ")  # letters the Daitch–Mokotoff chart codes apart from their base letter


@dataclass(frozen=True)
class Entry:
    """One region of text to import for a page; no box: the whole page."""

    text: str
    kind: str
    box: tuple[int, int, int, int] | None = None
    line: str | None = None
    start: int | None = None  # an ALTO word's place in its line (0: the line's first word)
    block: int | None = None  # an ALTO word's TextBlock on the page


@dataclass(frozen=True)
class PageText:
    """A page's entries from one source, ready to write."""

    collection: str
    document_pk: int
    image_pk: int
    source: str
    entries: Sequence[Entry]


ENTRY_COLUMNS = ("image_pk", "document_pk", "source", "kind", "text", "line", "start", "pos", "x", "y", "w", "h",
                 "unit", "block")


@lru_cache(maxsize=65536)
def _terms(text: str) -> tuple[str, ...]:
    """terms() of an entry's text, remembered: OCR words repeat (a few MB at most)."""
    return tuple(terms(text))


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

    def document_pages(self, session: Session, collection: str,
                       document: str) -> tuple[int, dict[str, tuple[int, int, int]]] | None:
        """(document pk, {page ident: (image pk, width, height)}) of a catalogued document, None when it does
        not exist."""
        pk = session.execute(select(Document.pk).where(Document.collection_id == collection,
                                                       Document.ident == document)).scalar()
        if pk is None:
            return None
        rows = session.execute(select(Image.ident, Image.pk, Image.width, Image.height).where(Image.document_pk == pk))
        return pk, {ident: (image_pk, w, h) for ident, image_pk, w, h in rows}

    def drop_source(self, session: Session, collection: str, source: str, keep: set[int]) -> int:
        """Remove what `source` gave the collection's pages other than `keep` (a source imported again
        no longer names them); the number of pages it leaves."""
        documents = select(Document.pk).where(Document.collection_id == collection)
        conn = session.connection()
        pages = set(conn.execute(select(TextEntry.image_pk).distinct().where(
            TextEntry.source == source, TextEntry.document_pk.in_(documents))).scalars()) - keep
        for chunk in chunks(sorted(pages)):
            old = select(TextEntry.id).where(TextEntry.image_pk.in_(chunk), TextEntry.source == source)
            conn.execute(delete(TextTerm).where(TextTerm.entry_id.in_(old)))
            conn.execute(delete(TextEntry).where(TextEntry.image_pk.in_(chunk), TextEntry.source == source))
        return len(pages)

    def replace_page(self, session: Session, document_pk: int, image_pk: int, source: str,
                     entries: Sequence[Entry], collection: str = "") -> None:
        """The page's text from `source` becomes `entries` (a re-import replaces, never adds)."""
        if not collection:
            collection = session.execute(select(Document.collection_id).where(Document.pk == document_pk)).scalar_one()
        self.write(session, [PageText(collection, document_pk, image_pk, source, entries)])

    def write(self, session: Session, pages: Sequence[PageText]) -> int:
        """Replace each page's text from its source with its entries, in batched statements; the entries written."""
        conn = session.connection()
        by_source: dict[str, list[int]] = {}
        for page in pages:
            by_source.setdefault(page.source, []).append(page.image_pk)
        for source, image_pks in by_source.items():
            # entries of an unnamed CSV (imported before each file was a source) give way to any CSV's
            replaced = [source, LEGACY_CSV] if source.startswith("csv:") else [source]
            for chunk in chunks(image_pks):
                old = select(TextEntry.id).where(TextEntry.image_pk.in_(chunk), TextEntry.source.in_(replaced))
                conn.execute(delete(TextTerm).where(TextTerm.entry_id.in_(old)))
                conn.execute(delete(TextEntry).where(TextEntry.image_pk.in_(chunk), TextEntry.source.in_(replaced)))
        count = sum(len(page.entries) for page in pages)
        if not count:
            return 0
        ids = self._new_ids(conn, count)
        rows: list[tuple[object, ...]] = []
        term_rows: list[tuple[object, ...]] = []
        held: set[tuple[str, str, int]] = set()
        spelt: dict[str, set[str]] = {}  # words written with a letter the chart codes apart (Dąbrowski)
        n = 0
        for page in pages:
            unit = None
            for k, entry in enumerate(page.entries):
                box = entry.box or (None, None, None, None)
                entry_id = ids[n]
                if entry.start is not None:  # an ALTO word: its line is its unit
                    unit = entry_id if entry.start == 0 or unit is None else unit
                    # its line is its neighbours (see _neighbours): not stored with each word
                    rows.append((entry_id, page.image_pk, page.document_pk, page.source, entry.kind, entry.text, None,
                                 entry.start, k, *box, unit, entry.block))
                else:
                    rows.append((entry_id, page.image_pk, page.document_pk, page.source, entry.kind, entry.text,
                                 entry.line, None, k, *box, None, None))
                for o, word in enumerate(_terms(entry.text)):
                    term_rows.append((entry_id, o, page.document_pk, word))
                    held.add((word, page.collection, page.document_pk))
                if _DIACRITICS.intersection(entry.text):
                    for raw in names.tokens(entry.text):
                        if _DIACRITICS.intersection(raw):
                            spelt.setdefault(normalise(raw)[:200], set()).add(raw)
                n += 1
        bulk_insert(conn, "text_entries", ("id", *ENTRY_COLUMNS), rows)
        bulk_insert(conn, "text_terms", ("entry_id", "ord", "document_pk", "norm"), term_rows)
        self._add_words(conn, {word for word, _, _ in held}, spelt)
        bulk_insert(conn, "text_doc_terms", ("norm", "collection_id", "document_pk"), sorted(held), ignore=True)
        return len(rows)

    @staticmethod
    def _new_ids(conn: Connection, n: int) -> list[int]:
        """Ids for n new entries. PostgreSQL: taken from the sequence; SQLite: above the largest, which no
        other writer can take meanwhile (the transaction holds the database's write lock since its DELETE)."""
        if conn.dialect.name == "postgresql":
            return list(conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('text_entries', 'id')) FROM generate_series(1, %s)",
                (n,)).scalars())
        start = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM text_entries").scalar_one()
        return list(range(start + 1, start + n + 1))

    @staticmethod
    def _add_words(conn: Connection, words: set[str], spelt: dict[str, set[str]] | None = None) -> None:
        """New words into the vocabulary, with their Daitch–Mokotoff codes, their deletions and their reading
        (text_keys); and the codes of spellings with Ą, Ę or Ţ, which the chart codes apart from A, E and T."""
        ordered = sorted(words)
        if conn.dialect.name == "postgresql":
            # the unique index answers which words are new, whatever the planner thinks of the table
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute('CREATE TEMPORARY TABLE IF NOT EXISTS _new_words (norm varchar(200) COLLATE "C") '
                           "ON COMMIT DELETE ROWS")
            with cursor.copy("COPY _new_words (norm) FROM STDIN") as copy:
                for word in ordered:
                    copy.write_row((word,))
            new = [row[0] for row in cursor.execute(
                "INSERT INTO text_vocab (norm) SELECT norm FROM _new_words ORDER BY norm ON CONFLICT DO NOTHING "
                "RETURNING norm").fetchall()]
            cursor.execute("DELETE FROM _new_words")
        else:
            known: set[str] = set()
            for chunk in chunks(ordered):
                known.update(conn.execute(select(TextVocab.norm).where(TextVocab.norm.in_(chunk))).scalars())
            new = [w for w in ordered if w not in known]
            insert_ignore(conn, TextVocab, [{"norm": w} for w in new])
        bulk_insert(conn, "text_codes", ("code", "norm"), [(c, w) for w in new for c in sorted(names.codes(w))],
                    ignore=True)
        bulk_insert(conn, "text_keys", ("key", "norm"),
                    sorted({(k, w) for w in new if names.TYPO_MIN <= len(w) <= names.TYPO_MAX
                            for k in names.deletions(w)}
                           | {(names.READING + names.reading(w), w) for w in new if len(w) >= names.FUZZY_MIN}),
                    ignore=True)
        extra = sorted({(c, w) for w, raws in (spelt or {}).items() for raw in raws for c in soundex.codes(raw)})
        bulk_insert(conn, "text_codes", ("code", "norm"), extra, ignore=True)

    # -- look-ups -------------------------------------------------------------------

    def target(self, collection: str, document: str) -> Target | None:
        """The document's tiers, when it has text (None: no such document, or no text)."""
        with self.catalogue.sessions() as session:
            row = session.execute(
                select(Document.pk, Collection.tier, Document.tier).join(Collection)
                .where(Document.collection_id == collection, Document.ident == document)).first()
            if row is None or not self._has_text(session, row[0]):
                return None
            return self.target_of(session, row[0], row[1], row[2])

    @staticmethod
    def target_of(session: Session, document_pk: int, collection_tier: str, document_tier: str | None) -> Target:
        pages = {pk: tier for pk, tier in session.execute(select(Image.pk, Image.tier).where(
            Image.document_pk == document_pk, Image.tier.is_not(None)))}
        return Target(document_pk, collection_tier, document_tier, pages)

    @staticmethod
    def _has_text(session: Session, document_pk: int) -> bool:
        return session.execute(select(TextEntry.id).where(TextEntry.document_pk == document_pk).limit(1)).first() \
            is not None

    def has_text(self, document_pk: int) -> bool:
        with self.catalogue.sessions() as session:
            return self._has_text(session, document_pk)

    def search(self, document_pk: int, query: str, pages: Pages, after: str = "", limit: int = 100,
               count: bool = True) -> tuple[list[Hit], int, bool]:
        """Hits of `query` in the document, ranked, after the cursor `after` (`rank.id`): (hits, total, whether
        more follow). Every hit of the document is ranked (the look-ups are bounded per word), so the total is
        exact and the order does not depend on the page asked for."""
        if not terms(query) or pages.none:
            return [], 0, False
        after_key = parse_cursor(after) if after else None
        with self.catalogue.sessions() as session:
            found = Matcher(session, query).find(scope_of({document_pk: pages})).get(document_pk, [])
            later = [f for f in found if after_key is None or f.key > after_key]
            hits = self.read(session, later[:limit])
        return hits, len(found), len(later) > limit

    def read(self, session: Session, found: Sequence[Found]) -> list[Hit]:
        """The hits as shown: their entries' text, boxes and context."""
        rows = self._entries(session, {i for f in found for i in f.entries})
        runs = [[rows[i] for i in f.entries if i in rows] for f in found]
        around = self._neighbours(session, runs)
        return [_hit(f.tier, run, around, f.rank, f.matched) for f, run in zip(found, runs, strict=True)]

    @staticmethod
    def _neighbours(session: Session, runs: list[list[Sequence[object]]]) -> dict[Place, tuple[str, int]]:
        """The words around ALTO hits, (page, source, pos) -> (text, start): a word's line is not stored with
        it (ten copies of each line would be a quarter of the index), its neighbours give the context."""
        wanted = [(run[0][12], run[0][13], run[0][14], run[-1][14]) for run in runs
                  if run[0][4] is None and run[0][5] is not None and run[0][14] is not None]
        found: dict[Place, tuple[str, int]] = {}
        for chunk in chunks(wanted, 50):
            ranges = [and_(TextEntry.image_pk == image, TextEntry.source == source,
                           TextEntry.pos.between(first - CONTEXT, last + CONTEXT))
                      for image, source, first, last in chunk]  # type: ignore[misc]
            for image, source, pos, text_, start in session.execute(
                    select(TextEntry.image_pk, TextEntry.source, TextEntry.pos, TextEntry.text, TextEntry.start)
                    .where(or_(*ranges))):
                found[(image, source, pos)] = (text_, start if start is not None else 0)
        return found

    @staticmethod
    def _entries(session: Session, ids: set[int]) -> dict[int, Sequence[object]]:
        rows: dict[int, Sequence[object]] = {}
        for chunk in chunks(sorted(ids)):
            for row in session.execute(
                    select(TextEntry.id, Image.ident, TextEntry.text, TextEntry.kind, TextEntry.line, TextEntry.start,
                           TextEntry.x, TextEntry.y, TextEntry.w, TextEntry.h, Image.width, Image.height,
                           TextEntry.image_pk, TextEntry.source, TextEntry.pos)
                    .join(Image, Image.pk == TextEntry.image_pk).where(TextEntry.id.in_(chunk))):
                rows[int(row[0])] = row
        return rows

    def complete(self, document_pk: int, prefix: str, pages: Pages, limit: int = 10,
                 least: int = 1) -> list[tuple[str, int]]:
        """Completions of `prefix` as the document spells them (Łódź for lodz), with how many entries hold each,
        at most `limit`, in alphabetical order of their folded form: the last word completed, the words before it
        as they stand with it in one entry or line (`abram gol` -> `Abram Goldberg`). `least`: the fewest entries
        a completion must have."""
        words = names.query_words(prefix, PHRASE_MAX)
        if not words or pages.none:
            return []
        start = words[-1].norm
        clause = pages.clause(TextEntry.image_pk)
        base = [TextTerm.document_pk == document_pk, *([clause] if clause is not None else [])]
        columns = (TextTerm.norm, TextTerm.entry_id, TextTerm.ord, TextEntry.unit, TextEntry.start, TextEntry.text)
        with self.catalogue.sessions() as session:
            def rows(*norm: ColumnElement[bool], order: bool = False) -> list[Sequence[object]]:
                stmt = (select(*columns).select_from(TextTerm).join(TextEntry, TextEntry.id == TextTerm.entry_id)
                        .where(*base, *norm))
                if order:
                    stmt = stmt.order_by(TextTerm.norm)
                return list(session.execute(stmt.limit(SCAN_LIMIT)))

            # the first SCAN_LIMIT rows in term order: a short prefix reads no more than that
            last = rows(TextTerm.norm >= start, TextTerm.norm < start + TOP, order=True)
            before: list[dict[tuple[str, int], str]] = []  # per earlier word: unit -> its spelling there
            for word in words[:-1]:
                spellings: dict[tuple[str, int], str] = {}
                for _norm, entry_id, ord_, unit, word_start, text_ in rows(TextTerm.norm == word.norm):
                    spellings.setdefault(_unit(entry_id, unit, word_start), _spelling(str(text_), int(ord_)))
                before.append(spellings)
        phrases: dict[str, dict[str, int]] = {}  # folded phrase -> {spelling: entries}
        order: list[str] = []
        for norm, entry_id, ord_, unit, word_start, text_ in last:
            key = _unit(entry_id, unit, word_start)
            if any(key not in spellings for spellings in before):
                continue
            spelling = " ".join([*(spellings[key] for spellings in before), _spelling(str(text_), int(ord_))])
            folded = " ".join([*(w.norm for w in words[:-1]), str(norm)])
            if folded not in phrases:
                if len(phrases) == limit * 4:
                    break
                phrases[folded] = {}
                order.append(folded)
            phrases[folded][spelling] = phrases[folded].get(spelling, 0) + 1
        found = []
        for folded in order:
            spellings = phrases[folded]
            total = sum(spellings.values())
            if total >= least:
                # the spelling most entries have; among equals, one not in capitals (a register's LÉVY is a Lévy)
                found.append((min(spellings, key=lambda s: (-spellings[s], s.isupper(), s)), total))
        return found[:limit]


def _unit(entry_id: object, unit: object, start: object) -> tuple[str, int]:
    return ("u", int(unit)) if start is not None and unit is not None else ("e", int(entry_id))  # type: ignore[call-overload]


def _spelling(text: str, ord_: int) -> str:
    """The word at place `ord_` of an entry's text as written (accents, case), without punctuation."""
    words = names.tokens(unicodedata.normalize("NFC", text))
    return words[ord_] if 0 <= ord_ < len(words) else text


__all__ = ["EXACT", "FOLDED", "PREFIX", "SOUNDS", "TYPO", "Entry", "PageText", "TextStore", "normalise", "terms"]
