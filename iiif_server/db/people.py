"""Reading the people of the catalogue: a person and their links, the names on a document's pages, the
transports and their people in list order, the suggestions waiting for review.

Every read is bounded: one person's links, one document's pages, one page (by key) of a transport or of the
suggestions. The tiers of linked pages come with them (page, else document, else collection) so that the
caller decides what each requester sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.orm import aliased

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import (
    CONFIRMED,
    LINE,
    PORTRAIT,
    SUGGESTED,
    Collection,
    Document,
    Image,
    Person,
    PersonLink,
    State,
    Transport,
    effective_tier,
)
from iiif_server.db.persons import PERSONS

LINKS_SHOWN = 50  # links of one person read at most (a person has a few)


@dataclass(frozen=True)
class Linked:
    """A link as a page shows it: what it points at, where, and at which tier."""

    id: int
    person_id: str
    kind: str
    state: str
    collection: str
    document: str
    document_label: str
    page: str
    page_label: str
    width: int
    height: int
    box: tuple[int, int, int, int] | None
    text: str | None
    tier: str
    score: float | None = None
    reason: str | None = None

    @property
    def identifier(self) -> str:
        return f"{self.collection}/{self.document}/{self.page}"


@dataclass(frozen=True)
class Name:
    """A confirmed name on a list page: the person and their line's box."""

    link_id: int
    person_id: str
    surname: str
    given_names: str
    page: str
    box: tuple[int, int, int, int]


def _linked_query():  # type: ignore[no-untyped-def]
    return (select(PersonLink.id, PersonLink.person_id, PersonLink.kind, PersonLink.state, Collection.id,
                   Document.ident, Document.label, Image.ident, Image.label, Image.width, Image.height,
                   PersonLink.x, PersonLink.y, PersonLink.w, PersonLink.h, PersonLink.text, Image.tier,
                   Document.tier, Collection.tier, PersonLink.score, PersonLink.reason)
            .join(Image, Image.pk == PersonLink.image_pk).join(Document, Document.pk == Image.document_pk)
            .join(Collection, Collection.id == Document.collection_id))


def _linked(row: Sequence[object]) -> Linked:
    (lid, pid, kind, state, cid, did, dlabel, page, plabel, w, h, x, y, bw, bh, text, itier, dtier, ctier,
     score, reason) = row
    box = (x, y, bw, bh) if x is not None else None
    return Linked(lid, pid, kind, state, cid, did, dlabel or did, page, plabel or page, w, h, box,  # type: ignore[arg-type]
                  text, effective_tier(itier, dtier, ctier), score, reason)  # type: ignore[arg-type]


