"""The catalogue's writes for an ingest run, each one transaction (methods of `Catalogue`).

An ingest prepares the collection and the CSV's fields before any copy exists, commits each finished
document's pages, positions and activity together, and places new documents in the collection's order
when it ends. What is a page and where it goes is ingest's decision (ingest/run.py); how it is
stored, counted and announced is decided here, beside every other write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from iiif_server.db.models import UNPLACED, Collection, Document, Image, effective_tier, sort_key

KnownPage = tuple[int, str, int, float, str, int]  # source page, ident, size, mtime, checksum, position


@dataclass(frozen=True)
class DocumentFields:
    """What a metadata CSV gives a document; None leaves a field as it is."""

    ident: str
    label: str | None = None
    date: dt.datetime | None = None
    tier: str | None = None
    summary: str | None = None
    rights: str | None = None
    metadata: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class PageSpec:
    """One page of a document as an ingest commits it: its place, and what changed about it."""

    ident: str
    position: int
    copy: tuple[int, int, str] | None = None  # width, height, checksum of a new access copy
    source: tuple[str, int, int, float] | None = None  # master path, page in it, size, mtime


def batches(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """Slices small enough for an IN list on any engine."""
    for n in range(0, len(items), size):
        yield items[n : n + size]


def same(old: object, new: object) -> bool:
    """Equal catalogue values; SQLite gives back datetimes without their (UTC) zone."""
    if isinstance(old, dt.datetime) and isinstance(new, dt.datetime):
        return utc(old) == utc(new)
    return old == new


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class IngestWrites:
    """Mixed into `Catalogue` (which provides sessions, locking and recording)."""

    # provided by Catalogue
    session: Any
    sessions: Any
    lock_activities: Any
    record: Any
    record_tier_change: Any
    change_collection_tier: Any
    count_items: Any
    touch: Any
    place_documents: Any
    whole_pages: Any
    record_whole: Any
    _withdraw_document: Any

    def legacy_sources(self, collection: str, idents: Sequence[str]) -> dict[str, str | None]:
        """The first master path of each of these documents (to recognise folders stored under old ids)."""
        found: dict[str, str | None] = {}
        with self.sessions() as session:
            for batch in batches(sorted(idents)):
                rows = session.execute(
                    select(Document.ident, func.min(Image.source_path))
                    .join(Image, Image.document_pk == Document.pk)
                    .where(Document.collection_id == collection, Document.ident.in_(batch))
                    .group_by(Document.ident)).all()
                found.update((ident, source) for ident, source in rows)
        return found

    def prepare_ingest(self, collection: str, label: str | None, tier: str | None, rows: Sequence[DocumentFields],
                       names: dict[str, str]) -> set[str]:
        """The collection (created, or its new label and tier) and the CSV's fields and tiers, in one transaction
        before any copy exists. New documents the CSV names are created unplaced and without pages, with their
        tier, so that every replica knows it before any of their copies is visible (`names`: their labels
        when the CSV gives none). Returns the ids of the documents created."""
        created_docs: set[str] = set()
        with self.session() as session:
            self.lock_activities(session)  # before any write: see Catalogue.lock_activities
            created, changed = self._ensure_collection(session, collection, label, tier)
            coll = session.get(Collection, collection)
            assert coll is not None
            docs = {d.ident: d for batch in batches(sorted(r.ident for r in rows)) for d in session.scalars(
                select(Document).where(Document.collection_id == coll.id, Document.ident.in_(batch)))}
            listed = False  # a change the collection's listing shows
            for row in rows:
                doc = docs.get(row.ident)
                if doc is None:  # its Create activity comes with its first pages
                    session.add(Document(collection_id=coll.id, ident=row.ident,
                                         label=row.label or names.get(row.ident, row.ident), position=UNPLACED,
                                         metadata_pairs=row.metadata, sort_key=sort_key(row.ident), tier=row.tier,
                                         nav_date=row.date, summary=row.summary, rights=row.rights))
                    self.count_items(session, coll.id, 1, 0)
                    created_docs.add(row.ident)
                    changed = True
                    continue
                old_tier = effective_tier(doc.tier, coll.tier)
                wanted = {"label": row.label, "nav_date": row.date, "summary": row.summary, "rights": row.rights,
                          "metadata_pairs": row.metadata or None, "tier": row.tier}
                changes = {name: value for name, value in wanted.items()
                           if value is not None and not same(getattr(doc, name), value)}
                if not changes:
                    continue
                for name, value in changes.items():
                    setattr(doc, name, value)
                new_tier = effective_tier(doc.tier, coll.tier)
                if doc.images:  # a document without pages has had no Create yet
                    if old_tier != new_tier:
                        self.record_tier_change(session, "Manifest", coll.id, doc.ident, old_tier, new_tier)
                    else:
                        self.record(session, "Update", "Manifest", coll.id, doc.ident, new_tier)
                    listed = True
                changed = True
            if listed and not created:
                self._record_collection_update(session, coll)
            if changed:
                self.touch(session, coll.id)
        return created_docs

    def _ensure_collection(self, session: Session, collection: str, label: str | None,
                           tier: str | None) -> tuple[bool, bool]:
        """Create the collection, or apply a new label or tier to it: (created, changed)."""
        coll = session.get(Collection, collection)
        if coll is None:
            coll = Collection(id=collection, label=label or collection, tier=tier or "public", metadata_pairs=[])
            session.add(coll)
            session.flush()
            self.record(session, "Create", "Collection", coll.id, None, coll.tier)
            return True, True  # its whole manifest is announced with its first pages (Catalogue.record_whole)
        changed = False
        if label and coll.label != label:
            coll.label = label
            self._record_collection_update(session, coll)
            changed = True
        if tier and coll.tier != tier:
            # as set-tier: the collection, its manifest and the documents that inherit the tier
            self.change_collection_tier(session, coll, tier)
            changed = True
        return False, changed

    def _record_collection_update(self, session: Session, coll: Collection) -> None:
        self.record(session, "Update", "Collection", coll.id, None, coll.tier)
        pages = self.whole_pages(session, coll.id)
        self.record_whole(session, coll.id, coll.tier, pages, pages)

    def known_pages(self, collection: str, documents: Sequence[str]) -> dict[str, list[KnownPage]]:
        """What the catalogue holds for these documents only, never the whole collection:
        master path -> (page in it, ident, size, mtime, checksum, position), by page."""
        known: dict[str, list[KnownPage]] = {}
        with self.sessions() as session:
            for batch in batches(documents):
                rows = session.execute(
                    select(Image.source_path, Image.source_page, Image.ident, Image.source_size, Image.source_mtime,
                           Image.checksum, Image.position)
                    .join(Document, Image.document_pk == Document.pk)
                    .where(Document.collection_id == collection, Document.ident.in_(batch))
                ).all()
                for path, page, ident, size, mtime, checksum, position in rows:
                    known.setdefault(path, []).append((page, ident, size, mtime, checksum, position))
        for pages in known.values():
            pages.sort()
        return known

    def sources_of(self, collection: str, documents: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each of these documents' pages and the master each came from: document -> {page: master path}."""
        found: dict[str, dict[str, str]] = {}
        with self.sessions() as session:
            for batch in batches(documents):
                for doc, page, path in session.execute(
                        select(Document.ident, Image.ident, Image.source_path)
                        .join(Image, Image.document_pk == Document.pk)
                        .where(Document.collection_id == collection, Document.ident.in_(batch))):
                    found.setdefault(doc, {})[page] = path
        return found

    def commit_document(self, collection: str, ident: str, label: str, pages: Sequence[PageSpec],
                        before_commit: Callable[[], None] = lambda: None, withdraw: Sequence[str] = (),
                        mark: Callable[[Session], None] = lambda _session: None) -> bool:
        """One document's pages, positions, counts, its place in the collection's listing and its activities, in one
        transaction: they appear together or not at all. `before_commit` runs inside it, after every row is
        written (a journal of the copies to place), after `mark` (a shared run's done mark, which may refuse).
        The pages the run did not name (their masters are gone from the source) are withdrawn where `withdraw`
        names them, else kept after the named ones, so that positions stay unique; a new document that got no
        page is not kept, an old one left with none is withdrawn. The collection's own Update for its listing is
        recorded once, at the end of the run (`finish_ingest`). Returns whether anything changed."""
        with self.session() as session:
            self.lock_activities(session)  # before any write: see Catalogue.lock_activities
            coll_tier = session.scalar(select(Collection.tier).where(Collection.id == collection))
            row = session.scalar(select(Document).where(Document.collection_id == collection,
                                                        Document.ident == ident))
            if row is None:
                row = Document(collection_id=collection, ident=ident, label=label, position=UNPLACED,
                               metadata_pairs=[], sort_key=sort_key(ident))
                session.add(row)
                session.flush()
                self.count_items(session, collection, 1, 0)
            existing = {img.ident: img for img in row.images}
            first_pages = not existing
            before = self.whole_pages(session, collection)
            added = 0
            changed = False
            for page in pages:
                img = existing.get(page.ident)
                if img is None:
                    img = Image(document_pk=row.pk, ident=page.ident)
                    session.add(img)
                    added += 1
                    changed = True
                if page.copy is not None:
                    changed = changed or (img.width, img.height, img.checksum) != page.copy
                    img.width, img.height, img.checksum = page.copy
                if img.position != page.position:
                    changed = True
                    img.position, img.label = page.position, str(page.position + 1)
                if page.source is not None:
                    img.source_path, img.source_page, img.source_size, img.source_mtime = page.source
            named = {page.ident for page in pages}
            last = max((page.position for page in pages), default=-1)
            gone = 0
            for img in sorted((i for i in existing.values() if i.ident not in named), key=lambda i: i.position):
                if img.ident in withdraw:
                    session.delete(img)
                    gone += 1
                    changed = True
                else:  # kept, after the pages of the masters the source still has: never two on one place
                    last += 1
                    if img.position != last:
                        img.position, img.label = last, str(last + 1)
                        changed = True
            if gone:
                self.count_items(session, collection, 0, -gone)
            if existing and len(existing) - gone + added == 0:  # its every page withdrawn: the document goes too
                session.flush()
                coll = session.get(Collection, collection)
                assert coll is not None
                self._withdraw_document(session, coll, row)
                mark(session)
                before_commit()
                return True
            if not existing and not added:  # every master failed: no document
                session.delete(row)
                self.count_items(session, collection, -1, 0)
            else:
                session.flush()
                self.count_items(session, collection, 0, added)
                if changed:
                    self.record(session, "Create" if first_pages else "Update", "Manifest", collection, ident,
                                effective_tier(row.tier, coll_tier))
                    self.record_whole(session, collection, coll_tier, before, before + added - gone)  # shows them too
                    self.touch(session, collection)
                if row.position == UNPLACED and self.place_documents(session, collection, only=row.pk):
                    session.execute(update(Collection).where(Collection.id == collection).values(unannounced=1))
                    self.touch(session, collection)
            mark(session)
            before_commit()
        return changed

    def page_checksum(self, collection: str, document: str, page: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(Image.checksum).join(Document, Image.document_pk == Document.pk).where(
                Document.collection_id == collection, Document.ident == document, Image.ident == page))

    def finish_ingest(self, collection: str, created: set[str]) -> list[str]:
        """Place what a crashed run left unplaced, drop the documents the CSV created that got no page (their ids
        are returned), and record the collection's Update if its listing changed since the last one was recorded
        (by this run, or a run that was stopped or crashed before its end)."""
        with self.session() as session:
            self.lock_activities(session)  # before any write: see Catalogue.lock_activities
            empty = []  # documents the CSV created whose masters all failed: unplaced, never announced
            for batch in batches(sorted(created)):
                empty += session.scalars(select(Document).where(
                    Document.collection_id == collection, Document.ident.in_(batch),
                    Document.position == UNPLACED, ~Document.images.any())).all()
            gone = [doc.ident for doc in empty]
            for doc in empty:
                session.execute(delete(Document).where(Document.pk == doc.pk))
                self.count_items(session, collection, -1, 0)
            placed = self.place_documents(session, collection)  # any a crash left with pages but unplaced
            coll = session.get(Collection, collection)
            assert coll is not None
            session.refresh(coll)
            if placed or coll.unannounced:  # each document's own change was recorded at its commit
                self.record(session, "Update", "Collection", coll.id, None, coll.tier)
                coll.unannounced = 0
            if placed or empty:
                self.touch(session, collection)
        return gone
