"""The documents of a shared ingest run (`ingest_work`), claimed through PostgreSQL by the processes doing the run.

A process claims the next few documents with `FOR UPDATE SKIP LOCKED` (two claims never wait for each other nor
take the same row), keeps its claims alive by renewing their lease, and marks a document done in the very
transaction that commits its pages (`done`): if its lease ran out meanwhile and another process took the
document, the mark fails and the whole commit is rolled back, so a document is committed once, by one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import IngestRun, IngestWork, now
from iiif_server.db.runs import LIVE

LEASE_SECONDS = 60  # a claim not renewed for this long is free again (its process died or lost the catalogue)


class Lost(Exception):
    """The claim on a document ran out and another process holds it now: this process's commit is void."""


@dataclass(frozen=True)
class Item:
    seq: int
    document: str
    name: str
    path: str


def shares(catalogue: Catalogue) -> bool:
    """Whether several processes can share a run: claims need PostgreSQL's row locks (SQLite has one writer)."""
    return catalogue.engine.dialect.name == "postgresql"


def publish(catalogue: Catalogue, rid: str, shared: dict[str, Any],
            documents: Sequence[tuple[str, str, str, int]]) -> None:
    """The run's documents to convert (ident, name, path, masters), in the source's order, then what a joining
    process needs to know; committed in slices so that a huge run never holds one giant transaction."""
    for start in range(0, len(documents), 1000):
        with catalogue.session() as session:
            session.add_all(IngestWork(run_id=rid, seq=start + n, document=ident, name=name, path=path,
                                       masters=masters, state="todo")
                            for n, (ident, name, path, masters) in enumerate(documents[start:start + 1000]))
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(shared=shared))


def joinable(catalogue: Catalogue, collection: str) -> IngestRun | None:
    """The live run of a collection, if any (with `shared` set once its work is published)."""
    with catalogue.sessions() as session:
        return session.scalars(select(IngestRun).where(IngestRun.collection_id == collection,
                                                       IngestRun.state == "running")
                               .order_by(IngestRun.created.desc()).limit(1)).first()


def going(catalogue: Catalogue, rid: str) -> bool:
    """Whether the run still takes work: live, not asked to stop, its leader not stopping."""
    with catalogue.sessions() as session:
        run = session.get(IngestRun, rid)
        return (run is not None and run.state in LIVE and run.stop_requested is None
                and not (run.shared or {}).get("halted"))


def halt(catalogue: Catalogue, rid: str) -> None:
    """The leader stops: the other processes take no more documents (they finish those in hand)."""
    with catalogue.session() as session:
        run = session.get(IngestRun, rid)
        if run is not None:
            run.shared = {**(run.shared or {}), "halted": True}


def held_by_others(catalogue: Catalogue, rid: str, me: str) -> bool:
    """Whether another process holds a document of the run on a live lease."""
    alive = now() - dt.timedelta(seconds=LEASE_SECONDS)
    with catalogue.sessions() as session:
        return session.scalar(select(IngestWork.seq).where(
            IngestWork.run_id == rid, IngestWork.state == "claimed", IngestWork.claimed_by != me,
            IngestWork.claimed_at >= alive).limit(1)) is not None


def claim(catalogue: Catalogue, rid: str, me: str, limit: int) -> list[Item]:
    """The next documents for this process: those whose claim ran out first, then the next in order."""
    with catalogue.session() as session:
        expired = now() - dt.timedelta(seconds=LEASE_SECONDS)
        rows = list(session.scalars(_free(session, rid, limit, IngestWork.state == "claimed",
                                          IngestWork.claimed_at < expired)))
        if len(rows) < limit:
            rows += session.scalars(_free(session, rid, limit - len(rows), IngestWork.state == "todo"))
        at = now()
        for row in rows:
            row.state, row.claimed_by, row.claimed_at = "claimed", me, at
        return [Item(row.seq, row.document, row.name, row.path) for row in rows]


def _free(session: Session, rid: str, limit: int, *where: Any) -> Any:
    query = select(IngestWork).where(IngestWork.run_id == rid, *where).order_by(IngestWork.seq).limit(limit)
    return query.with_for_update(skip_locked=True) if session.get_bind().dialect.name == "postgresql" else query


def renew(catalogue: Catalogue, rid: str, me: str) -> None:
    """Keep this process's claims alive."""
    with catalogue.session() as session:
        session.execute(update(IngestWork).where(IngestWork.run_id == rid, IngestWork.claimed_by == me,
                                                 IngestWork.state == "claimed").values(claimed_at=now()))


def done(session: Session, rid: str, seq: int, me: str, outcome: dict[str, Any]) -> None:
    """Inside the transaction committing the document: mark it done, or raise Lost (the commit rolls back)."""
    marked = session.execute(update(IngestWork).where(IngestWork.run_id == rid, IngestWork.seq == seq,
                                                      IngestWork.claimed_by == me, IngestWork.state == "claimed")
                             .values(state="done", outcome=outcome)).rowcount
    if not marked:
        raise Lost(f"document #{seq} of run {rid} was taken over by another process")


def release(catalogue: Catalogue, rid: str, me: str, seqs: Sequence[int]) -> None:
    """Give back claims this process will not do (it stops)."""
    with catalogue.session() as session:
        for start in range(0, len(seqs), 500):
            session.execute(update(IngestWork).where(IngestWork.run_id == rid, IngestWork.claimed_by == me,
                                                     IngestWork.state == "claimed",
                                                     IngestWork.seq.in_(seqs[start:start + 500]))
                            .values(state="todo", claimed_by=None, claimed_at=None))


def open_work(catalogue: Catalogue, rid: str) -> bool:
    """Whether any document of the run is not done (to do, or in some process's hands)."""
    with catalogue.sessions() as session:
        return session.scalar(select(IngestWork.seq).where(IngestWork.run_id == rid, IngestWork.state != "done")
                              .limit(1)) is not None


def done_by_others(catalogue: Catalogue, rid: str, me: str) -> int:
    """Masters the other processes of the run have converted so far (for the run's progress, now and then)."""
    with catalogue.sessions() as session:
        return session.scalar(select(func.coalesce(func.sum(IngestWork.masters), 0)).where(
            IngestWork.run_id == rid, IngestWork.state == "done", IngestWork.claimed_by != me)) or 0


def outcomes(catalogue: Catalogue, rid: str, me: str) -> Iterator[dict[str, Any]]:
    """What the other processes did, document by document, by key in slices (for the run's report)."""
    after = -1
    while True:
        with catalogue.sessions() as session:
            rows = session.execute(select(IngestWork.seq, IngestWork.outcome).where(
                IngestWork.run_id == rid, IngestWork.seq > after, IngestWork.state == "done",
                IngestWork.claimed_by != me).order_by(IngestWork.seq).limit(1000)).all()
        if not rows:
            return
        for seq, outcome in rows:
            after = seq
            if outcome:
                yield outcome


def forget(catalogue: Catalogue, rid: str) -> None:
    """The run is over: its work rows go (by key, in slices)."""
    while True:
        with catalogue.session() as session:
            seqs = session.scalars(select(IngestWork.seq).where(IngestWork.run_id == rid).limit(5000)).all()
            if not seqs:
                return
            session.execute(delete(IngestWork).where(IngestWork.run_id == rid, IngestWork.seq.in_(seqs)))
