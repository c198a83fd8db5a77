"""Ingest runs in the catalogue (`ingest_runs`): created by whoever starts a run (the console, or the command
line itself), beaten by the run every second with its progress, asked to stop from any replica, ended by the
run; and swept: a run whose heartbeat stopped while its collection's run lock is free died without finishing,
and is marked interrupted (the next run of that collection finishes what it committed)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import select, update

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import IngestRun, now
from iiif_server.errors import Busy

LIVE = ("starting", "running")
STALE_SECONDS = 10  # a live run's heartbeat older than this: perhaps dead (the lock decides)
INTERRUPTED = ("its process ended without finishing (the server or machine running it stopped); the next run of "
               "this collection finishes what it had committed")
HELPER_GONE = ("this process helping a shared run ended without finishing; the documents it held went back to the "
               "run's other processes")


def create(catalogue: Catalogue, collection: str, source: str, started_by: str, *, tier: str | None = None,
           metadata_csv: str | None = None, subject: str | None = None) -> str:
    rid = secrets.token_hex(8)
    with catalogue.session() as session:
        session.add(IngestRun(id=rid, collection_id=collection, source=source, tier=tier, metadata_csv=metadata_csv,
                              started_by=started_by, subject=subject, state="starting", created=now()))
    return rid


def get(catalogue: Catalogue, rid: str) -> IngestRun | None:
    with catalogue.sessions() as session:
        return session.get(IngestRun, rid)


def begin(catalogue: Catalogue, rid: str, host: str, pid: int) -> None:
    """The run's process is up: where it runs, its first heartbeat."""
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(host=host, pid=pid, heartbeat=now()))


def locked(catalogue: Catalogue, rid: str, collection: str) -> None:
    """The run holds its collection's lock: it runs; every other live run of the collection is dead."""
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.collection_id == collection, IngestRun.id != rid,
                                                IngestRun.state.in_(LIVE))
                        .values(state="interrupted", ended=now(), message=INTERRUPTED))
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(state="running", heartbeat=now()))


def helping(catalogue: Catalogue, rid: str, leader: str) -> None:
    """The run's process helps another run of its collection (`--join`): its row is not a live run of its own
    (the leader's is: stopping that stops its helpers), only a record of what this process did."""
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(
            state="helping", heartbeat=now(), message=f"helping run {leader}"))


def beat(catalogue: Catalogue, rid: str, done: int, total: int | None, failed: int) -> bool:
    """A heartbeat with the progress; whether a stop was asked."""
    with catalogue.session() as session:
        run = session.get(IngestRun, rid)
        if run is None:
            return False
        run.heartbeat = now()
        run.done, run.total, run.failed = done, total, failed
        if total and run.converting_since is None:
            run.converting_since = now()
        return run.stop_requested is not None


def end(catalogue: Catalogue, rid: str, state: str, *, report: str | None = None, message: str | None = None,
        done: int | None = None, failed: int | None = None) -> None:
    values: dict[str, object] = {"state": state, "ended": now(), "report": report, "message": message}
    if done is not None:
        values["done"] = done
    if failed is not None:
        values["failed"] = failed
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(**values))


def ask_stop(catalogue: Catalogue, rid: str, by: str) -> IngestRun | None:
    """Ask a live run to stop (it does at its next heartbeat, on whichever host it runs); the row, or None."""
    with catalogue.session() as session:
        run = session.get(IngestRun, rid)
        if run is None:
            return None
        if run.state in LIVE and run.stop_requested is None:
            run.stop_requested, run.stop_by = now(), by
        return run


def fresh(run: IngestRun, at: dt.datetime | None = None) -> bool:
    """Whether a live run has given a sign of life lately."""
    seen = run.heartbeat or run.created
    seen = seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)
    return (at or now()) - seen <= dt.timedelta(seconds=STALE_SECONDS)


def live(catalogue: Catalogue, limit: int = 50) -> Sequence[IngestRun]:
    """The runs not ended, newest first."""
    with catalogue.sessions() as session:
        return session.scalars(select(IngestRun).where(IngestRun.state.in_(LIVE))
                               .order_by(IngestRun.created.desc()).limit(limit)).all()


def recent(catalogue: Catalogue, limit: int) -> Sequence[IngestRun]:
    """The latest runs, newest first (by their index on `created`)."""
    with catalogue.sessions() as session:
        return session.scalars(select(IngestRun).order_by(IngestRun.created.desc(), IngestRun.id.desc())
                               .limit(limit)).all()


def running_in(catalogue: Catalogue, collection: str) -> IngestRun | None:
    """A live run of the collection that is alive, after sweeping those that died."""
    sweep(catalogue)
    with catalogue.sessions() as session:
        rows = session.scalars(select(IngestRun).where(IngestRun.collection_id == collection,
                                                       IngestRun.state.in_(LIVE))).all()
    return next((r for r in rows if fresh(r)), None)


def sweep(catalogue: Catalogue) -> int:
    """Mark interrupted the live runs whose heartbeat stopped and whose collection's lock is free (its holder
    is gone: the lock ends with its process, and on PostgreSQL with its connection), and the helpers of shared
    runs whose heartbeat stopped. How many."""
    marked = 0
    for run in live(catalogue):
        if fresh(run):
            continue
        try:
            with catalogue.run_lock(run.collection_id):
                with catalogue.session() as session:
                    marked += session.execute(
                        update(IngestRun).where(IngestRun.id == run.id, IngestRun.state.in_(LIVE))
                        .values(state="interrupted", ended=now(), message=INTERRUPTED)).rowcount or 0
        except Busy:
            continue  # still held: alive, only slow to beat (or its host vanished without closing)
    with catalogue.session() as session:  # a helper of a shared run holds no lock: its heartbeat decides
        marked += session.execute(
            update(IngestRun).where(IngestRun.state == "helping",
                                    IngestRun.heartbeat < now() - dt.timedelta(seconds=STALE_SECONDS))
            .values(state="interrupted", ended=now(), message=HELPER_GONE)).rowcount or 0
    return marked
