"""Search across documents: a collection's (or every collection's) manifests with their hits, and the
catalogue's labels, summaries and metadata.

Both page by keyset over the index's own order, never by OFFSET, and count nothing in full. A
candidate document is shown only when the requester may see it, and its hits come from the pages
they may read (the same rules as one document's search), so a hidden document's label, a restricted
page's snippet or a count over either never leaves. Each request examines a bounded number of
candidates: when most are hidden from the requester a page may come back short, with `next`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.labels import described_words
from iiif_server.db.models import Collection, Document, Image, LabelTerm, TextDocTerm
from iiif_server.errors import RequestError
from iiif_server.search.results import Hit, Target, cursor_number
from iiif_server.search.store import PHRASE_MAX, TextStore
from iiif_server.words import terms

DOCUMENTS_PAGE = 20  # manifests per page of a collection search
HITS_PER_DOCUMENT = 3
CANDIDATES = 50  # documents read from the index per round
EXAMINE_MAX = 500  # candidates one request looks at, at most
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
    def _holding(words: Sequence[str], collections: Sequence[str]) -> Select:
        t = TextDocTerm
        stmt = select(t.collection_id, t.document_pk).where(t.norm == words[0], t.collection_id.in_(collections))
        for word in words[1:]:
            other = aliased(TextDocTerm)
            stmt = stmt.where(exists().where(other.norm == word, other.collection_id == t.collection_id,
                                             other.document_pk == t.document_pk))
        return stmt

    @staticmethod
    def _similar(word: str, similar: Sequence[str], collections: Sequence[str]) -> Select:
        t, same = TextDocTerm, aliased(TextDocTerm)
        return (select(t.collection_id, t.document_pk).distinct()
                .where(t.norm.in_(similar), t.collection_id.in_(collections),
                       ~exists().where(same.norm == word, same.collection_id == t.collection_id,
                                       same.document_pk == t.document_pk)))

    def candidates(self, session: Session, words: Sequence[str], similar: Sequence[str], collections: Sequence[str],
                   after: tuple[int, str, int] | None, limit: int) -> list[tuple[int, str, int]]:
        """(tier, collection, document pk) of documents holding the words, after `after`, in tier then key order:
        first those with every word (case and accents folded), then, for one word, those with a similar word."""
        tiers = [self._holding(self.rarest_first(session, TextDocTerm.norm, words), collections)]
        if len(words) == 1 and similar:
            tiers.append(self._similar(words[0], similar, collections))
        found: list[tuple[int, str, int]] = []
        for tier, stmt in enumerate(tiers):
            if after is not None and tier < after[0]:
                continue
            key = tuple_(TextDocTerm.collection_id, TextDocTerm.document_pk)
            if after is not None and tier == after[0]:
                stmt = stmt.where(key > tuple_(after[1], after[2]))
            rows = session.execute(stmt.order_by(TextDocTerm.collection_id, TextDocTerm.document_pk)
                                   .limit(limit - len(found))).all()
            found += [(tier, c, d) for c, d in rows]
            if len(found) >= limit:
                break
        return found

    # -- a collection's manifests with their hits ---------------------------------------

    def search(self, query: str, collections: Sequence[str], policy: Policy, access: Access,
               after: tuple[int, str, int] | None) -> tuple[list[DocumentHits], str | None]:
        """A page of documents with hits the requester may see, and the cursor of the next page (None: no more)."""
        from iiif_server.search.routes import readable

        words = terms(query)[:PHRASE_MAX]
        if not words or not collections:
            return [], None
        with self.catalogue.sessions() as session:
            fuzzy = self.store.similar(session, words[0]) if len(words) == 1 else ([], [])
        similar = [*fuzzy[0], *fuzzy[1]]
        results: list[DocumentHits] = []
        examined = 0
        position = after
        while examined < EXAMINE_MAX:
            with self.catalogue.sessions() as session:
                batch = self.candidates(session, words, similar, collections, position, CANDIDATES)
                pks = [pk for _, _, pk in batch]
                rows = {r[0]: r[1:] for r in session.execute(
                    select(Document.pk, Document.ident, Document.label, Document.tier, Collection.tier)
                    .join(Collection).where(Document.pk.in_(pks)))}
                own: dict[int, dict[int, str]] = {}  # pages with a tier of their own, per document
                for doc, image, tier in session.execute(select(Image.document_pk, Image.pk, Image.tier).where(
                        Image.document_pk.in_(pks), Image.tier.is_not(None))):
                    own.setdefault(doc, {})[image] = tier
            scopes = {pk: readable(policy, access, cid, Target(pk, rows[pk][3], rows[pk][2], own.get(pk, {})))
                      for _, cid, pk in batch if pk in rows}
            ready: dict[int, list[Hit]] = {}
            if len(words) == 1:  # documents the requester reads whole: their first hits in one query per tier
                for t, norms in ((FOLDED, words), (SIMILAR, similar)):
                    whole = [pk for tier, _, pk in batch if tier == t and (scope := scopes.get(pk)) is not None
                             and scope[0].everything and not scope[0].denied]
                    ready.update(self.store.first_hits(whole, norms, HITS_PER_DOCUMENT, t))
            for tier, cid, pk in batch:
                examined += 1
                position = (tier, cid, pk)
                row, scope = rows.get(pk), scopes.get(pk)
                if row is None or scope is None:
                    continue
                if len(words) > 1:  # phrases, then entries with every word
                    hits = self.store.search(pk, query, scope[0], limit=HITS_PER_DOCUMENT, count=False)[0]
                elif scope[0].everything and not scope[0].denied:
                    hits = ready.get(pk, [])
                else:  # some pages hidden from the requester: the word itself, or (second tier) its variants
                    hits = self.store.hits_with(pk, words if tier == FOLDED else similar, scope[0],
                                                HITS_PER_DOCUMENT, tier)
                if hits:
                    results.append(DocumentHits(cid, row[0], row[1] or row[0], hits))
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
