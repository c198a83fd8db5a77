"""Withdrawal: take a collection, a document or a page out of the catalogue and the image root.

Archives withdraw material on request. Masters are never touched; access copies are moved out of
reach first (renamed to a hidden name, which no identifier can name), then the catalogue rows go
with Delete activities for harvesters, in one transaction, then the moved copies are deleted. A
crash at any point leaves nothing servable that was withdrawn: at worst hidden debris, which the
next withdrawal or ingest in that folder removes. Safe while serving: every replica finds the
copies gone on its next request.

In object storage nothing can be renamed, so the objects are deleted first, before the rows: a
crash between leaves pages whose images are gone (404), and the withdrawal can be run again.
Replicas may serve blocks they read less than `--s3-ttl` seconds earlier.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Collection, Document, Image, effective_tier, now
from iiif_server.names import copy_path

TRASH = ".withdrawn-"


@dataclass(frozen=True)
class Withdrawn:
    target: str
    documents: int
    pages: int


def _move_away(path: Path) -> Path | None:
    """Rename a copy or folder to a hidden name beside it: unservable at once. The name is random, not
    derived from the old one, so that it fits whatever the old name's length."""
    if not path.exists():
        return None
    hidden = path.with_name(f"{TRASH}{secrets.token_hex(8)}")
    os.replace(path, hidden)
    return hidden


def _delete(path: Path | None) -> None:
    if path is None:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class FolderCopies:
    """Access copies in a folder: moved out of reach at once, deleted once the rows are gone."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def take_away(self, relative: str) -> Callable[[], None]:
        moved = _move_away(self.root / relative)
        return lambda: _delete(moved)


class ObjectCopies:
    """Access copies in a bucket (an obstore store): deleted at once, nothing left to do after."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def take_away(self, relative: str) -> Callable[[], None]:
        import obstore

        if relative.endswith(".tif"):
            keys = [relative]
        else:
            keys = [item["path"] for batch in obstore.list(self.store, prefix=relative + "/") for item in batch]
        for start in range(0, len(keys), 1000):
            obstore.delete(self.store, keys[start:start + 1000])
        return lambda: None


def clean_debris(folder: Path) -> None:
    """Remove what a withdrawal interrupted by a crash left in a folder."""
    for leftover in folder.glob(TRASH + "*"):
        _delete(leftover)


def withdraw(catalogue: Catalogue, copies: Path | FolderCopies | ObjectCopies, target: str) -> Withdrawn:
    """Withdraw `collection`, `collection/document` or `collection/document/page` (KeyError when unknown);
    `copies` is the image root (a folder) or where the copies are."""
    if isinstance(copies, Path):
        copies = FolderCopies(copies)
    parts = target.strip("/").split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise KeyError(f"{target!r} is not collection[/document[/page]]")
    with catalogue.session() as session:
        catalogue.lock_activities(session)  # before any write: see Catalogue.lock_activities
        coll = session.get(Collection, parts[0])
        if coll is None:
            raise KeyError(f"no collection {parts[0]!r}")
        doc = None
        if len(parts) >= 2:
            doc = session.scalar(select(Document).where(Document.collection_id == coll.id,
                                                        Document.ident == parts[1]))
            if doc is None:
                raise KeyError(f"no document {parts[1]!r} in {coll.id!r}")
        img = None
        if len(parts) == 3 and doc is not None:
            img = session.scalar(select(Image).where(Image.document_pk == doc.pk, Image.ident == parts[2]))
            if img is None:
                raise KeyError(f"no page {parts[2]!r} in {coll.id}/{doc.ident}")
        finish = copies.take_away(copy_path(*parts))
        if img is not None and doc is not None:
            result = _page(catalogue, session, coll, doc, img)
        elif doc is not None:
            result = _document(catalogue, session, coll, doc)
        else:
            result = _collection(catalogue, session, coll)
    finish()  # committed: the copies can go
    return result


def _page(catalogue: Catalogue, session: Session, coll: Collection, doc: Document, img: Image) -> Withdrawn:
    remaining = session.scalar(select(func.count()).where(Image.document_pk == doc.pk)) or 0
    if remaining <= 1:  # the last page: the document goes with it
        return _document(catalogue, session, coll, doc, f"{coll.id}/{doc.ident}/{img.ident}")
    session.delete(img)
    catalogue.count_items(session, coll.id, 0, -1)
    catalogue.record(session, "Update", "Manifest", coll.id, doc.ident, effective_tier(doc.tier, coll.tier))
    catalogue.touch(session, coll.id)
    return Withdrawn(f"{coll.id}/{doc.ident}/{img.ident}", 0, 1)


def _document(catalogue: Catalogue, session: Session, coll: Collection, doc: Document,
              target: str | None = None) -> Withdrawn:
    pages = session.scalar(select(func.count()).where(Image.document_pk == doc.pk)) or 0
    tier = effective_tier(doc.tier, coll.tier)
    position = doc.position
    session.execute(delete(Image).where(Image.document_pk == doc.pk))
    session.execute(delete(Document).where(Document.pk == doc.pk))
    if position >= 0:  # keep positions dense: the documents after it move up one
        session.execute(update(Document).where(Document.collection_id == coll.id, Document.position > position)
                  .values(position=Document.position - 1).execution_options(synchronize_session=False))
    catalogue.count_items(session, coll.id, -1, -pages)
    catalogue.record(session, "Delete", "Manifest", coll.id, doc.ident, tier)
    catalogue.record(session, "Update", "Collection", coll.id, None, coll.tier)
    catalogue.touch(session, coll.id)
    return Withdrawn(target or f"{coll.id}/{doc.ident}", 1, pages)


def _collection(catalogue: Catalogue, session: Session, coll: Collection) -> Withdrawn:
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
    catalogue.count_public(session, public)
    catalogue.record(session, "Delete", "Manifest", coll.id, None, coll.tier)
    catalogue.record(session, "Delete", "Collection", coll.id, None, coll.tier)
    session.execute(delete(Image).where(Image.document_pk.in_(
        select(Document.pk).where(Document.collection_id == coll.id))))
    session.execute(delete(Document).where(Document.collection_id == coll.id))
    session.execute(delete(Collection).where(Collection.id == coll.id))
    catalogue.bump(session)
    return Withdrawn(coll.id, documents, pages)
