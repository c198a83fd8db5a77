"""This process's part in an ingest run shared by several processes (on one host or several) through PostgreSQL.

The process that takes the collection's run lock leads: it scans the source, plans, publishes the documents that
need converting (db/work.py) and does its share of them; the processes started with `--join` while it runs help:
each claims the next few documents, plans them anew from the shared source folder, converts them and commits each
one with its done mark. The leader waits until every document is done, puts what the helpers did into its
report, and ends the run as a single run ends (the collection's order and its Update).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from iiif_server.auth.snapshot import MAX_AGE
from iiif_server.db import work
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import IngestRun
from iiif_server.errors import Busy
from iiif_server.ingest.report import Report
from iiif_server.ingest.scan import SourceDocument, scan_document
from iiif_server.names import shown

RENEW_SECONDS = 10.0  # well inside the lease (work.LEASE_SECONDS)
IDLE_SECONDS = 0.5  # between two claims that found nothing while others still work
WAIT_LEADER = 60.0  # a joining process waits this long for the run holding the lock to show itself


class Share:
    def __init__(self, catalogue: Catalogue, rid: str, leader: bool) -> None:
        self.catalogue = catalogue
        self.rid = rid
        self.leader = leader
        self.me = secrets.token_hex(8)
        self.held: dict[str, int] = {}  # document ident -> its claimed row, until committed
        self._renewed = time.monotonic()
        self._idle_until = 0.0
        self._others = (0.0, 0)  # when last read, masters the others converted
        self._halted = False

    def publish(self, shared: dict[str, Any], documents: list[tuple[str, str, str, int]]) -> None:
        work.publish(self.catalogue, self.rid, shared, documents)

    def claim(self, limit: int) -> list[work.Item]:
        """The next documents for this process (none while the run stops, or shortly after finding none)."""
        if time.monotonic() < self._idle_until:
            return []
        items = work.claim(self.catalogue, self.rid, self.me, limit) if work.going(self.catalogue, self.rid) else []
        if not items:
            self._idle_until = time.monotonic() + IDLE_SECONDS
        for item in items:
            self.held[item.document] = item.seq
        return items

    def tick(self) -> None:
        if self.held and time.monotonic() - self._renewed > RENEW_SECONDS:
            work.renew(self.catalogue, self.rid, self.me)
            self._renewed = time.monotonic()

    def more(self) -> bool:
        """Whether to wait for more: the leader until every document is done, a helper while the run goes."""
        time.sleep(IDLE_SECONDS)
        if not self.leader and not work.going(self.catalogue, self.rid):
            return False
        return work.open_work(self.catalogue, self.rid)

    def drain(self, until: float) -> bool:
        """The leader stops: the others take no more; whether to wait on for the documents they hold (until
        `until`, the stop's grace), so that their commits still find the run's rows."""
        if not self._halted:
            work.halt(self.catalogue, self.rid)
            self._halted = True
        if time.monotonic() > until:
            return False
        time.sleep(IDLE_SECONDS)
        return work.held_by_others(self.catalogue, self.rid, self.me)

    def marker(self, ident: str, outcome: dict[str, Any]) -> Callable[[Session], None]:
        seq = self.held[ident]
        return lambda session: work.done(session, self.rid, seq, self.me, outcome)

    def done_alone(self, ident: str, outcome: dict[str, Any]) -> None:
        """A claimed document with nothing to commit (nothing changed, or refused): done all the same."""
        with self.catalogue.session() as session:
            self.marker(ident, outcome)(session)
        self.held.pop(ident, None)

    def release(self) -> None:
        if self.held:
            work.release(self.catalogue, self.rid, self.me, sorted(self.held.values()))
            self.held.clear()

    def others_done(self, force: bool = False) -> int:
        """Masters the other processes converted (read at most every few seconds)."""
        at, count = self._others
        if self.leader and (force or time.monotonic() - at > 5):
            self._others = (time.monotonic(), work.done_by_others(self.catalogue, self.rid, self.me))
        return self._others[1]

    def fold(self, report: Report) -> None:
        """The leader's report gets what the other processes did: the run's report holds every page."""
        for outcome in work.outcomes(self.catalogue, self.rid, self.me):
            report.by_others += outcome.get("converted", 0)
            report.converted += outcome.get("converted", 0)
            report.unchanged += outcome.get("unchanged", 0)
            report.failed += [(Path(path), reason) for path, reason in outcome.get("failed", [])]

    def forget(self) -> None:
        work.forget(self.catalogue, self.rid)


def find_run(catalogue: Catalogue, collection: str, source: str, stopped: Callable[[], bool]) -> IngestRun | None:
    """The run of `collection` to help, once its work is published; None when it ended before (nothing left).
    Busy when it cannot be joined: SQLite, another source folder, or no run showing itself."""
    if not work.shares(catalogue):
        raise Busy(f"another ingest of collection {collection!r} is running, and sharing a run between processes "
                   "needs PostgreSQL (on SQLite one process ingests a collection: give it more --workers)")
    waited = 0.0
    seen = False
    while not stopped():
        run = work.joinable(catalogue, collection)
        if run is None and seen:
            return None  # it ended while planning: nothing left to share
        if run is None and waited > WAIT_LEADER:
            raise Busy(f"another ingest of collection {collection!r} holds it but does not show a running run to "
                       "join: let it finish, or stop it")
        if run is not None:
            seen = True
            if run.source != source:
                raise Busy(f"collection {collection!r} is being ingested from {run.source}, not {source}: join it "
                           "with the same folder (mounted at the same path on every host)")
            if run.shared is not None:
                return run
        time.sleep(1.0)
        waited += 1.0
    return None


def options_of(ingest: Any) -> dict[str, Any]:
    """What a process joining the run converts with: the leader's options."""
    return {"quality": ingest.quality, "subsample": ingest.subsample, "thumbnail_quality": ingest.thumbnail_quality,
            "withdraw_missing": ingest.withdraw_missing, "new_source": ingest.new_source, "exclude": ingest.exclude}


def help_run(ingest: Any, src: Path, progress: Any, joined: Callable[[str], None] | None) -> Report:
    """`ingest` (an Ingest) converts and commits a share of the run holding its collection, with that run's
    options; its report holds what this process did."""
    report = Report()
    run = find_run(ingest.catalogue, ingest.collection, shown(src.resolve()), lambda: ingest.stopped is not None)
    if run is None or run.shared is None:
        return report
    options = run.shared
    ingest.quality, ingest.subsample = options["quality"], options["subsample"]
    ingest.thumbnail_quality, ingest.exclude = options["thumbnail_quality"], options["exclude"]
    ingest.withdraw_missing, ingest.new_source = options["withdraw_missing"], options["new_source"]
    if joined is not None:
        joined(run.id)
    report.helped = run.id
    ingest.share = Share(ingest.catalogue, run.id, leader=False)
    ingest._visible_at = time.monotonic() + MAX_AGE + 0.1  # as the leader's first copies, to be safe
    coll_dir = ingest.image_root / ingest.collection
    coll_dir.mkdir(parents=True, exist_ok=True)
    try:
        ingest._recover(coll_dir)
        ingest._convert({}, {}, coll_dir, report, progress)
    except DatabaseError as exc:
        report.fatal = report.fatal or unwritable(exc)
    return report


def claim_jobs(ingest: Any, share: Share, plan: dict[str, list[Any]], by_ident: dict[str, SourceDocument],
               pending: dict[str, int], report: Report, journal: Any) -> list[tuple[str, Any]]:
    """The masters (slots) of the next documents this process claims; a helper plans them now, from the folder."""
    jobs: list[tuple[str, Any]] = []
    for item in share.claim(max(1, ingest.workers)):
        ident = item.document
        if ident not in plan:
            doc = scan_document(item.name, Path(item.path), report, [Path(p) for p in ingest.exclude])
            doc.ident = ident
            by_ident[ident] = doc
            plan.update(ingest._plan({ident: doc}, report))
        slots = plan.get(ident)
        if slots is None:  # refused by the plan (its pages came from another folder): reported
            share.done_alone(ident, {})
            continue
        pending[ident] = sum(1 for s in slots if s.job)
        if pending[ident]:
            jobs += [(ident, slot) for slot in slots if slot.job]
        elif not ingest._settle(by_ident[ident], slots, report, journal):  # nothing changed after all
            share.done_alone(ident, {})
    return jobs


def unwritable(exc: DatabaseError) -> str:
    """The catalogue's disk full, its server gone: every commit would fail so."""
    cause = str(getattr(exc, "orig", exc)).splitlines()[0] or type(exc).__name__
    return f"the catalogue cannot be written ({cause}): the run stopped"