class People:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def revision(self) -> int:
        with self.catalogue.sessions() as session:
            return session.scalar(select(State.value).where(State.key == PERSONS)) or 0

    def revisions(self) -> tuple[int, int]:
        """The people's revision and the catalogue version, in one read: what a cached person or transport page
        is kept under."""
        with self.catalogue.sessions() as session:
            found = dict(session.execute(select(State.key, State.value)
                                         .where(State.key.in_([PERSONS, "version"]))).all())
        return found.get(PERSONS) or 0, found.get("version") or 0

    def person(self, person_id: str) -> Person | None:
        with self.catalogue.sessions() as session:
            return session.get(Person, person_id)

    def links(self, person_id: str, states: Sequence[str] = (CONFIRMED,)) -> list[Linked]:
        """A person's links in these states: portraits first, then lines, each in catalogue order."""
        query = (_linked_query().where(PersonLink.person_id == person_id, PersonLink.state.in_(states))
                 .order_by(PersonLink.kind.desc(), Collection.id, Document.position, Image.position, PersonLink.id)
                 .limit(LINKS_SHOWN))
        with self.catalogue.sessions() as session:
            return [_linked(row) for row in session.execute(query).all()]

    def link(self, link_id: int) -> Linked | None:
        with self.catalogue.sessions() as session:
            row = session.execute(_linked_query().where(PersonLink.id == link_id)).first()
        return _linked(row) if row else None

    def names(self, collection: str, document: str | None = None) -> dict[tuple[str, str], list[Name]]:
        """The confirmed names of shown people on the pages of one document (or of a small collection), by
        (document, page), in line order (top to bottom)."""
        query = (select(PersonLink.id, Person.id, Person.surname, Person.given_names, Document.ident, Image.ident,
                        PersonLink.x, PersonLink.y, PersonLink.w, PersonLink.h)
                 .join(Person, Person.id == PersonLink.person_id).join(Image, Image.pk == PersonLink.image_pk)
                 .join(Document, Document.pk == Image.document_pk)
                 .where(Document.collection_id == collection, PersonLink.kind == LINE,
                        PersonLink.state == CONFIRMED, Person.hidden.is_(False), PersonLink.x.is_not(None)))
        if document is not None:
            query = query.where(Document.ident == document)
        found: dict[tuple[str, str], list[Name]] = {}
        with self.catalogue.sessions() as session:
            for lid, pid, surname, given, did, page, x, y, w, h in session.execute(query).all():
                found.setdefault((did, page), []).append(Name(lid, pid, surname, given, page, (x, y, w, h)))
        for names in found.values():
            names.sort(key=lambda n: (n.box[1], n.box[0], n.link_id))
        return found

    # -- transports --------------------------------------------------------------------------------------

    def transports(self) -> list[Transport]:
        with self.catalogue.sessions() as session:
            return list(session.scalars(select(Transport).order_by(Transport.sort_key, Transport.id)))

    def transport(self, tid: str) -> Transport | None:
        with self.catalogue.sessions() as session:
            return session.get(Transport, tid)

    def people_of(self, tid: str, after: tuple[str, str] | None, limit: int) -> list[Person]:
        """Shown people of a transport in list order (number, then id), after the key `after`."""
        query = select(Person).where(Person.transport == tid, Person.hidden.is_(False))
        if after is not None:
            query = query.where(tuple_(Person.number_key, Person.id) > tuple_(*after))
        with self.catalogue.sessions() as session:
            return list(session.scalars(query.order_by(Person.number_key, Person.id).limit(limit)))

    def first_links(self, person_ids: Sequence[str], kind: str) -> dict[str, Linked]:
        """Each person's first confirmed link of a kind (their portrait, their line)."""
        if not person_ids:
            return {}
        query = (_linked_query().where(PersonLink.person_id.in_(list(person_ids)), PersonLink.kind == kind,
                                       PersonLink.state == CONFIRMED)
                 .order_by(PersonLink.person_id, Collection.id, Document.position, Image.position, PersonLink.id))
        found: dict[str, Linked] = {}
        with self.catalogue.sessions() as session:
            for row in session.execute(query).all():
                found.setdefault(str(row[1]), _linked(row))
        return found

    # -- the review --------------------------------------------------------------------------------------

    def suggestions(self, minimum: float, kind: str | None, after: tuple[float, int] | None,
                    limit: int) -> list[tuple[Linked, Person]]:
        """Suggestions scored `minimum` or more, best first, after the key (score, id) of the previous page."""
        person = aliased(Person)
        query = (_linked_query().add_columns(person).join(person, person.id == PersonLink.person_id)
                 .where(PersonLink.state == SUGGESTED, PersonLink.score >= minimum))
        if kind in (LINE, PORTRAIT):
            query = query.where(PersonLink.kind == kind)
        if after is not None:
            score, lid = after
            query = query.where(or_(PersonLink.score < score, and_(PersonLink.score == score, PersonLink.id > lid)))
        query = query.order_by(PersonLink.score.desc(), PersonLink.id).limit(limit)
        with self.catalogue.sessions() as session:
            return [(_linked(row[:-1]), row[-1]) for row in session.execute(query).all()]
