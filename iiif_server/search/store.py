"""Page text in the catalogue database, and the look-ups the search services make.

Words are normalised in Python at import (case folded, accents removed), so `Levy` and `lévy`
are the same term on SQLite and PostgreSQL alike, and exact and prefix matches are range scans
of one index per document. Spelling variants go through the vocabulary of distinct words: its
Daitch–Mokotoff codes (text_codes) and a trigram index (pg_trgm; SQLite FTS5's trigram tokenizer)
give at most a few dozen similar words, which are then looked up like exact ones.

A search answers in ranked tiers, each in import order: the word as typed, the word with other case
or accents, words starting with it, words coded alike by Daitch–Mokotoff, words with similar trigrams.
A query of several words finds them as consecutive ALTO words (a phrase), then entries holding all
of them. Pages are cut by keyset on (tier, entry id). Every look-up takes the pages the requester may
not see (or, when the document itself is out of reach, the only pages they may see): hidden text
never leaves SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import (
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from iiif_server.db.bulk import bulk_insert, insert_ignore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image, TextCode, TextEntry, TextTerm, TextVocab
from iiif_server.search import soundex
from iiif_server.search.results import CONTEXT, Hit, Pages, Place, Target, _hit, parse_cursor
from iiif_server.words import normalise, similarity, terms

TOP = "\U0010ffff"  # above every character: [p, p + TOP) holds every term starting with p
SCAN_LIMIT = 5000  # term rows an autocomplete reads at most
FUZZY_MIN = 3  # shorter words get no prefix or fuzzy tiers (every word would match)
FUZZY_TERMS = 50  # similar words a fuzzy tier looks up at most
FUZZY_MAX = 32  # longer words get no typo tier: no name is that long, and the cost grows with the length
FUZZY_GRAMS = 12  # trigrams of a word the typo look-up matches on at most (spread over the word)
TRIGRAM_MIN = 0.4  # pg_trgm similarity below which a word is not a typo of another
PHRASE_MAX = 8  # words of a phrase query
LEGACY_CSV = "csv"  # the source of every CSV before each file became a source of its own
CHUNK = 500  # values in one IN list

EXACT, FOLDED, PREFIX, SOUNDS, TYPO = range(5)  # the tiers of a one-word query
PHRASE, ALL_WORDS = range(2)  # the tiers of a query of several words
_RAW = re.compile(r"\w+")












@dataclass(frozen=True)
class Entry:
    """One region of text to import for a page; no box: the whole page."""

    text: str
    kind: str
    box: tuple[int, int, int, int] | None = None
    line: str | None = None
    start: int | None = None


@dataclass(frozen=True)
class PageText:
    """A page's entries from one source, ready to write."""

    collection: str
    document_pk: int
    image_pk: int
    source: str
    entries: Sequence[Entry]












