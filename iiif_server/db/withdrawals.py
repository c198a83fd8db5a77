"""Withdrawals in the catalogue, one transaction each (methods of `Catalogue`).

The rows of a collection, a document or a page go with Delete (or Update) activities for harvesters;
the caller's `take_away` moves the access copies out of reach inside the transaction, before the rows
go (ingest/withdraw.py says how, for folders and for buckets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from iiif_server.db.models import Activity, Collection, Document, Image, effective_tier, now
from iiif_server.errors import NotFound, Target
from iiif_server.names import copy_path


@dataclass(frozen=True)
class Withdrawn:
    target: str
    documents: int
    pages: int


class Withdrawals:
    """Mixed into `Catalogue` (which provides sessions, locking and recording)."""

    session: Any
    lock_activities: Any
    record: Any
    count_items: Any
    count_public: Any
    touch: Any
    bump: Any
    whole_pages: Any
    record_whole: Any

    def withdraw(self, target: Target, take_away: Callable[[str], Callable[[], None]]) -> tuple[Withdrawn,
                                                                                              Callable[[], None]]:
        """Withdraw what `target` names (NotFound when unknown). `take_away(path)` gets the copies' path below
        the image root (`names.copy_path`) once the rows are found, and returns what finishes their removal
        after the commit: returned with the result, for the caller to run."""
        with self.session() as session:
            self.lock_activities(session)  # before any write: see Catalogue.lock_activities
            coll = session.get(Collection, target.collection)
            if coll is None:
                raise NotFound(f"no collection {target.collection!r}")
            doc = None
            if target.document is not None:
                doc = session.scalar(select(Document).where(Document.collection_id == coll.id,
                                                            Document.ident == target.document))
                if doc is None:
                    raise NotFound(f"no document {target.document!r} in {coll.id!r}")
            img = None
            if target.page is not None and doc is not None:
                img = session.scalar(select(Image).where(Image.document_pk == doc.pk, Image.ident == target.page))
                if img is None:
                    raise NotFound(f"no page {target.page!r} in {coll.id}/{doc.ident}")
            finish = take_away(copy_path(*target.parts))
            if img is not None and doc is not None:
                result = self._withdraw_page(session, coll, doc, img)
            elif doc is not None:
                result = self._withdraw_document(session, coll, doc)
            else:
                result = self._withdraw_collection(session, coll)
        return result, finish

    def _withdraw_page(self, session: Session, coll: Collection, doc: Document, img: Image) -> Withdrawn:
        remaining = session.scalar(select(func.count()).where(Image.document_pk == doc.pk)) or 0
        if remaining <= 1:  # the last page: the document goes with it
            return self._withdraw_document(session, coll, doc, f"{coll.id}/{doc.ident}/{img.ident}")
        before = self.whole_pages(session, coll.id)
        session.delete(img)
        self.count_items(session, coll.id, 0, -1)
        self.record(session, "Update", "Manifest", coll.id, doc.ident, effective_tier(doc.tier, coll.tier))
        self.record_whole(session, coll.id, coll.tier, before, before - 1)
        self.touch(session, coll.id)
        return Withdrawn(f"{coll.id}/{doc.ident}/{img.ident}", 0, 1)

    def _withdraw_document(self, session: Session, coll: Collection, doc: Document,
                  target: str | None = None) -> Withdrawn:
        pages = session.scalar(select(func.count()).where(Image.document_pk == doc.pk)) or 0
        before = self.whole_pages(session, coll.id)
        tier = effective_tier(doc.tier, coll.tier)
        position = doc.position
        session.execute(delete(Image).where(Image.document_pk == doc.pk))
        session.execute(delete(Document).where(Document.pk == doc.pk))
        if position >= 0:  # keep positions dense: the documents after it move up one
            session.execute(update(Document).where(Document.collection_id == coll.id, Document.position > position)
                      .values(position=Document.position - 1).execution_options(synchronize_session=False))
        self.count_items(session, coll.id, -1, -pages)
        self.record(session, "Delete", "Manifest", coll.id, doc.ident, tier)
        self.record(session, "Update", "Collection", coll.id, None, coll.tier)
        self.record_whole(session, coll.id, coll.tier, before, before - pages)
        self.touch(session, coll.id)
        return Withdrawn(target or f"{coll.id}/{doc.ident}", 1, pages)

    def _withdraw_collection(self, session: Session, coll: Collection) -> Withdrawn:
        documents, pages = coll.document_count, coll.image_count
        stamp = now()
        # a Delete for every document's manifest, set-based: harvesters must drop each one
        tier = func.coalesce(Document.tier, literal(coll.tier))
        rows = select(literal("Delete"), literal("Manifest"), Document.collection_id, Document.ident, tier,
                      literal(stamp)).where(Document.collection_id == coll.id)
        session.execute(insert(Activity).from_select(
            ["type", "object_type", "collection_id", "document_ident", "tier", "end_time"], rows))
        public = session.scalar(select(func.count()).select_from(Document).where(
            Document.collection_id == coll.id, tier == "public")) or 0
        self.count_public(session, public)
        self.record_whole(session, coll.id, coll.tier, pages, 0)
        self.record(session, "Delete", "Collection", coll.id, None, coll.tier)
        session.execute(delete(Image).where(Image.document_pk.in_(
            select(Document.pk).where(Document.collection_id == coll.id))))
        session.execute(delete(Document).where(Document.collection_id == coll.id))
        session.execute(delete(Collection).where(Collection.id == coll.id))
        self.bump(session)
        return Withdrawn(coll.id, documents, pages)
