"""Search across documents: a collection's (or every collection's) manifests with their hits, and the
catalogue's labels, summaries and metadata.

Both page by keyset over the index's own order, never by OFFSET, and count nothing in full. A text search
walks the documents holding every word of the query (through text_doc_terms), only among documents whose
text the requester may read, and reads the hits of a batch of documents in one plan (matching.py: the same
tiers and ranking as one document's search, never a search per document). Each request examines a bounded
number of candidates, for a bounded time: a page may come back short, with `next`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, false, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.labels import described_words
from iiif_server.db.models import Collection, Document, Image, LabelTerm, TextCode, TextDocTerm
from iiif_server.errors import RequestError
from iiif_server.search import names
from iiif_server.search.matching import PHRASE_MAX, TOP, Matcher, scope_of
from iiif_server.search.results import Hit, Pages, Target, cursor_number
from iiif_server.search.store import TextStore
from iiif_server.words import terms

DOCUMENTS_PAGE = 20  # manifests per page of a collection search
HITS_PER_DOCUMENT = 3
CANDIDATES = 50  # documents read from the index per round
EXAMINE_MAX = 200  # candidates one request looks at, at most
# and for at most this long: past it, the page is sent as it is, with `next` (a full name of common words has
# candidates in most documents and hits in few; the next page goes on from there)
EXAMINE_SECONDS = 0.15
RAREST_COUNT = 10_000  # index rows counted per word to find the rarest of a query's words
FOLDED, SIMILAR = range(2)


@dataclass(frozen=True)
class DocumentHits:
    collection: str
    document: str
    label: str
    hits: list[Hit]


@dataclass(frozen=True)
class Described:
    collection: str
    document: str | None  # None: the collection itself
    label: str
    summary: str | None


def parse_cursor(value: str) -> tuple[int, str, int] | None:
    """`tier:document pk:collection` of the last document examined; None: from the start; anything else: 400."""
    if not value:
        return None
    parts = value.split(":", 2)
    if len(parts) != 3:
        raise RequestError(f"not a cursor this server gave: {value[:40]!r}")
    return cursor_number(parts[0]), parts[2], cursor_number(parts[1])


def cursor(tier: int, collection: str, document_pk: int) -> str:
    return f"{tier}:{document_pk}:{collection}"


@dataclass(frozen=True)
class Readable:
    """Which documents a requester may read: some of their pages, or every page."""

    some: ColumnElement[bool]
    whole: ColumnElement[bool]


class Across:
    def __init__(self, store: TextStore) -> None:
        self.store = store
        self.catalogue = store.catalogue

    # -- which documents --------------------------------------------------------------

    @staticmethod
    def rarest_first(session: Session, column: Any, words: Sequence[str]) -> list[str]:
        """The words ordered by how many index rows hold them (counted up to RAREST_COUNT each): the
        search then walks the shortest list and checks the others per row."""
        if len(words) < 2:
            return list(words)
        counts = {w: session.execute(select(func.count()).select_from(
            select(column).where(column == w).limit(RAREST_COUNT).subquery())).scalar_one() for w in words}
        return sorted(words, key=lambda w: (counts[w], w))

    @staticmethod
    def _has(column: ColumnElement[str], matcher: Matcher, n: int, variants: bool) -> list[ColumnElement[bool]]:
        """The ways a text_doc_terms row holds query word n: folded (or glued), or (variants) through any tier."""
        word = matcher.words[n]
        folded = [word.norm, *word.glued]
        if not variants:
            return [column.in_(folded)]
        parts: list[ColumnElement[bool]] = [column.in_(folded + sorted(matcher.split_forms(n)))]
        if len(word.norm) >= names.FUZZY_MIN and not word.particle:
            parts.append(and_(column >= word.norm, column < word.norm + TOP))
            if matcher.fuzzy(n):
                if matcher.codes(n):
                    parts.append(column.in_(select(TextCode.norm).where(TextCode.code.in_(matcher.codes(n)))
                                            .scalar_subquery()))
                if matcher.typos(n) or matcher.misread(n):
                    parts.append(column.in_(sorted({*matcher.typos(n), *matcher.misread(n)})))
        return parts

    def _held(self, t: Any, matcher: Matcher, n: int, variants: bool) -> ColumnElement[bool]:
        """Whether the document of row `t` holds query word n: one EXISTS per way, each a seek in an index
        (an OR inside one EXISTS made SQLite read all of the document's words)."""
        checks = []
        for k in range(len(self._has(t.norm, matcher, n, variants))):
            other = aliased(TextDocTerm)
            checks.append(exists().where(other.document_pk == t.document_pk, other.collection_id == t.collection_id,
                                         self._has(other.norm, matcher, n, variants)[k]))
        return or_(*checks)

    def _holding(self, matcher: Matcher, order: list[int], variants: bool, readable: Readable) -> Select:
        """Documents holding every content word of the query (through text_doc_terms): wholly readable ones
        with every word folded, or (variants) readable ones with every word through any tier and not wholly
        readable with every word folded. text_doc_terms does not know pages, so a document read only in part
        always takes the second pass: which pass it takes never depends on words of pages the requester may
        not read."""
        t = TextDocTerm
        first, *others = order
        # the words drive the plan, readability is checked per document found (joined, SQLite walked every word
        # of every document of the collection instead)
        stmt = (select(t.collection_id, t.document_pk).distinct()
                .where(or_(*self._has(t.norm, matcher, first, variants)),
                       exists().where(Document.pk == t.document_pk, readable.some if variants else readable.whole)))
        for n in others:
            stmt = stmt.where(self._held(t, matcher, n, variants))
        if variants:
            stmt = stmt.where(~and_(exists().where(Document.pk == t.document_pk, readable.whole),
                                    *(self._held(t, matcher, n, False) for n in order)))
        return stmt

    @staticmethod
    def readable_clause(session: Session, policy: Policy, access: Access, collections: Sequence[str]) -> Readable:
        """Documents with text the requester may read in these collections (some: their tier, or their
        collection's, is within the requester's clearance, or one of their pages has a tier of its own that is),
        and those they may read whole (whole: their tier is, and no page has a tier of its own that is not)."""
        tiers = policy.tiers
        coll_tiers = {c: t for c, t in session.execute(
            select(Collection.id, Collection.tier).where(Collection.id.in_(collections)))}
        groups: dict[tuple[tuple[str, ...], bool], list[str]] = {}
        for cid in collections:
            clearance = access.clearance(tiers, cid)
            allowed = tuple(t for t in tiers.names if tiers.allows(clearance, t))
            groups.setdefault((allowed, tiers.allows(clearance, coll_tiers.get(cid))), []).append(cid)
        parts, wholes = [], []
        for (allowed, inherits), cids in groups.items():
            tier = Document.tier.in_(allowed) | (Document.tier.is_(None) if inherits else false())
            own = exists().where(Image.document_pk == Document.pk, Image.tier.in_(allowed))
            closed = exists().where(Image.document_pk == Document.pk, Image.tier.is_not(None),
                                    Image.tier.not_in(allowed))
            parts.append(and_(Document.collection_id.in_(cids), or_(tier, own)))
            wholes.append(and_(Document.collection_id.in_(cids), tier, ~closed))
        return Readable(or_(*parts) if parts else false(), or_(*wholes) if wholes else false())

    def candidates(self, session: Session, matcher: Matcher, readable: Readable,
                   after: tuple[int, str, int] | None, limit: int, order: list[int]) -> list[tuple[int, str, int]]:
        """(pass, collection, document pk) of readable documents holding the query's words (`order`: the content
        words, rarest first), after `after`, in pass then key order: first those with every word (case and
        accents folded), then those with every word through any tier."""
        found: list[tuple[int, str, int]] = []
        for tier, variants in ((FOLDED, False), (SIMILAR, True)):
            if after is not None and tier < after[0]:
                continue
            stmt = self._holding(matcher, order, variants, readable)
            key = tuple_(TextDocTerm.collection_id, TextDocTerm.document_pk)
            if after is not None and tier == after[0]:
                stmt = stmt.where(key > tuple_(after[1], after[2]))
            rows = session.execute(stmt.order_by(TextDocTerm.collection_id, TextDocTerm.document_pk)
                                   .limit(limit - len(found))).all()
            found += [(tier, c, d) for c, d in rows]
            if len(found) >= limit:
                break
        return found

    @staticmethod
    def rarest_words(session: Session, matcher: Matcher, content: list[int]) -> list[int]:
        """Query words (their indexes) ordered by how many documents hold them folded (counted up to RAREST_COUNT
        each): the walk starts from the shortest list and checks the others per document."""
        if len(content) < 2:
            return list(content)
        column = TextDocTerm.norm
        counts = {n: session.execute(select(func.count()).select_from(
            select(column).where(column == matcher.words[n].norm).limit(RAREST_COUNT).subquery())).scalar_one()
            for n in content}
        return sorted(content, key=lambda n: (counts[n], n))

    # -- a collection's manifests with their hits ---------------------------------------

    def search(self, query: str, collections: Sequence[str], policy: Policy, access: Access,
               after: tuple[int, str, int] | None) -> tuple[list[DocumentHits], str | None]:
        """A page of documents with hits the requester may see, and the cursor of the next page (None: no more)."""
        from iiif_server.search.routes import readable

        if after is not None and after[1] not in collections:
            # only a collection searched here can be where a page ended (and a NUL never reaches the database)
            raise RequestError(f"not a cursor this server gave: {after[1][:40]!r}")
        if not terms(query) or not collections:
            return [], None
        results: list[DocumentHits] = []
        examined = 0
        position = after
        with self.catalogue.sessions() as session:
            matcher = Matcher(session, query)
            if not matcher.words:
                return [], None
            visible = self.readable_clause(session, policy, access, collections)
            order = self.rarest_words(session, matcher, matcher.content or list(range(len(matcher.words))))
            started, rounds = time.monotonic(), 0
            while examined < EXAMINE_MAX:
                now = time.monotonic()
                if rounds and now + (now - started) / rounds > started + EXAMINE_SECONDS:
                    return results, cursor(*position) if position else None  # another round would end past it
                rounds += 1
                batch = self.candidates(session, matcher, visible, position, min(CANDIDATES, EXAMINE_MAX - examined),
                                        order)
                pks = [pk for _, _, pk in batch]
                rows = {r[0]: r[1:] for r in session.execute(
                    select(Document.pk, Document.ident, Document.label, Document.tier, Collection.tier)
                    .join(Collection).where(Document.pk.in_(pks)))}
                own: dict[int, dict[int, str]] = {}  # pages with a tier of their own, per document
                for doc, image, tier in session.execute(select(Image.document_pk, Image.pk, Image.tier).where(
                        Image.document_pk.in_(pks), Image.tier.is_not(None))):
                    own.setdefault(doc, {})[image] = tier
                pages: dict[int, Pages] = {}
                for _, cid, pk in batch:
                    if pk in rows:
                        scope = readable(policy, access, cid, Target(pk, rows[pk][3], rows[pk][2], own.get(pk, {})))
                        if scope is not None and not scope[0].none:
                            pages[pk] = scope[0]
                found = matcher.find(scope_of(pages), order) if pages else {}
                shown = [f for _, _, pk in batch for f in found.get(pk, [])[:HITS_PER_DOCUMENT]]
                hits: dict[int, list[Hit]] = {}
                for f, hit in zip(shown, self.store.read(session, shown), strict=False):
                    hits.setdefault(f.document_pk, []).append(hit)
                for tier, cid, pk in batch:
                    examined += 1
                    position = (tier, cid, pk)
                    if hits.get(pk):
                        row = rows[pk]
                        results.append(DocumentHits(cid, row[0], row[1] or row[0], hits[pk]))
                    if len(results) == DOCUMENTS_PAGE:
                        return results, cursor(*position)
                if len(batch) < CANDIDATES:
                    return results, None
        return results, cursor(*position) if position else None

    # -- the catalogue's labels, summaries and metadata ----------------------------------

    def described(self, query: str, policy: Policy, access: Access,
                  after: int, limit: int | None = None) -> tuple[list[Described], int | None]:
        """Collections (on the first page) and documents whose label, summary or metadata hold every word
        of the query, in key order after document `after`; and the next cursor (None: no more)."""
        words = sorted(set(terms(query)))[:PHRASE_MAX]
        limit = limit or DOCUMENTS_PAGE
        if not words:
            return [], None
        results: list[Described] = []
        visible: dict[str, Collection] = {}
        for coll in self.catalogue.collections():
            if policy.visible(access, coll.tier, coll.id):
                visible[coll.id] = coll
                if not after and set(words) <= described_words(coll.label, coll.summary, coll.metadata_pairs):
                    results.append(Described(coll.id, None, coll.label or coll.id, coll.summary))
        if not visible:
            return results, None
        t = LabelTerm
        with self.catalogue.sessions() as session:
            words = self.rarest_first(session, LabelTerm.norm, words)
        stmt = (select(Document.pk, Document.collection_id, Document.ident, Document.label, Document.summary,
                       Document.tier).select_from(t).join(Document, Document.pk == t.document_pk)
                .where(t.norm == words[0], Document.collection_id.in_(list(visible))))
        for word in words[1:]:
            other = aliased(LabelTerm)
            stmt = stmt.where(exists().where(other.norm == word, other.document_pk == t.document_pk))
        examined = 0
        position = after
        while examined < EXAMINE_MAX:
            with self.catalogue.sessions() as session:
                rows = session.execute(stmt.where(t.document_pk > position).order_by(t.document_pk)
                                       .limit(CANDIDATES)).all()
            for pk, cid, ident, label, summary, tier in rows:
                examined += 1
                position = pk
                coll_tier = visible[cid].tier
                if policy.cleared(access, tier or coll_tier, cid):  # a document's words only to those cleared
                    results.append(Described(cid, ident, label or ident, summary))
                if len(results) >= limit:
                    return results, position
            if len(rows) < CANDIDATES:
                return results, None
        return results, position


def label_value(label: str) -> dict[str, Any]:
    return {"none": [label]}
