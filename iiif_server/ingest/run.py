"""Ingest: folders of archival masters -> pyramidal TIFF access copies + catalogue rows.

Each sub-folder of the source is a document whose pages are the files in it, in natural order;
an image directly in the source is a one-page document. Identifiers keep the names on disk
(Unicode, NFC). Every file is accounted for: a page, or a failure with its path and reason.

Fail closed: the run first commits the collection, the CSV's tiers and the new documents' tier
overrides, then workers write copies only to a hidden staging folder (never served), and the
coordinator commits each finished document (rows and activities in one transaction) before it
renames its copies into place. A run that is stopped, killed or crashes leaves nothing servable
that was not committed, and a re-run gives the catalogue and activity stream an uninterrupted
run gives. Masters are never modified. On PostgreSQL, processes started with `--join` on other
hosts share the run's documents (ingest/share.py).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DatabaseError

from iiif_server.auth.snapshot import MAX_AGE
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.ingest import PageSpec
from iiif_server.db.work import Lost, shares
from iiif_server.errors import Busy
from iiif_server.ingest.convert import (
    ACCESS_QUALITY,
    ACCESS_SUBSAMPLE,
    SERVED_QUALITY,
    Outcome,
    PageOut,
    _init_worker,
    access_options,
    process_master,
)
from iiif_server.ingest.metadata import CsvError, CsvRow, csv_ids, read_metadata_csv
from iiif_server.ingest.report import Report
from iiif_server.ingest.scan import (
    Master,
    SourceDocument,
    check_collection_id,
    nfc,
    safe_ident,
    scan_source,
)
from iiif_server.ingest.share import Share, claim_jobs, help_run, options_of, unwritable
from iiif_server.ingest.staging import STAGING, folder_copies, recover
from iiif_server.ingest.withdraw import FolderCopies, ObjectCopies
from iiif_server.names import copy_path, on_disk, shown
from iiif_server.storage import ObjectTarget

STOP_GRACE = 120.0  # seconds a stopped run waits for the pages in flight before it kills them
Progress = Callable[[int, int, int], None]  # masters done (converted or failed), to convert, failed so far


@dataclass
class Slot:
    """One master of a document in this run: unchanged (pages known), a job, or failed."""

    master: Master
    known: list[tuple[str, int, float, str]] = field(default_factory=list)  # ident, size, mtime, checksum per page
    positions: list[int] = field(default_factory=list)  # the catalogued positions of its pages
    job: bool = False
    outcome: Outcome | None = None
    unchanged: bool = False


class Ingest:
    """One ingest run of a source folder into a collection."""

    def __init__(self, catalogue: Catalogue, image_root: Path, collection: str, *,
                 label: str | None = None, tier: str | None = None, workers: int | None = None,
                 stop_grace: float = STOP_GRACE, quality: int = ACCESS_QUALITY,
                 subsample: bool = ACCESS_SUBSAMPLE, target: ObjectTarget | None = None,
                 thumbnail_quality: int | None = SERVED_QUALITY, withdraw_missing: bool = False,
                 new_source: bool = False) -> None:
        """`target`: copies bound for object storage; `image_root` is then its local staging folder.
        `thumbnail_quality`: the serving JPEG quality the stored thumbnails are encoded at (None: none stored).
        `withdraw_missing`: a page whose master is gone from its document's folder is withdrawn (else kept,
        after the others, and reported). `new_source`: a document ingested before from another folder takes
        this run's folder as its source (else it is refused: its pages would mix)."""
        self.catalogue = catalogue
        self.image_root = image_root
        self.target = target
        self.collection = check_collection_id(collection)
        self.label = label
        if tier is not None and tier not in catalogue.tiers:
            raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(catalogue.tiers)}")
        self.tier = tier
        self.workers = workers or os.cpu_count() or 1
        self.stop_grace = stop_grace
        access_options(quality, subsample)  # refused before anything is written
        self.quality, self.subsample = quality, subsample
        self.thumbnail_quality = thumbnail_quality
        self.withdraw_missing = withdraw_missing
        self.new_source = new_source
        self.stopped: int | None = None  # the signal asking the run to stop
        self._kill = False
        self._visible_at = 0.0  # monotonic time from which copies may be renamed into place
        self._gone: dict[str, list[str]] = {}  # pages whose masters left their document's folder
        self.run_id: str | None = None  # the run's row: on PostgreSQL, other processes may then join the run
        self.share: Share | None = None
        self.exclude: list[str] = []  # files of the source that are no masters (the metadata CSV)

    def access_path(self, document: str, page: str) -> Path:
        return self.image_root / copy_path(self.collection, document, page)

    def _copies(self, document: str) -> set[str]:
        """The file names of a document's access copies, in the folder or the bucket."""
        if self.target is not None:
            return self.target.names(copy_path(self.collection, document) + "/")
        return folder_copies(self.image_root / copy_path(self.collection, document))

    def _place(self, staged: str, final: Path) -> None:
        """Make a committed copy visible: a rename in the folder, or one upload to the bucket."""
        if self.target is not None:
            self.target.publish_file(Path(staged), final.relative_to(self.image_root).as_posix())
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        folder = os.open(final.parent, os.O_RDONLY)  # the rename itself, durable too
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _take_away(self, relative: str) -> None:
        """Delete a withdrawn page's access copy, in the folder or the bucket."""
        copies = ObjectCopies(self.target.store) if self.target is not None else FolderCopies(self.image_root)
        copies.take_away(relative)()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop scheduling; a second call kills the pages in flight."""
        if self.stopped is None:
            self.stopped = signum
        else:
            self._kill = True

    def run(self, src: Path, metadata_csv: Path | None = None, progress: Progress | None = None,
            locked: Callable[[], None] | None = None, join: bool = False,
            joined: Callable[[str], None] | None = None) -> Report:
        """Busy when another run of the same collection holds it (on any host sharing the catalogue), unless
        `join`: this process then helps that run (PostgreSQL; ingest/share.py) and `joined(run id)` is called.
        `progress(done, total, failed)`: masters converted (or failed) of those to convert; `locked()`: called
        once the run holds the collection's lock."""
        with ExitStack() as held:
            try:
                held.enter_context(self.catalogue.run_lock(self.collection))
            except Busy:
                if not join:
                    raise
                return help_run(self, src, progress, joined)
            if locked is not None:
                locked()
            return self._run(src, metadata_csv, progress)

    def _run(self, src: Path, metadata_csv: Path | None, progress: Progress | None) -> Report:
        src = src.resolve()
        documents, report = scan_source(src, [metadata_csv] if metadata_csv is not None else [])
        self._resolve_idents(documents)
        self.exclude = [str(metadata_csv.resolve())] if metadata_csv is not None else []
        if self.run_id is not None and shares(self.catalogue):
            self.share = Share(self.catalogue, self.run_id, leader=True)
        by_ident = {d.ident: d for d in documents.values()}
        csv_rows: list[CsvRow] = []
        if metadata_csv is not None:
            aliases = {name: d.ident for name, d in documents.items()} | {i: i for i in by_ident}
            wanted = [aliases.get(nfc(i), nfc(i)) for i in csv_ids(metadata_csv)]
            existing = self.catalogue.existing_documents(self.collection, wanted)
            csv_rows, errors = read_metadata_csv(metadata_csv, set(aliases) | existing, self.catalogue.tiers,
                                                 aliases)
            if errors:
                raise CsvError(errors)
        coll_dir = self.image_root / self.collection
        coll_dir.mkdir(parents=True, exist_ok=True)
        self._recover(coll_dir)
        try:
            csv_new = self._prepare(csv_rows, by_ident)
            plan = self._plan(by_ident, report)
            try:
                self._convert(plan, by_ident, coll_dir, report, progress)
            finally:
                if self.share is not None:
                    self.share.forget()
                self._finish(csv_new, report, metadata_csv or src)
        except DatabaseError as exc:  # the catalogue's disk full, its server gone: every commit would fail so
            report.fatal = report.fatal or unwritable(exc)
        return report

    # -- before any conversion -------------------------------------------------------------

    def _resolve_idents(self, documents: dict[str, SourceDocument]) -> None:
        """A document's id is its name; one an earlier version stored under a mangled id keeps that id."""
        for doc in documents.values():
            doc.ident = doc.name
        legacy = {safe_ident(d.name): d for d in documents.values() if safe_ident(d.name) != d.name}
        if not legacy:
            return
        real = self.catalogue.existing_documents(self.collection, [d.name for d in legacy.values()])
        for ident, source in self.catalogue.legacy_sources(self.collection, list(legacy)).items():
            doc = legacy[ident]
            inside = source == str(doc.path) or (source or "").startswith(str(doc.path) + os.sep)
            if doc.name not in real and inside:  # the same folder, ingested before Unicode names
                doc.ident = ident

    def _prepare(self, csv_rows: list[CsvRow], by_ident: dict[str, SourceDocument]) -> set[str]:
        """Collection, CSV fields and tiers, committed before any copy exists (Catalogue.prepare_ingest)."""
        names = {ident: doc.name for ident, doc in by_ident.items()}
        created = self.catalogue.prepare_ingest(self.collection, self.label, self.tier, csv_rows, names)
        # every replica's access snapshot holds the new tiers before a copy may appear
        self._visible_at = time.monotonic() + MAX_AGE + 0.1
        return created

    def _plan(self, by_ident: dict[str, SourceDocument], report: Report) -> dict[str, list[Slot]]:
        """Each master: unchanged (size and mtime as catalogued, copies present: no file is read) or a job."""
        known = self.catalogue.known_pages(self.collection, list(by_ident))
        sources = self.catalogue.sources_of(self.collection, list(by_ident))
        plan: dict[str, list[Slot]] = {}
        for ident, doc in list(by_ident.items()):
            here = {str(m.path) for m in doc.masters}
            elsewhere = {path for path in sources.get(ident, {}).values()
                         if path != str(doc.path) and not path.startswith(str(doc.path) + os.sep)}
            if elsewhere and not self.new_source:  # the same name, another folder: never mix their pages
                folder = os.path.dirname(min(elsewhere))
                report.failed += [(m.path, f"document {ident!r} holds pages ingested from {shown(folder)}, another "
                                   "folder: ingest from there, or pass --new-source to make this folder its source")
                                  for m in doc.masters if m.stem]
                del by_ident[ident]
                continue
            self._gone[ident] = sorted(page for page, path in sources.get(ident, {}).items() if path not in here)
            for page in self._gone[ident]:
                report.missing.append((f"{self.collection}/{ident}/{page}", sources[ident][page],
                                       "withdrawn" if self.withdraw_missing else "kept"))
            copies: set[str] | None = None
            slots = []
            for master in doc.masters:
                slot = Slot(master)
                slots.append(slot)
                if not master.stem:  # reported by the scan; keeps its place
                    continue
                rows = known.get(str(master.path), [])
                slot.known = [(i, size, mtime, checksum) for _, i, size, mtime, checksum, _ in rows]
                slot.positions = [position for *_, position in rows]
                if copies is None and rows:  # one listing per document folder, not one stat per page
                    copies = self._copies(ident)
                same = all(size == master.size and mtime == master.mtime for _, _, size, mtime, *_ in rows)
                if rows and same and all(on_disk(i, ".tif") in (copies or set()) for _, i, *_ in rows):
                    slot.unchanged = True
                    report.unchanged += len(rows)
                else:
                    slot.job = True
            plan[ident] = slots
        return plan

    # -- conversion ------------------------------------------------------------------------

    def _convert(self, plan: dict[str, list[Slot]], by_ident: dict[str, SourceDocument], coll_dir: Path,
                 report: Report, progress: Progress | None) -> None:
        jobs = [(ident, slot) for ident, slots in plan.items() for slot in slots if slot.job]
        pending = {ident: sum(1 for s in slots if s.job) for ident, slots in plan.items()}
        for ident, count in pending.items():
            if count == 0:
                self._settle(by_ident[ident], plan[ident], report, None)
        total = len(jobs)
        if progress:
            progress(0, total, len(report.failed))
        share = self.share
        if share is not None and share.leader:  # the documents to convert, for every process of the run to claim
            share.publish(options_of(self), [(ident, by_ident[ident].name, str(by_ident[ident].path), count)
                                            for ident, count in pending.items() if count])
        if not jobs and (share is None or share.leader):
            return
        staging = coll_dir / f"{STAGING}{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        lock = open(staging / "lock", "w")  # held while this run lives: the next run leaves its folder alone
        fcntl.flock(lock, fcntl.LOCK_EX)
        journal = open(staging / "journal", "a", encoding="utf-8")
        previous = self._catch_signals()
        ctx = multiprocessing.get_context("spawn")
        before = set(multiprocessing.active_children())
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),
                                   (os.cpu_count() or 1) // self.workers))
        queue = [] if share is not None else list(reversed(jobs))
        inflight: dict[Future[Outcome], tuple[str, Slot]] = {}
        committed: set[str] = set()
        done = 0
        deadline: float | None = None
        try:
            while True:
                if share is not None:
                    share.tick()
                while self.stopped is None and len(inflight) < 2 * self.workers:
                    if not queue and share is not None:
                        queue = list(reversed(claim_jobs(self, share, plan, by_ident, pending, report, journal)))
                        total += 0 if share.leader else len(queue)
                    if not queue:
                        break
                    ident, slot = queue.pop()
                    copies_exist = bool(slot.known) and {on_disk(i, ".tif") for i, *_ in slot.known} <= self._copies(
                        ident)
                    known_checksum = slot.known[0][3] if slot.known else None
                    future = pool.submit(process_master, str(slot.master.path), slot.master.stem, str(staging),
                                         known_checksum, copies_exist, self.quality, self.subsample,
                                         self.thumbnail_quality)
                    inflight[future] = (ident, slot)
                if not inflight:
                    if share is None or report.fatal or self._kill:
                        break
                    if self.stopped is not None:  # a leader gives its helpers the grace to commit theirs
                        deadline = deadline or time.monotonic() + self.stop_grace
                        if not share.leader or not share.drain(deadline):
                            break
                    elif not share.more():
                        break
                    continue
                finished, _ = wait(inflight, timeout=0.25, return_when=FIRST_COMPLETED)
                if self.stopped is not None and deadline is None:
                    deadline = time.monotonic() + self.stop_grace
                if deadline is not None and (self._kill or time.monotonic() > deadline) and not finished:
                    for child in set(multiprocessing.active_children()) - before:
                        child.kill()  # the pages still in flight are given up
                    break
                for future in finished:
                    ident, slot = inflight.pop(future)
                    try:
                        slot.outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by a bad file
                        slot.outcome = Outcome(slot.master.path, error=f"worker failed: {type(exc).__name__}")
                    report.warnings += [(slot.master.path, line) for line in slot.outcome.warnings]
                    if slot.outcome.fatal is not None:  # every master would fail so: stop now, publish no part
                        report.fatal = report.fatal or slot.outcome.fatal
                        self.stop()
                        self._kill = True
                        report.not_done.append(slot.master.path)
                        slot.outcome = None
                        continue
                    if slot.outcome.error is not None:
                        report.failed.append((slot.master.path, slot.outcome.error))
                    done += 1
                    if progress:
                        progress(done + (share.others_done() if share is not None else 0), total, len(report.failed))
                    pending[ident] -= 1
                    if pending[ident] == 0 and report.fatal is None:  # the whole document is ready: commit, show
                        self._commit(by_ident[ident], plan[ident], report, journal)
                        committed.add(ident)
            for _ident, slot in [*inflight.values(), *reversed(queue)]:
                report.not_done.append(slot.master.path)
            inflight.clear()
            for ident, count in pending.items():  # stopped before these documents were committed: their
                if ident not in committed and count < sum(1 for s in plan[ident] if s.job):  # converted masters
                    report.not_done += [slot.master.path for slot in plan[ident] if slot.job and slot.outcome
                                        is not None and slot.outcome.error is None]  # are not done either
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if share is not None:
                share.release()
            self._restore_signals(previous)
            journal.close()
            shutil.rmtree(staging, ignore_errors=True)
            lock.close()
        report.stopped = self.stopped
        if share is not None and share.leader:  # what the other processes did is this run's too
            share.fold(report)
            if progress:
                progress(done + share.others_done(force=True), total, len(report.failed))

    def _catch_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda n, _frame: self.stop(n))
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _settle(self, doc: SourceDocument, slots: list[Slot], report: Report, journal: Any) -> bool:
        """A document with nothing to convert is committed if its positions moved or masters went; whether it was."""
        if _moved(slots) or self._gone.get(doc.ident):
            self._commit(doc, slots, report, journal)
            return True
        return False

    def _commit(self, doc: SourceDocument, slots: list[Slot], report: Report, journal: Any) -> None:
        """One document's pages, positions and activity in one transaction; then its copies appear."""
        pages: list[PageSpec] = []
        renames: list[tuple[str, Path, str, str]] = []  # staged, final, checksum, page id
        converted = unchanged = 0
        failed: list[tuple[Path, str]] = []  # this document's, for a shared run's report
        used: dict[str, Path] = {}
        position = 0
        for slot in slots:
            out = slot.outcome
            if not slot.master.stem or (out is not None and out.error is not None):
                if out is not None and out.error is not None:
                    failed.append((slot.master.path, out.error))
                position += 1  # a failed master keeps its place: the pages after it keep theirs
                continue
            if out is not None and out.converted:
                items: list[tuple[str, PageOut | None]] = [(p.ident, p) for p in out.pages]
            else:
                items = [(ident, None) for ident, *_ in slot.known]
            clash = next((i for i, _ in items if i in used), None)
            if clash is not None:
                failed.append((slot.master.path, f"page id {clash!r} is already taken by {used[clash]}"))
                report.failed.append(failed[-1])
                position += len(items)
                continue
            for n, (ident, page) in enumerate(items):
                used[ident] = slot.master.path
                copy = None
                if page is not None and out is not None:
                    assert page.staged is not None
                    copy = (page.width, page.height, out.checksum)
                    renames.append((page.staged, self.access_path(doc.ident, ident), out.checksum, ident))
                source = (str(slot.master.path), n, slot.master.size, slot.master.mtime) if out is not None else None
                pages.append(PageSpec(ident, position + n, copy, source))
            position += len(items)
            if out is not None and out.converted:
                converted += len(items)
            elif out is not None:
                unchanged += len(items)

        def journal_renames() -> None:  # what to finish if this process dies after the commit
            if journal is not None and renames:
                for staged, final, checksum, page_ident in renames:
                    journal.write(f"{staged}\t{final}\t{checksum}\t{doc.ident}\t{page_ident}\n")
                journal.flush()
                os.fsync(journal.fileno())

        withdrawn = self._gone.get(doc.ident, []) if self.withdraw_missing else []
        mark = None
        if self.share is not None and doc.ident in self.share.held:
            mark = self.share.marker(doc.ident, {"converted": converted, "unchanged": unchanged,
                                                 "failed": [[str(path), why] for path, why in failed]})
        try:
            self.catalogue.commit_document(self.collection, doc.ident, doc.name, pages, journal_renames, withdrawn,
                                           **({"mark": mark} if mark is not None else {}))
        except Lost:  # its claim ran out and another process has it: that one commits it
            report.not_done += [slot.master.path for slot in slots if slot.job]
            return
        finally:
            if self.share is not None:
                self.share.held.pop(doc.ident, None)
        for page in withdrawn:  # committed: their copies go (the rows are gone, nothing serves them now)
            self._take_away(copy_path(self.collection, doc.ident, page))
        report.converted += converted
        report.unchanged += unchanged
        if renames:
            delay = self._visible_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for staged, final, *_ in renames:
                self._place(staged, final)

    def _recover(self, coll_dir: Path) -> None:
        """What runs that died left in the collection's folder (staging.recover)."""
        recover(coll_dir, lambda document, page: self.catalogue.page_checksum(self.collection, document, page),
                self._place)

    # -- after the conversions ------------------------------------------------------------------

    def _finish(self, csv_new: set[str], report: Report, where: Path) -> None:
        """Put new documents in order, drop CSV documents that got no page, record the collection's change."""
        for ident in self.catalogue.finish_ingest(self.collection, csv_new):
            report.failed.append((where, f"document {ident!r} has no pages"))


def _moved(slots: list[Slot]) -> bool:
    """Whether a document's catalogued page positions differ from its folder's order."""
    position = 0
    for slot in slots:
        if not slot.unchanged:
            position += 1
            continue
        if slot.positions != list(range(position, position + len(slot.known))):
            return True
        position += len(slot.known)
    return False
