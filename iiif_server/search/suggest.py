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

import multiprocessing
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import CONFIRMED, LINE, PORTRAIT, Document, Image, Person, PersonLink, TextEntry
from iiif_server.db.persons import Suggestion
from iiif_server.search.linkscore import Scorer
from iiif_server.search.persons import PersonIndex, load

THRESHOLD = 0.83  # the default score above which staff may accept all at once (bench/persons.py measures it)
DOCUMENTS = 200  # documents read per batch
LISTS = 10  # lists read per batch (~800 entries each)
BATCH = 10_000  # suggestions written per transaction (a commit each)
CHUNK = 2000  # texts scored at a time (by one worker)


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


def _box(text: str | None) -> tuple[int, ...] | None:
    """A link's box as `Written` holds it (the box_text of the table, read back)."""
    return tuple(int(v) for v in text.split(",")) if text else None


def _transport_of(metadata: Any) -> str | None:
    if isinstance(metadata, list):
        for pair in metadata:
            if isinstance(pair, list | tuple) and len(pair) == 2 and str(pair[0]).strip().casefold() == "transport":
                return str(pair[1]).strip() or None
    return None


class Suggester:
    def __init__(self, catalogue: Catalogue, index: PersonIndex | None = None, workers: int = 1) -> None:
        """`workers`: processes that score texts (more than one: forked, each with its own bounded memos)."""
        self.catalogue = catalogue
        self.workers = workers
        self.index = index or load(catalogue)
        self.scorer = Scorer(self.index)
        with catalogue.sessions() as session:  # confirmed links only: at most a few per person
            links = session.execute(select(PersonLink.person_id, PersonLink.image_pk, PersonLink.kind,
                                           PersonLink.box).where(PersonLink.state == CONFIRMED)).all()
        self.taken = {(i, k, _box(b)) for _, i, k, b in links}  # someone's confirmed place
        self.placed = {(p, i, k) for p, i, k, _ in links}  # a person confirmed on a page

    def _documents(self, collections: Sequence[str], size: int = DOCUMENTS) -> Iterator[list[Any]]:
        """Each collection's documents in its order, a batch at a time: (pk, label, metadata). Paged by
        (position, pk) on the collection's position index, so a batch reads its own rows only (paging by pk
        alone made each batch read and sort the whole collection)."""
        for collection in collections:
            after: tuple[int, int] | None = None
            while True:
                query = select(Document.position, Document.pk, Document.label, Document.metadata_pairs).where(
                    Document.collection_id == collection)
                if after is not None:
                    query = query.where(tuple_(Document.position, Document.pk) > tuple_(*after))
                with self.catalogue.engine.connect() as connection:
                    rows = connection.execute(query.order_by(Document.position, Document.pk).limit(size)).all()
                if not rows:
                    break
                yield [row[1:] for row in rows]
                after = (rows[-1][0], rows[-1][1])

    def portraits(self, collections: Sequence[str]) -> Iterator[Written]:
        """Each portrait document's label and metadata, as a text naming its first page."""
        for rows in self._documents(collections):
            with self.catalogue.engine.connect() as session:
                first = dict(session.execute(
                    select(Image.document_pk, func.min(Image.pk)).where(Image.document_pk.in_([r[0] for r in rows]))
                    .group_by(Image.document_pk)).all())
            for pk, label, metadata in rows:
                if pk not in first:
                    continue
                values = [str(p[1]) for p in metadata or [] if isinstance(p, list | tuple) and len(p) == 2]
                yield Written(" ; ".join([label or "", *values]), first[pk], PORTRAIT, None, _transport_of(metadata))

    def lines(self, collections: Sequence[str]) -> Iterator[Written]:
        """The name entries with boxes of the lists' pages (not single ALTO words), a transport at a time: the
        lists grouped by the transport their metadata gives (those that give none last), so that the names of
        one transport are scored together while the scorer remembers them."""
        groups: dict[str, array[int]] = {}  # 8 bytes a list
        for rows in self._documents(collections):
            for pk, _, metadata in rows:
                groups.setdefault(_transport_of(metadata) or "", array("q")).append(pk)
        for given in sorted(groups, key=lambda t: (t == "", t)):
            documents = groups.pop(given)
            for start in range(0, len(documents), LISTS):
                yield from self._entries(list(documents[start:start + LISTS]), given or None)

    def _entries(self, pks: list[int], given: str | None) -> Iterator[Written]:
        with self.catalogue.engine.connect() as session:  # Core rows: no ORM work a line
            confirmed = [] if given else session.execute(
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
            yield Written(text, image, LINE, (x, y, w, h), given or votes.get(doc, (0, None))[1])

    def run(self, portraits: Sequence[str], lists: Sequence[str],
            progress: Callable[[Report], None] | None = None) -> Report:
        report = Report()
        pending: list[Suggestion] = []

        def flush() -> None:  # links known already (in any state) are left out as they are written
            added = self.catalogue.add_suggestions(pending)
            report.suggested += len(added)
            report.above += sum(1 for s in added if s.score >= THRESHOLD)
            pending.clear()
            if progress:
                progress(report)

        for written, found in self._scored(portraits, lists, report):
            for person_id, value, why in found:
                if (person_id, written.image_pk, written.kind) in self.placed:
                    continue
                pending.append(Suggestion(person_id, written.image_pk, written.kind, written.box, written.text,
                                          value, why))
            if len(pending) >= BATCH:
                flush()
        flush()
        return report

    def _texts(self, portraits: Sequence[str], lists: Sequence[str], report: Report) -> Iterator[list[Written]]:
        """The texts to score, CHUNK at a time, those on a place someone is confirmed on left out."""
        chunk: list[Written] = []
        for source in (self.portraits(portraits) if portraits else iter(()), self.lines(lists) if lists else iter(())):
            for written in source:
                report.examined += 1
                if (written.image_pk, written.kind, written.box) in self.taken:
                    report.skipped_known += 1
                    continue
                chunk.append(written)
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _scored(self, portraits: Sequence[str], lists: Sequence[str],
                report: Report) -> Iterator[tuple[Written, list[Found]]]:
        """Each text with the people it most likely names, in order; over `workers` processes, each scoring a
        chunk at a time, at most two chunks each in flight."""
        chunks = self._texts(portraits, lists, report)
        if self.workers < 2:
            for chunk in chunks:
                yield from zip(chunk, _score(self.scorer, chunk), strict=True)
            return
        global _SCORER
        _SCORER = self.scorer  # the workers are forked: they inherit it, nothing is copied
        with multiprocessing.get_context("fork").Pool(self.workers) as pool:
            flight: deque[tuple[list[Written], Any]] = deque()
            for chunk in chunks:
                flight.append((chunk, pool.apply_async(_score_in_worker, ([(w.text, w.transport) for w in chunk],))))
                while len(flight) > 2 * self.workers or (flight and flight[0][1].ready()):
                    done, result = flight.popleft()
                    yield from zip(done, result.get(), strict=True)
            while flight:
                done, result = flight.popleft()
                yield from zip(done, result.get(), strict=True)
        _SCORER = None


Found = tuple[str, float, str]  # a person's id, score and reason
_SCORER: Scorer | None = None  # in a worker process: the parent's


def _score(scorer: Scorer, chunk: Sequence[Written]) -> list[list[Found]]:
    return [[(e.id, v, why) for e, v, why in scorer.best(w.text, w.transport)] for w in chunk]


def _score_in_worker(texts: list[tuple[str, str | None]]) -> list[list[Found]]:
    assert _SCORER is not None
    return [[(e.id, v, why) for e, v, why in _SCORER.best(text, transport)] for text, transport in texts]


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
    scorer = Scorer(index)
    q = Quality()
    for text, _, transport, truth in samples:
        above = [e.id for e, v, _ in scorer.best(text, transport) if v >= threshold]
        q.suggested += len(above)
        q.correct += sum(1 for pid in above if pid == truth)
        q.expected += truth is not None
        q.found += truth is not None and truth in above
    return q
