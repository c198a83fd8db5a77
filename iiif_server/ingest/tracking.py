"""A run's row in the catalogue, kept by the run itself (db/runs.py): its progress and a heartbeat every second
from a thread of its own, a stop asked from the console (on any replica) turned into the run's safe stop, and
how it ended. A run started by the console also stops safely when the server process that started it is gone.
Nothing here may fail the run: a catalogue that cannot be written costs the progress display, not the ingest.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from iiif_server.db import runs
from iiif_server.db.catalogue import Catalogue

log = logging.getLogger(__name__)
BEAT_SECONDS = 1.0


class RunTracker:
    def __init__(self, catalogue: Catalogue, rid: str, watch_parent: bool = False) -> None:
        self.catalogue = catalogue
        self.id = rid
        self.done = self.failed = 0
        self.total: int | None = None
        self.stop: Callable[[], None] | None = None
        self.parent = os.getppid() if watch_parent else None
        self.stopping = False
        self.helped: str | None = None  # the run this process joined (--join)
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="ingest-heartbeat", daemon=True)
        self._safely(runs.begin, catalogue, rid, socket.gethostname(), os.getpid())

    @classmethod
    def new(cls, catalogue: Catalogue, collection: str, source: str, started_by: str, tier: str | None,
            metadata_csv: str | None) -> RunTracker:
        """A run started here (the command line): its row made first."""
        rid = runs.create(catalogue, collection, source, started_by, tier=tier, metadata_csv=metadata_csv)
        return cls(catalogue, rid)

    def start(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.thread.start()

    def locked(self, collection: str) -> None:
        self._safely(runs.locked, self.catalogue, self.id, collection)

    def helping(self, leader: str) -> None:
        self.helped = leader
        self._safely(runs.helping, self.catalogue, self.id, leader)

    def progress(self, done: int, total: int, failed: int) -> None:
        self.done, self.total, self.failed = done, total, failed

    def end(self, state: str, report: str | None = None, message: str | None = None) -> None:
        if message is None and self.helped is not None:
            message = f"helped run {self.helped}"
        self.ended.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self._safely(runs.end, self.catalogue, self.id, state, report=report, message=message, done=self.done,
                     failed=self.failed)

    def _beat(self) -> None:
        while not self.ended.wait(BEAT_SECONDS):
            asked = self._safely(runs.beat, self.catalogue, self.id, self.done, self.total, self.failed)
            orphaned = self.parent is not None and os.getppid() != self.parent
            if (asked or orphaned) and not self.stopping and self.stop is not None:
                self.stopping = True
                log.warning("stopping: %s", "asked from the console" if asked else "the server that started it ended")
                self.stop()

    @staticmethod
    def _safely(fn: Callable[..., object], *args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the run goes on without its row
            log.warning("cannot record the run's progress in the catalogue: %s", exc)
            return None
