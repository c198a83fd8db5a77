"""What the sitemaps list, read by key: the collections (few), and the public documents of one collection by
position range, each with the time of its last activity (what a harvester of the change stream last saw).

Every read is bounded by what it returns: a range of positions on the documents' (collection, position) index,
and for each document one probe of the activities' (collection, document, id) index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Collection, Document


@dataclass(frozen=True)
class CollectionEntry:
    id: str
    tier: str
    updated: dt.datetime
    changed: dt.datetime | None  # the end time of the collection's last Collection activity
    last: int | None  # the highest document position, None when empty


def collections(catalogue: Catalogue) -> list[CollectionEntry]:
    """Every collection with its last position and its last activity, in id order (one statement)."""
    last = (select(func.max(Document.position)).where(Document.collection_id == Collection.id)
            .correlate(Collection).scalar_subquery())
    changed = (select(Activity.end_time).where(Activity.collection_id == Collection.id,
                                               Activity.document_ident.is_(None), Activity.object_type == "Collection")
               .order_by(Activity.id.desc()).limit(1).correlate(Collection).scalar_subquery())
    with catalogue.sessions() as session:
        rows = session.execute(select(Collection.id, Collection.tier, Collection.updated, changed, last)
                               .order_by(Collection.id)).all()
    return [CollectionEntry(*row) for row in rows]


def public_documents(catalogue: Catalogue, collection: str, collection_public: bool, public: str, first: int,
                     stop: int) -> Sequence[tuple[str, dt.datetime | None]]:
    """The documents at positions [first, stop) whose tier is `public` (their own, else the collection's), in
    order, with the end time of their last activity."""
    changed = (select(Activity.end_time).where(Activity.collection_id == Document.collection_id,
                                               Activity.document_ident == Document.ident)
               .order_by(Activity.id.desc()).limit(1).correlate(Document).scalar_subquery())
    tier = or_(Document.tier == public, Document.tier.is_(None)) if collection_public else Document.tier == public
    query = (select(Document.ident, changed)
             .where(Document.collection_id == collection, Document.position >= first, Document.position < stop, tier)
             .order_by(Document.position))
    with catalogue.sessions() as session:
        return [(ident, when) for ident, when in session.execute(query).all()]


def public_ranges(catalogue: Catalogue, collection: str, public: str, size: int) -> list[int]:
    """The numbers n of the position ranges [n*size, (n+1)*size) that hold a document of its own `public` tier
    (read from the few documents that set a tier: an index holds them)."""
    with catalogue.sessions() as session:
        positions = session.scalars(select(Document.position).where(
            Document.collection_id == collection, Document.tier == public, Document.position >= 0)).all()
    return sorted({p // size for p in positions})
