"""`iiif-server persons suggest`: links between people and the pages that name them, proposed for staff review.

Two kinds of text name people: the label and metadata of portrait documents, and the name entries (CSV
indexes with boxes) of list pages. Each is read once, in key order and bounded batches, and each of its
words is looked up among the people's surnames (`PersonIndex.surname_candidates`: folded, Daitch–Mokotoff,
one letter off, as Content Search matches words: `search.names`); every person found is scored on surname,
given names and birth date (`namematch`), with the list's transport as a further clue. What scores at least
`KEEP` is stored as a suggestion with its score and reason; nothing is public before staff confirm it. Links
already known (suggested, confirmed or rejected), and lines another person is already confirmed on, are not
proposed again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import CONFIRMED, LINE, PORTRAIT, Document, Image, Person, PersonLink, TextEntry
from iiif_server.db.persons import Suggestion, box_text
from iiif_server.search import namematch
from iiif_server.search.namematch import EQUIVALENT, compare_birth, compare_given, compare_surname, dates_in
from iiif_server.search.persons import Entry, PersonIndex, load
from iiif_server.words import normalise as folded

THRESHOLD = 0.83  # the default score above which staff may accept all at once (bench/persons.py measures it)
KEEP = 0.6  # below this a suggestion is not stored at all
CANDIDATES = 3  # suggestions kept per text, best first
AMBIGUOUS = 0.03  # two people scored this close on one text: both lose AMBIGUITY
AMBIGUITY = 0.12
RUNNER_UP = 0.5  # a candidate behind the best loses half as much again as it trails by
DOCUMENTS = 200  # documents read per batch
BATCH = 2000  # suggestions written per transaction
_NUMBER = re.compile(r"^\s*(\d{1,5})\b")


@dataclass(frozen=True)
class Written:
    """A text that may name a person, where it stands, and what surrounds it."""

    text: str
    image_pk: int
    kind: str  # LINE or PORTRAIT
    box: tuple[int, int, int, int] | None
    transport: str | None = None  # the transport of the list or portrait, where known


@dataclass
class Report:
    examined: int = 0
    suggested: int = 0
    above: int = 0  # of those, scored THRESHOLD or more
    skipped_known: int = 0


def score(person: Entry, text: str, given_vocab: set[str], transport: str | None = None) -> tuple[float, str]:
    """How likely it is that `text` names `person` (0 ... 1), and why, in words staff can check."""
    words = namematch.name_words(text)
    surname, where, span = compare_surname(person.surname, words)
    if where is None:
        return 0.0, ""
    rest = words[:where] + words[where + span:]
    given = compare_given(person.given_names, rest)
    if given.score == 0.0 and not any(folded(w) in given_vocab or folded(w) in EQUIVALENT for w in rest
                                      if len(w) > 1):
        given = namematch.Compared(0.5, namematch.NONE, "no given name written")  # other words: not a conflict
    birth = compare_birth(person.birth_date, dates_in(text))
    value = 0.5 * surname.score + 0.35 * given.score + 0.15 * birth.score
    reasons = [surname.how, given.how, birth.how]
    if given.score == 0.0:
        value *= 0.7
    if birth.score == 0.0:
        value *= 0.6
    if transport and person.transport:
        if transport.casefold() == person.transport.casefold():
            value += 0.05
            reasons.append(f"on transport {transport}'s list")
        else:
            value *= 0.7
            reasons.append(f"transport {person.transport}, the list's is {transport}")
    number = _NUMBER.match(text)
    if number and person.number and number[1] == person.number.strip():
        value += 0.05
        reasons.append(f"number {person.number} on the list")
    return min(1.0, round(value, 4)), "; ".join(r for r in reasons if r)


def best(index: PersonIndex, written: Written, given_vocab: set[str]) -> list[tuple[Entry, float, str]]:
    """The people a text most likely names, best first, each scored KEEP or more (ambiguity lowers the scores)."""
    found: set[int] = set()
    for word in namematch.name_words(written.text):
        if len(word) > 1:
            found |= index.surname_candidates(word)
    scored = []
    for n in found:
        entry = index.entries[n]
        if entry.hidden:
            continue
        value, why = score(entry, written.text, given_vocab, written.transport)
        if value >= KEEP - AMBIGUITY:
            scored.append((entry, value, why))
    scored.sort(key=lambda s: (-s[1], s[0].id))
    if not scored:
        return []
    top = scored[0][1]
    close = sum(1 for s in scored if top - s[1] < AMBIGUOUS)
    ranked = []
    for entry, value, why in scored:
        if close > 1 and top - value < AMBIGUOUS:  # several people fit alike: staff must tell
            value, why = value - AMBIGUITY, f"{why}; {close} people match alike"
        elif value < top:  # one text names one person: the others fall behind the best by more
            value = value - RUNNER_UP * (top - value)
        ranked.append((entry, round(value, 4), why))
    scored = sorted(ranked, key=lambda s: (-s[1], s[0].id))
    return [s for s in scored if s[1] >= KEEP][:CANDIDATES]


def _transport_of(metadata: Any) -> str | None:
    if isinstance(metadata, list):
        for pair in metadata:
            if isinstance(pair, list | tuple) and len(pair) == 2 and str(pair[0]).strip().casefold() == "transport":
                return str(pair[1]).strip() or None
    return None


class Suggester:
    def __init__(self, catalogue: Catalogue, index: PersonIndex | None = None) -> None:
        self.catalogue = catalogue
        self.index = index or load(catalogue)
        self.given_vocab = {folded(w) for e in self.index.entries for w in namematch.name_words(e.given_names)}
        with catalogue.sessions() as session:
            links = session.execute(select(PersonLink.person_id, PersonLink.image_pk, PersonLink.kind,
                                           PersonLink.box, PersonLink.state)).all()
        self.known = {(p, i, k, b) for p, i, k, b, _ in links}  # any state: never proposed twice
        self.taken = {(i, k, b) for _, i, k, b, s in links if s == CONFIRMED}  # someone's confirmed place
        self.placed = {(p, i, k) for p, i, k, _, s in links if s == CONFIRMED}  # a person confirmed on a page

    def _documents(self, collections: Sequence[str]) -> Iterator[list[Any]]:
        """The collections' documents in key order, a batch at a time: (pk, label, metadata)."""
        last = 0
        while True:
            with self.catalogue.sessions() as session:
                rows = session.execute(select(Document.pk, Document.label, Document.metadata_pairs).where(
                    Document.collection_id.in_(collections), Document.pk > last)
                    .order_by(Document.pk).limit(DOCUMENTS)).all()
            if not rows:
                return
            yield list(rows)
            last = rows[-1][0]

    def portraits(self, collections: Sequence[str]) -> Iterator[Written]:
        """Each portrait document's label and metadata, as a text naming its first page."""
        for rows in self._documents(collections):
            with self.catalogue.sessions() as session:
                first = dict(session.execute(
                    select(Image.document_pk, func.min(Image.pk)).where(Image.document_pk.in_([r[0] for r in rows]))
                    .group_by(Image.document_pk)).all())
            for pk, label, metadata in rows:
                if pk not in first:
                    continue
                values = [str(p[1]) for p in metadata or [] if isinstance(p, list | tuple) and len(p) == 2]
                yield Written(" ; ".join([label or "", *values]), first[pk], PORTRAIT, None, _transport_of(metadata))

    def lines(self, collections: Sequence[str]) -> Iterator[Written]:
        """The name entries with boxes of the lists' pages (not single ALTO words)."""
        for rows in self._documents(collections):
            pks = [r[0] for r in rows]
            transports = {pk: _transport_of(meta) for pk, _, meta in rows}
            with self.catalogue.sessions() as session:
                confirmed = session.execute(
                    select(Image.document_pk, Person.transport, func.count())
                    .select_from(PersonLink).join(Image, Image.pk == PersonLink.image_pk)
                    .join(Person, Person.id == PersonLink.person_id)
                    .where(Image.document_pk.in_(pks), PersonLink.kind == LINE, PersonLink.state == CONFIRMED)
                    .group_by(Image.document_pk, Person.transport)).all()
                entries = session.execute(
                    select(TextEntry.document_pk, TextEntry.image_pk, TextEntry.text, TextEntry.x, TextEntry.y,
                           TextEntry.w, TextEntry.h).where(TextEntry.document_pk.in_(pks), TextEntry.kind != "word",
                                                           TextEntry.x.is_not(None))
                    .order_by(TextEntry.document_pk, TextEntry.id)).all()
            votes: dict[int, tuple[int, str]] = {}
            for doc, transport, count in confirmed:  # a list whose confirmed lines are mostly one transport's
                if transport and count > votes.get(doc, (0, ""))[0]:
                    votes[doc] = (count, transport)
            for doc, image, text, x, y, w, h in entries:
                transport = transports.get(doc) or votes.get(doc, (0, None))[1]
                yield Written(text, image, LINE, (x, y, w, h), transport)

    def run(self, portraits: Sequence[str], lists: Sequence[str],
            progress: Callable[[Report], None] | None = None) -> Report:
        report = Report()
        pending: list[Suggestion] = []

        def flush() -> None:
            report.suggested += self.catalogue.add_suggestions(pending)
            pending.clear()
            if progress:
                progress(report)

        for source in (self.portraits(portraits) if portraits else iter(()), self.lines(lists) if lists else iter(())):
            for written in source:
                report.examined += 1
                box = box_text(written.box)
                if (written.image_pk, written.kind, box) in self.taken:
                    report.skipped_known += 1
                    continue
                for entry, value, why in best(self.index, written, self.given_vocab):
                    key = (entry.id, written.image_pk, written.kind, box)
                    if key in self.known or (entry.id, written.image_pk, written.kind) in self.placed:
                        continue
                    self.known.add(key)
                    report.above += value >= THRESHOLD
                    pending.append(Suggestion(entry.id, written.image_pk, written.kind, written.box,
                                              written.text, value, why))
                if len(pending) >= BATCH:
                    flush()
        flush()
        return report


@dataclass
class Quality:
    """How the suggestions above a threshold fare on a labelled sample of written names."""

    suggested: int = 0  # suggestions above the threshold
    correct: int = 0  # of those, the right person
    expected: int = 0  # texts that name somebody of the sample
    found: int = 0  # of those, with the right person above the threshold

    @property
    def precision(self) -> float:
        return self.correct / self.suggested if self.suggested else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def quality(index: PersonIndex, samples: Sequence[tuple[str, str, str | None, str | None]],
            threshold: float = THRESHOLD) -> Quality:
    """`samples`: (text, kind, the list's transport, the person it names or None) each."""
    vocab = {folded(w) for e in index.entries for w in namematch.name_words(e.given_names)}
    q = Quality()
    for text, kind, transport, truth in samples:
        above = [e.id for e, v, _ in best(index, Written(text, 0, kind, None, transport), vocab) if v >= threshold]
        q.suggested += len(above)
        q.correct += sum(1 for pid in above if pid == truth)
        q.expected += truth is not None
        q.found += truth is not None and truth in above
    return q
