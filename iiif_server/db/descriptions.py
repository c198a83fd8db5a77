"""Describing collections for everyone: their label, summary and full description, dates, provenance, rights,
required statement, the archive's own reference and metadata pairs (methods of `Catalogue`).

A description is set from a CSV (`iiif-server collections describe`) or the staff console, whole: all rows
of a file in one transaction or none. Setting what is already there changes nothing and records nothing, so
a file may be applied again. A change is announced as the collection's Update; where the documents'
manifests show the collection's rights or required statement (those without their own), each of them gets
an Update too, set-based, so that harvesters fetch them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, literal, or_, select
from sqlalchemy.orm import Session

from iiif_server.db.models import Activity, Collection, Document, now
from iiif_server.errors import NotFound

# what a description sets, by the name of the Collection attribute
FIELDS = ("label", "summary", "description", "dates", "provenance", "rights", "required_statement", "record",
          "metadata_pairs")
LIMITS = {"label": 2000, "summary": 2000, "description": 20_000, "dates": 200, "provenance": 4000, "rights": 500,
          "required_statement": 2000, "record": 500}  # characters (`dates`, `record`, `rights`: their columns)
INHERITED = ("rights", "required_statement")  # shown by the manifests of documents that have none of their own


@dataclass(frozen=True)
class Description:
    """What a CSV row or the console's form gives one collection: `given` names the fields it sets (an empty
    value clears one); the others are left as they are."""

    collection: str
    values: dict[str, Any]

    @property
    def given(self) -> frozenset[str]:
        return frozenset(self.values)


@dataclass(frozen=True)
class Described:
    collection: str
    changed: tuple[str, ...]  # the fields that changed; empty: the collection already said so


class Descriptions:
    """Mixed into `Catalogue` (which provides sessions, locking and recording)."""

    session: Any
    lock_activities: Any
    record: Any
    count_public: Any
    touch: Any
    whole_pages: Any
    record_whole: Any

    def describe(self, descriptions: Sequence[Description]) -> list[Described]:
        """Apply every description in one transaction (NotFound for an unknown collection: nothing is applied)."""
        out = []
        with self.session() as session:
            self.lock_activities(session)  # before any write: see Catalogue.lock_activities
            for wanted in descriptions:
                coll = session.get(Collection, wanted.collection)
                if coll is None:
                    raise NotFound(f"no collection {wanted.collection!r}")
                values = dict(wanted.values)
                if "label" in values and not values["label"]:
                    values["label"] = coll.id  # a collection is never without a label
                changed = tuple(name for name in FIELDS if name in values
                                and _value(getattr(coll, name), name) != _value(values[name], name))
                for name in changed:
                    value = values[name]
                    setattr(coll, name, _value(value, name) if name == "metadata_pairs" else (value or None))
                if changed:
                    self._announce(session, coll, [n for n in changed if n in INHERITED])
                out.append(Described(coll.id, changed))
        return out

    def _announce(self, session: Session, coll: Collection, inherited: list[str]) -> None:
        self.record(session, "Update", "Collection", coll.id, None, coll.tier)
        pages = self.whole_pages(session, coll.id)
        self.record_whole(session, coll.id, coll.tier, pages, pages)
        if inherited:
            self._update_inheriting(session, coll, inherited)
        self.touch(session, coll.id)

    def _update_inheriting(self, session: Session, coll: Collection, inherited: list[str]) -> None:
        """An Update for every document whose manifest shows the collection's rights or required statement, in
        document order, by one INSERT ... SELECT: no document is loaded, whatever the collection's size."""
        column = {"rights": Document.rights, "required_statement": Document.required_statement}
        showing = or_(*(column[name].is_(None) for name in inherited))
        placed = (Document.collection_id == coll.id, Document.position >= 0, showing)
        tier = func.coalesce(Document.tier, literal(coll.tier))
        rows = (select(literal("Update"), literal("Manifest"), Document.collection_id, Document.ident, tier,
                       literal(now())).where(*placed).order_by(Document.position, Document.pk))
        session.flush()
        session.execute(insert(Activity).from_select(
            ["type", "object_type", "collection_id", "document_ident", "tier", "end_time"], rows))
        public = session.scalar(select(func.count()).select_from(Document).where(*placed, tier == "public")) or 0
        self.count_public(session, public)


def _value(value: Any, name: str) -> Any:
    """A field as compared: blank text and no text alike, metadata as a list of pairs."""
    if name == "metadata_pairs":
        return [list(pair) for pair in value or []]
    return value or None