def _chunks(values: Sequence[object], size: int = CHUNK) -> Iterable[Sequence[object]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


ENTRY_COLUMNS = ("image_pk", "document_pk", "source", "kind", "text", "line", "start", "pos", "x", "y", "w", "h")


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
        for chunk in _chunks(sorted(pages)):
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
            for chunk in _chunks(image_pks):
                old = select(TextEntry.id).where(TextEntry.image_pk.in_(chunk), TextEntry.source.in_(replaced))
                conn.execute(delete(TextTerm).where(TextTerm.entry_id.in_(old)))
                conn.execute(delete(TextEntry).where(TextEntry.image_pk.in_(chunk), TextEntry.source.in_(replaced)))
        rows: list[tuple[object, ...]] = []
        for page in pages:
            for n, entry in enumerate(page.entries):
                box = entry.box or (None, None, None, None)
                # an ALTO word's line is its neighbours (see _neighbours): not stored with each word
                line = None if entry.start is not None else entry.line
                rows.append((page.image_pk, page.document_pk, page.source, entry.kind, entry.text, line,
                             entry.start, n, *box))
        if not rows:
            return 0
        ids = self._new_ids(conn, len(rows))
        term_rows: list[tuple[object, ...]] = []
        held: set[tuple[str, str, int]] = set()
        n = 0
        for page in pages:
            for entry in page.entries:
                for k, word in enumerate(_terms(entry.text)):
                    term_rows.append((ids[n], k, page.document_pk, word))
                    held.add((word, page.collection, page.document_pk))
                n += 1
        bulk_insert(conn, "text_entries", ("id", *ENTRY_COLUMNS), [(i, *r) for i, r in zip(ids, rows, strict=True)])
        bulk_insert(conn, "text_terms", ("entry_id", "ord", "document_pk", "norm"), term_rows)
        self._add_words(conn, {word for word, _, _ in held})
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
    def _add_words(conn: Connection, words: set[str]) -> None:
        """New words into the vocabulary, with their Daitch–Mokotoff codes."""
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
            for chunk in _chunks(ordered):
                known.update(conn.execute(select(TextVocab.norm).where(TextVocab.norm.in_(chunk))).scalars())
            new = [w for w in ordered if w not in known]
            insert_ignore(conn, TextVocab, [{"norm": w} for w in new])
        bulk_insert(conn, "text_codes", ("code", "norm"), [(c, w) for w in new for c in soundex.codes(w)], ignore=True)

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

    def similar(self, session: Session, word: str) -> tuple[list[str], list[str]]:
        """Words of the vocabulary spelt differently from `word` (and not starting with it): those with a
        Daitch–Mokotoff code in common, and those with similar trigrams, at most FUZZY_TERMS each."""
        if len(word) < FUZZY_MIN:
            return [], []

        def other(w: str) -> bool:
            return not w.startswith(word)

        codes = soundex.codes(word)
        sounds: list[str] = []
        if codes:
            sounds = [w for w in session.execute(select(TextCode.norm).where(TextCode.code.in_(codes))
                                                 .distinct().limit(FUZZY_TERMS * 4)).scalars() if other(w)]
            sounds = sorted(sounds, key=lambda w: -similarity(word, w))[:FUZZY_TERMS]
        if len(word) > FUZZY_MAX:
            return sounds, []
        if session.get_bind().dialect.name == "postgresql":
            score = func.similarity(TextVocab.norm, word)
            found = session.execute(select(TextVocab.norm, score).where(TextVocab.norm.op("%")(word))
                                    .order_by(score.desc()).limit(FUZZY_TERMS * 2)).all()
            typos = [w for w, s in found if s >= TRIGRAM_MIN and other(w)]
        else:
            grams = sorted({word[i:i + 3] for i in range(len(word) - 2)})
            grams = grams[:: max(1, -(-len(grams) // FUZZY_GRAMS))]
            match = " OR ".join(f'"{g}"' for g in grams)
            found = session.execute(text("SELECT norm FROM text_vocab_trgm WHERE text_vocab_trgm MATCH :m "
                                         "ORDER BY rank LIMIT :n"), {"m": match, "n": FUZZY_TERMS * 20}).scalars()
            scored = sorted(((similarity(word, w), w) for w in found if other(w)), reverse=True)
            typos = [w for s, w in scored if s >= TRIGRAM_MIN]
        heard = set(sounds)
        return sounds, [w for w in typos if w not in heard][:FUZZY_TERMS]

    def _having(self, document_pk: int, column: ColumnElement[int], *norm: ColumnElement[bool]) -> ColumnElement[bool]:
        return column.in_(select(TextTerm.entry_id).where(TextTerm.document_pk == document_pk, *norm))

    def _tiers(self, session: Session, document_pk: int, query: str, pages: Pages,
               fuzzy: tuple[list[str], list[str]] | None = None) -> list[tuple[Select, ...]]:
        """Per tier, the statement of its hits' entry ids (the first column orders and pages)."""
        words = terms(query)[:PHRASE_MAX]
        page_clause = pages.clause(TextEntry.image_pk)
        base = [TextEntry.document_pk == document_pk] + ([page_clause] if page_clause is not None else [])
        if len(words) > 1:
            return [(self._phrase(document_pk, words, pages),),
                    (select(TextEntry.id).where(*base, *(self._having(document_pk, TextEntry.id, TextTerm.norm == w)
                                                         for w in words)),)]
        word = words[0]
        raw = (_RAW.findall(query) or [word])[0]
        exact = (func.strpos(TextEntry.text, raw) if session.get_bind().dialect.name == "postgresql"
                 else func.instr(TextEntry.text, raw)) > 0
        has_word = self._having(document_pk, TextEntry.id, TextTerm.norm == word)
        tiers: list[tuple[Select, ...]] = [(select(TextEntry.id).where(*base, has_word, exact),),
                                           (select(TextEntry.id).where(*base, has_word, ~exact),)]
        if len(word) < FUZZY_MIN:
            return tiers
        prefix = (TextTerm.norm >= word, TextTerm.norm < word + TOP)
        tiers.append((select(TextEntry.id).where(*base, ~has_word,
                                                 self._having(document_pk, TextEntry.id, *prefix)),))
        sounds, typos = fuzzy if fuzzy is not None else self.similar(session, word)
        seen = self._having(document_pk, TextEntry.id, *prefix)
        for similar in (sounds, typos):
            stmt = select(TextEntry.id).where(*base, ~seen, self._having(document_pk, TextEntry.id,
                                                                         TextTerm.norm.in_(similar)))
            tiers.append((stmt,) if similar else ())
            seen = seen | self._having(document_pk, TextEntry.id, TextTerm.norm.in_(similar)) if similar else seen
        return tiers

    def _phrase(self, document_pk: int, words: list[str], pages: Pages) -> Select:
        """Consecutive entries of one page and source holding the words in order: (first id, ..., last id)."""
        es = [aliased(TextEntry) for _ in words]
        first = es[0]
        stmt = select(*(e.id for e in es)).select_from(first)
        for k, e in enumerate(es[1:], 1):
            stmt = stmt.join(e, and_(e.image_pk == first.image_pk, e.source == first.source, e.pos == first.pos + k))
        holds = (self._having(document_pk, e.id, TextTerm.norm == w) for e, w in zip(es, words, strict=True))
        stmt = stmt.where(first.document_pk == document_pk, first.pos.is_not(None), *holds)
        clause = pages.clause(first.image_pk)
        return stmt.where(clause) if clause is not None else stmt

    def search(self, document_pk: int, query: str, pages: Pages, after: str = "", limit: int = 100,
               count: bool = True, fuzzy: tuple[list[str], list[str]] | None = None) -> tuple[list[Hit], int, bool]:
        """Hits of `query` in ranked tiers after the cursor `after` (`tier.id`): (hits, total, whether
        more follow). The total is bounded by the matches in one document, through the (document, term) index.
        `fuzzy`: the query word's similar words when already known (a search across documents)."""
        if not terms(query) or pages.none:
            return [], 0, False
        after_tier, after_id = parse_cursor(after)
        found: list[tuple[int, tuple[int, ...]]] = []  # (tier, entry ids of one hit)
        total = 0
        with self.catalogue.sessions() as session:
            tiers = self._tiers(session, document_pk, query, pages, fuzzy)
            for tier, parts in enumerate(tiers):
                if not parts:
                    continue
                stmt = parts[0]
                key = stmt.selected_columns[0]
                if count:
                    total += session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
                if tier < after_tier or len(found) > limit:
                    continue
                page = stmt.where(key > after_id if tier == after_tier else true()).order_by(key)
                found += [(tier, tuple(row)) for row in session.execute(page.limit(limit + 1 - len(found)))]
            rows = self._entries(session, {i for _, ids in found[:limit] for i in ids})
            runs = [[rows[i] for i in ids] for _, ids in found[:limit]]
            around = self._neighbours(session, runs)
        hits = [_hit(tier, run, around) for (tier, _), run in zip(found[:limit], runs, strict=True)]
        return hits, total, len(found) > limit

    @staticmethod
    def _neighbours(session: Session, runs: list[list[Sequence[object]]]) -> dict[Place, tuple[str, int]]:
        """The words around ALTO hits, (page, source, pos) -> (text, start): a word's line is not stored with
        it (ten copies of each line would be a quarter of the index), its neighbours give the context."""
        wanted = [(run[0][12], run[0][13], run[0][14], run[-1][14]) for run in runs
                  if run[0][4] is None and run[0][5] is not None and run[0][14] is not None]
        found: dict[Place, tuple[str, int]] = {}
        for chunk in _chunks(wanted, 50):
            ranges = [and_(TextEntry.image_pk == image, TextEntry.source == source,
                           TextEntry.pos.between(first - CONTEXT, last + CONTEXT))
                      for image, source, first, last in chunk]  # type: ignore[misc]
            for image, source, pos, text_, start in session.execute(
                    select(TextEntry.image_pk, TextEntry.source, TextEntry.pos, TextEntry.text, TextEntry.start)
                    .where(or_(*ranges))):
                found[(image, source, pos)] = (text_, start if start is not None else 0)
        return found

    def hits_with(self, document_pk: int, norms: Sequence[str], pages: Pages, limit: int, tier: int) -> list[Hit]:
        """The first entries of a document holding any of the words `norms`, in one query (a search across
        documents shows a few hits of each)."""
        if not norms or pages.none:
            return []
        clause = pages.clause(TextEntry.image_pk)
        stmt = select(TextEntry.id).where(TextEntry.document_pk == document_pk, *([clause] if clause is not None
                                                                                 else []),
                                          self._having(document_pk, TextEntry.id, TextTerm.norm.in_(norms)))
        with self.catalogue.sessions() as session:
            ids = list(session.execute(stmt.order_by(TextEntry.id).limit(limit)).scalars())
            rows = self._entries(session, set(ids))
        return [_hit(tier, [rows[i]]) for i in ids]  # no context: collection search shows none

    def first_hits(self, document_pks: Sequence[int], norms: Sequence[str], limit: int,
                   tier: int) -> dict[int, list[Hit]]:
        """The first `limit` entries holding any of `norms` in each of several documents whose every page
        the requester may read, in one query (a window over each document's matches)."""
        if not norms or not document_pks:
            return {}
        terms_ = select(TextTerm.entry_id).where(TextTerm.document_pk.in_(document_pks), TextTerm.norm.in_(norms))
        ranked = (select(TextEntry.id, TextEntry.document_pk,
                         func.row_number().over(partition_by=TextEntry.document_pk, order_by=TextEntry.id).label("n"))
                  .where(TextEntry.document_pk.in_(document_pks), TextEntry.id.in_(terms_)).subquery())
        with self.catalogue.sessions() as session:
            found = session.execute(select(ranked.c.id, ranked.c.document_pk).where(ranked.c.n <= limit)
                                    .order_by(ranked.c.id)).all()
            rows = self._entries(session, {i for i, _ in found})
        hits: dict[int, list[Hit]] = {}
        for entry_id, document_pk in found:
            hits.setdefault(document_pk, []).append(_hit(tier, [rows[entry_id]]))
        return hits

    @staticmethod
    def _entries(session: Session, ids: set[int]) -> dict[int, Sequence[object]]:
        rows: dict[int, Sequence[object]] = {}
        for chunk in _chunks(sorted(ids)):
            for row in session.execute(
                    select(TextEntry.id, Image.ident, TextEntry.text, TextEntry.kind, TextEntry.line, TextEntry.start,
                           TextEntry.x, TextEntry.y, TextEntry.w, TextEntry.h, Image.width, Image.height,
                           TextEntry.image_pk, TextEntry.source, TextEntry.pos)
                    .join(Image, Image.pk == TextEntry.image_pk).where(TextEntry.id.in_(chunk))):
                rows[int(row[0])] = row
        return rows

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








__all__ = ["Entry", "PageText", "TextStore", "normalise", "terms"]
