"""What the console reads from the catalogue: index range reads only, never an OFFSET or a full count.

Collections are few (hundreds); documents are read by position ranges or by an identifier range,
pages of a document by position, tokens newest first with a bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image, TokenRow

TOP = "\U0010ffff"  # above every character: the end of an identifier prefix range


@dataclass(frozen=True)
class CollectionRow:
    id: str
    label: str
    tier: str
    documents: int
    pages: int
    updated: dt.datetime


@dataclass(frozen=True)
class DocumentRow:
    ident: str
    label: str
    tier: str | None
    position: int


@dataclass(frozen=True)
class PageRow:
    ident: str
    label: str
    position: int
    width: int
    height: int
    tier: str | None


def collections(catalogue: Catalogue, query: str = "", after: str = "", limit: int = 50) -> list[CollectionRow]:
    """Collections by id after `after`, optionally only those whose id or label holds `query`."""
    stmt = select(Collection.id, Collection.label, Collection.tier, Collection.document_count,
                  Collection.image_count, Collection.updated).where(Collection.id > after)
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(Collection.id.ilike(like, escape="\\") | Collection.label.ilike(like, escape="\\"))
    with catalogue.sessions() as session:
        rows = session.execute(stmt.order_by(Collection.id).limit(limit)).all()
    return [CollectionRow(*row) for row in rows]


def documents(catalogue: Catalogue, collection_id: str, first: int, limit: int) -> list[DocumentRow]:
    """Documents at positions [first, first + limit): an index range, whatever the collection's size."""
    stmt = (select(Document.ident, Document.label, Document.tier, Document.position)
            .where(Document.collection_id == collection_id, Document.position >= first,
                   Document.position < first + limit)
            .order_by(Document.position, Document.ident))
    with catalogue.sessions() as session:
        return [DocumentRow(*row) for row in session.execute(stmt).all()]


def find_documents(catalogue: Catalogue, collection_id: str, prefix: str, limit: int) -> list[DocumentRow]:
    """Documents whose identifier starts with `prefix`, by identifier: a range of the unique index."""
    stmt = (select(Document.ident, Document.label, Document.tier, Document.position)
            .where(Document.collection_id == collection_id, Document.ident >= prefix,
                   Document.ident < prefix + TOP)
            .order_by(Document.ident).limit(limit))
    with catalogue.sessions() as session:
        rows = session.execute(stmt).all()
    return [DocumentRow(*row) for row in rows if row[0].startswith(prefix)]


def own_tiers(catalogue: Catalogue, collection_id: str) -> tuple[int, int, int]:
    """Documents with a tier of their own, the pages in them, and pages with a tier of their own
    elsewhere: what a collection's new tier leaves as it is.

    Written so that no plan can walk the collection: the documents come from the partial index on
    set tiers (few), each one's pages are counted on the images' position index, and the pages with
    their own tier come from the images' partial index, each looked up by its document's key (a
    scalar subquery, which planners do not turn into a join over the collection's documents)."""
    pages_of = select(func.count()).where(Image.document_pk == Document.pk).correlate(Document).scalar_subquery()
    owner = (select(Document.collection_id).where(Document.pk == Image.document_pk, Document.tier.is_(None))
             .correlate(Image).scalar_subquery())
    with catalogue.sessions() as session:
        docs, pages = session.execute(
            select(func.count(), func.coalesce(func.sum(pages_of), 0))
            .where(Document.collection_id == collection_id, Document.tier.is_not(None))).one()
        own_pages = session.scalar(select(func.count()).select_from(Image)
                                   .where(Image.tier.is_not(None), owner == collection_id)) or 0
    return int(docs), int(pages), int(own_pages)


def pages(catalogue: Catalogue, document_pk: int, first: int, limit: int) -> list[PageRow]:
    stmt = (select(Image.ident, Image.label, Image.position, Image.width, Image.height, Image.tier)
            .where(Image.document_pk == document_pk, Image.position >= first)
            .order_by(Image.position).limit(limit))
    with catalogue.sessions() as session:
        return [PageRow(*row) for row in session.execute(stmt).all()]


def page_count(catalogue: Catalogue, document_pk: int) -> tuple[int, int]:
    """Pages of one document and those with a tier of their own."""
    with catalogue.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Image).where(Image.document_pk == document_pk)) or 0
        own = session.scalar(select(func.count()).select_from(Image).where(
            Image.document_pk == document_pk, Image.tier.is_not(None))) or 0
    return total, own


def page(catalogue: Catalogue, document_pk: int, ident: str) -> PageRow | None:
    with catalogue.sessions() as session:
        row = session.execute(select(Image.ident, Image.label, Image.position, Image.width, Image.height, Image.tier)
                              .where(Image.document_pk == document_pk, Image.ident == ident)).first()
    return PageRow(*row) if row else None


def tokens(catalogue: Catalogue, limit: int = 200) -> Sequence[TokenRow]:
    """The newest tokens first (a bounded list)."""
    with catalogue.sessions() as session:
        return session.scalars(select(TokenRow).where(TokenRow.kind == "token")
                               .order_by(TokenRow.issued.desc()).limit(limit)).all()


def token(catalogue: Catalogue, ident: str) -> TokenRow | None:
    with catalogue.sessions() as session:
        return session.get(TokenRow, ident)
