"""The catalogue's writes about people, one transaction each (methods of `Catalogue`): the persons CSV
replacing what it gave before, suggestions from matching, staff decisions on them, hiding a person.

A confirmed line link is a name annotation on its list page's canvas: any change to the set of those
(a decision, a hidden person, an import) touches the list page's collection (its manifests' cache key)
and records an Update of the document's manifest for harvesters. Transport counts are kept here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from iiif_server.db.bulk import IN_LIST, chunks
from iiif_server.db.models import (
    CONFIRMED,
    FROM_CSV,
    LINE,
    PORTRAIT,
    REJECTED,
    SUGGESTED,
    Collection,
    Document,
    Image,
    Person,
    PersonLink,
    State,
    Transport,
    effective_tier,
    now,
    sort_key,
)

PERSONS = "persons"  # catalogue_state key: changes with anything about people (pages' cache key)
PERSON_INDEX = "person_index"  # changes with names, filters or hiding (the search index's key)


@dataclass(frozen=True)
class PersonFields:
    """One person as a row of the persons CSV gives them (already checked)."""

    id: str
    surname: str
    given_names: str = ""
    birth_date: str | None = None
    birth_place: str | None = None
    nationality: str | None = None
    transport: str | None = None
    number: str | None = None
    transport_date: str | None = None
    destination: str | None = None
    line: int = 0


@dataclass(frozen=True)
class LinkSpec:
    """A link a CSV row gives: a page (`collection/document/page`, or `collection/document` for its first page),
    and the box of the line on it."""

    person_id: str
    kind: str
    target: tuple[str, ...]
    box: tuple[int, int, int, int] | None = None
    line: int = 0


@dataclass(frozen=True)
class Suggestion:
    person_id: str
    image_pk: int
    kind: str
    box: tuple[int, int, int, int] | None
    text: str
    score: float
    reason: str


@dataclass
class Imported:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    links: int = 0
    missing: list[str] = field(default_factory=list)  # catalogue persons the file does not name
    removed: int = 0
    warnings: list[str] = field(default_factory=list)  # (line, what) of links to unknown pages


def box_text(box: tuple[int, int, int, int] | None) -> str:
    return ",".join(str(v) for v in box) if box else ""



def check_date(year: int, month: int | None = None, day: int | None = None) -> str:
    """A date as precise as known, `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, of a real day; or ValueError."""
    if day is not None and month is not None:
        return dt.date(year, month, day).isoformat()
    dt.date(year, month or 1, 1)
    return f"{year:04d}-{month:02d}" if month is not None else f"{year:04d}"


def birth_year(date: str | None) -> int | None:
    return int(date[:4]) if date else None


class PersonWrites:
    """Mixed into `Catalogue` (which provides sessions, locking and recording)."""

    session: Any
    lock_activities: Any
    record: Any
    record_whole: Any
    touch: Any
    whole_pages: Any

    # -- bookkeeping ------------------------------------------------------------------------------------

    def persons_changed(self, session: Session, index: bool = False) -> None:
        """A new persons revision (person pages' cache key); `index`: names or filters changed too."""
        for key in (PERSONS, PERSON_INDEX) if index else (PERSONS,):
            if session.get(State, key) is None:
                session.add(State(key=key, value=1))
                session.flush()
            else:
                session.execute(update(State).where(State.key == key).values(value=State.value + 1))

    def annotations_changed(self, session: Session, image_pks: Iterable[int]) -> None:
        """The name annotations of these pages changed: their documents' manifests are Updated and their
        collections touched (the manifests' cache key)."""
        pks = sorted(set(image_pks))
        if not pks:
            return
        self.lock_activities(session)
        docs: dict[tuple[str, str], str] = {}
        collections: dict[str, str] = {}
        for chunk in chunks(pks):
            rows = session.execute(
                select(Collection.id, Collection.tier, Document.ident, Document.tier).select_from(Image)
                .join(Document, Document.pk == Image.document_pk)
                .join(Collection, Collection.id == Document.collection_id)
                .where(Image.pk.in_(chunk)).distinct()).all()
            for cid, ctier, ident, dtier in rows:
                docs[(cid, ident)] = effective_tier(dtier, ctier)
                collections[cid] = ctier
        for (cid, ident), tier in sorted(docs.items()):
            self.record(session, "Update", "Manifest", cid, ident, tier)
        for cid, tier in sorted(collections.items()):
            pages = self.whole_pages(session, cid)
            self.record_whole(session, cid, tier, pages, pages)
            self.touch(session, cid)

    @staticmethod
    def recount(session: Session, transports: Iterable[str | None]) -> None:
        """Each transport's people (not hidden) and of them those with a confirmed portrait, counted anew."""
        wanted = sorted({t for t in transports if t})
        for chunk in chunks(wanted):
            people = dict(session.execute(
                select(Person.transport, func.count()).where(Person.transport.in_(chunk), Person.hidden.is_(False))
                .group_by(Person.transport)).all())
            portrait = select(PersonLink.person_id).where(PersonLink.kind == PORTRAIT,
                                                          PersonLink.state == CONFIRMED).distinct().subquery()
            portraits = dict(session.execute(
                select(Person.transport, func.count()).join(portrait, portrait.c.person_id == Person.id)
                .where(Person.transport.in_(chunk), Person.hidden.is_(False)).group_by(Person.transport)).all())
            for tid in chunk:
                session.execute(update(Transport).where(Transport.id == tid).values(
                    people=people.get(tid, 0), portraits=portraits.get(tid, 0)))

    # -- the persons CSV --------------------------------------------------------------------------------

    def import_persons(self, people: Sequence[PersonFields], links: Sequence[LinkSpec],
                       remove_missing: bool = False) -> Imported:
        """The file's people and links replace what an earlier import gave: persons are written as the file
        has them; each named person's CSV links become the file's; persons it does not name are kept (and
        listed), or removed with `remove_missing`. Suggestions and staff decisions on other pages stay."""
        done = Imported()
        with self.session() as session:
            self.lock_activities(session)  # an import may Update manifests: take the lock before any write
            existing: dict[str, tuple[Any, ...]] = {}
            for row in session.execute(select(Person.id, Person.surname, Person.given_names, Person.birth_date,
                                              Person.birth_place, Person.nationality, Person.transport,
                                              Person.number)):
                existing[row[0]] = tuple(row[1:])
            touched_transports: set[str | None] = set()
            changed_pages: set[int] = set()
            new_rows, changed_rows = [], []
            stamp = now()
            for p in people:
                values = (p.surname, p.given_names, p.birth_date, p.birth_place, p.nationality, p.transport, p.number)
                old = existing.get(p.id)
                if old == values:
                    done.unchanged += 1
                    continue
                row = {"surname": p.surname, "given_names": p.given_names, "birth_date": p.birth_date,
                       "birth_year": birth_year(p.birth_date), "birth_place": p.birth_place,
                       "nationality": p.nationality, "transport": p.transport, "number": p.number,
                       "number_key": sort_key(p.number or ""), "updated": stamp}
                touched_transports.add(p.transport)
                if old is None:
                    new_rows.append({"id": p.id, "hidden": False, "created": stamp, **row})
                    done.new += 1
                else:
                    touched_transports.add(old[5])
                    changed_rows.append({"pid": p.id, **row})
                    done.updated += 1
            for chunk in chunks(new_rows, 2000):
                session.execute(insert(Person), list(chunk))
            if changed_rows:
                table = Person.__table__
                session.execute(table.update().where(table.c.id == bindparam("pid")), changed_rows)
            for chunk in chunks([r["pid"] for r in changed_rows]):  # their names on the lists change
                changed_pages |= self._confirmed_lines(session, chunk)
            named = {p.id for p in people}
            done.missing = sorted(set(existing) - named)
            if remove_missing and done.missing:
                for chunk in chunks(done.missing):
                    changed_pages |= self._confirmed_lines(session, person_ids=chunk)
                    touched_transports |= set(session.scalars(select(Person.transport).where(Person.id.in_(chunk))))
                    session.execute(delete(PersonLink).where(PersonLink.person_id.in_(chunk)))
                    session.execute(delete(Person).where(Person.id.in_(chunk)))
                done.removed = len(done.missing)
            self._transports(session, people)
            changed_pages |= self._replace_csv_links(session, [p.id for p in people], links, done)
            linked = {s.person_id for s in links}  # once: not for each person (that took 26,000 x 9,000 steps)
            touched_transports |= {p.transport for p in people if p.id in linked}
            self.recount(session, touched_transports | {p.transport for p in people})
            self.annotations_changed(session, changed_pages)
            self.persons_changed(session, index=bool(done.new or done.updated or done.removed))
        return done

    @staticmethod
    def _transports(session: Session, people: Sequence[PersonFields]) -> None:
        """Transports named by the file exist, with the date and destination the file gives."""
        given: dict[str, tuple[str | None, str | None]] = {}
        for p in people:
            if p.transport:
                date, place = given.get(p.transport, (None, None))
                given[p.transport] = (date or p.transport_date, place or p.destination)
        known = {t.id: t for t in session.scalars(select(Transport))}
        for tid, (date, place) in given.items():
            row = known.get(tid)
            if row is None:
                session.add(Transport(id=tid, sort_key=transport_key(tid), date=date, destination=place))
            else:
                row.date = date or row.date
                row.destination = place or row.destination
        session.flush()

    @staticmethod
    def _confirmed_lines(session: Session, person_ids: Sequence[str]) -> set[int]:
        return set(session.scalars(select(PersonLink.image_pk).where(
            PersonLink.person_id.in_(person_ids), PersonLink.kind == LINE, PersonLink.state == CONFIRMED)))

    def _replace_csv_links(self, session: Session, person_ids: Sequence[str], links: Sequence[LinkSpec],
                           done: Imported) -> set[int]:
        """The CSV links of these persons become `links` (confirmed); the pages whose name annotations change."""
        changed: set[int] = set()
        for chunk in chunks(list(person_ids)):
            old = session.execute(select(PersonLink.image_pk, PersonLink.kind, PersonLink.state).where(
                PersonLink.person_id.in_(chunk), PersonLink.origin == FROM_CSV)).all()
            changed |= {pk for pk, kind, state in old if kind == LINE and state == CONFIRMED}
            session.execute(delete(PersonLink).where(PersonLink.person_id.in_(chunk), PersonLink.origin == FROM_CSV))
        pages = self._resolve(session, {spec.target for spec in links})
        stamp = now()
        rows: dict[tuple[str, int, str, str], dict[str, Any]] = {}
        for spec in links:
            found = pages.get(spec.target)
            if found is None:
                done.warnings.append(f"{spec.line}: no page {'/'.join(spec.target)} in the catalogue: "
                                     f"the {spec.kind} link of {spec.person_id} is left out")
                continue
            image_pk, width, height = found
            box = spec.box
            if box and (box[0] + box[2] > width or box[1] + box[3] > height):
                done.warnings.append(f"{spec.line}: box {box_text(box)} is outside the page "
                                     f"{'/'.join(spec.target)} ({width}×{height}): the link is left out")
                continue
            x, y, w, h = box if box else (None, None, None, None)
            rows[(spec.person_id, image_pk, spec.kind, box_text(box))] = {
                "person_id": spec.person_id, "image_pk": image_pk, "kind": spec.kind, "box": box_text(box),
                "x": x, "y": y, "w": w, "h": h, "state": CONFIRMED, "origin": FROM_CSV, "created": stamp,
                "decided_by": "persons CSV", "decided_at": stamp}
        keys = list(rows)
        for chunk in chunks(keys):  # the file wins over a suggestion or decision on the same link
            session.execute(delete(PersonLink).where(tuple_(
                PersonLink.person_id, PersonLink.image_pk, PersonLink.kind, PersonLink.box).in_(chunk)))
        for chunk in chunks(list(rows.values()), 2000):
            session.execute(insert(PersonLink), list(chunk))
        changed |= {pk for (_, pk, kind, _) in keys if kind == LINE}
        done.links = len(rows)
        return changed

    @staticmethod
    def _resolve(session: Session, targets: set[tuple[str, ...]]) -> dict[tuple[str, ...], tuple[int, int, int]]:
        """(image pk, width, height) of each `collection/document[/page]` the catalogue holds (a document: its
        first page)."""
        docs = sorted({t[:2] for t in targets if len(t) in (2, 3)})
        found: dict[tuple[str, ...], tuple[int, int, int]] = {}
        for chunk in chunks(docs):
            rows = session.execute(
                select(Document.collection_id, Document.ident, Image.ident, Image.pk, Image.width, Image.height,
                       Image.position).join(Image, Image.document_pk == Document.pk)
                .where(tuple_(Document.collection_id, Document.ident).in_(chunk))
                .order_by(Document.pk, Image.position)).all()
            for cid, did, page, pk, width, height, _ in rows:
                found.setdefault((cid, did), (pk, width, height))
                found[(cid, did, page)] = (pk, width, height)
        return {t: found[t] for t in targets if t in found}

    # -- suggestions and decisions ----------------------------------------------------------------------

    def add_suggestions(self, suggestions: Sequence[Suggestion]) -> list[Suggestion]:
        """New suggestions, leaving alone any link already known (suggested, confirmed or rejected); those added."""
        if not suggestions:
            return []
        added: list[Suggestion] = []
        with self.session() as session:
            keys = [(s.person_id, s.image_pk, s.kind, box_text(s.box)) for s in suggestions]
            known: set[tuple[Any, ...]] = set()
            # the links of these pages, on the image index (a few dozen a page): SQLite answers an IN of
            # (person, image, kind, box) rows by scanning every link, which grew with each batch written
            for chunk in chunks(sorted({s.image_pk for s in suggestions})):
                known |= {tuple(r) for r in session.execute(select(
                    PersonLink.person_id, PersonLink.image_pk, PersonLink.kind, PersonLink.box).where(
                    PersonLink.image_pk.in_(chunk)))}
            stamp = now()
            rows = []
            for key, s in zip(keys, suggestions, strict=True):
                if key in known:
                    continue
                known.add(key)
                added.append(s)
                x, y, w, h = s.box if s.box else (None, None, None, None)
                rows.append({"person_id": s.person_id, "image_pk": s.image_pk, "kind": s.kind, "box": key[3],
                             "x": x, "y": y, "w": w, "h": h, "text": s.text[:1000], "state": SUGGESTED,
                             "origin": "suggest", "score": round(s.score, 4), "reason": s.reason[:1000],
                             "created": stamp})
            for chunk in chunks(rows, 2000):  # Core's executemany: the ORM's bulk insert cost as much again
                session.connection().execute(insert(PersonLink.__table__), list(chunk))
            if added:
                self.persons_changed(session)
        return added

    def decide(self, link_ids: Sequence[int], state: str, who: str) -> list[PersonLink]:
        """Confirm or reject links (any state may be changed: a confirmed link can be rejected later);
        the links changed, as they are now."""
        if state not in (CONFIRMED, REJECTED):
            raise ValueError(f"a decision confirms or rejects, not {state!r}")
        with self.session() as session:
            self.lock_activities(session)
            found = list(session.scalars(select(PersonLink).where(PersonLink.id.in_(list(link_ids)[:IN_LIST]),
                                                                  PersonLink.state != state)))
            return self._decided(session, found, state, who)

    def decide_above(self, score: float, who: str, limit: int = 10_000) -> list[PersonLink]:
        """Confirm every suggestion scored `score` or more (at most `limit` at once, best first)."""
        with self.session() as session:
            self.lock_activities(session)
            found = list(session.scalars(select(PersonLink).where(
                PersonLink.state == SUGGESTED, PersonLink.score >= score)
                .order_by(PersonLink.score.desc(), PersonLink.id).limit(limit)))
            return self._decided(session, found, CONFIRMED, who)

    def _decided(self, session: Session, links: list[PersonLink], state: str, who: str) -> list[PersonLink]:
        if not links:
            return []
        stamp = now()
        hidden = set(session.scalars(select(Person.id).where(Person.id.in_({lk.person_id for lk in links}),
                                                             Person.hidden.is_(True))))
        # a name annotation comes or goes where a shown person's line link enters or leaves `confirmed`
        pages = {link.image_pk for link in links if link.kind == LINE and link.person_id not in hidden
                 and (link.state == CONFIRMED) != (state == CONFIRMED)}
        people = {link.person_id for link in links if link.kind == PORTRAIT}
        for link in links:
            link.state, link.decided_by, link.decided_at = state, who[:500], stamp
        session.flush()
        self.annotations_changed(session, pages)
        if people:
            self.recount(session, session.scalars(select(Person.transport).where(Person.id.in_(people))))
        self.persons_changed(session)
        return links

    def set_hidden(self, person_id: str, hidden: bool) -> Person | None:
        """Hide a person from visitors (or show them again); None when there is no such person."""
        with self.session() as session:
            self.lock_activities(session)
            person = session.get(Person, person_id)
            if person is None:
                return None
            if person.hidden != hidden:
                person.hidden = hidden
                session.flush()
                self.annotations_changed(session, self._confirmed_lines(session, [person_id]))
                self.recount(session, [person.transport])
                self.persons_changed(session, index=True)
            return person


ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def transport_key(tid: str) -> str:
    """Transports in their order: Roman numerals (the Dossin transports I ... XXVI) by their value, others in
    natural order after them."""
    text = tid.strip().upper()
    if text and all(c in ROMAN for c in text):
        total = 0
        for n, c in enumerate(text):
            value = ROMAN[c]
            total += -value if n + 1 < len(text) and ROMAN[text[n + 1]] > value else value
        return f"0{total:08d}"
    return "1" + sort_key(tid)


