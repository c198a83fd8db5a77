"""The hot path's memory: opened sources and their files, reused without a thread hop.

Opening a source resolves the identifier against the image root (a path walk
per candidate extension, a symlink check) and parses the file's layout once:
that belongs in the I/O pool. A source opened in the last second is taken
from here on the event loop instead, after one `stat` of its resolved path (a
single system call on an inode the last request has just used), so a replaced
or withdrawn file is noticed at once, and the full lookup runs again every
second. Each entry keeps the file open: stored tiles are read with a
non-blocking `preadv` (`RWF_NOWAIT`: data not in the page cache makes it
fail instead of wait, and the read goes to the pool), so the loop never waits
for a disk. A descriptor keeps naming the file it was opened on, the one whose
layout the source describes, even when the path is replaced meanwhile.

Descriptors are only used and closed on the event loop; worker threads read
through their own (`pipeline.read_stored`).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from .sources import Source, SourceStore

RECHECK = 1.0  # seconds between full lookups of one identifier
CAPACITY = 256  # open files per worker process
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


@dataclass
class Opened:
    source: Source
    fd: int  # -1: no descriptor (the file changed while it was opened); read in the pool
    checked: float


def open_checked(store: SourceStore, identifier: str) -> Opened:
    """Full lookup (blocking: run in the I/O pool), with a descriptor on the very file described."""
    source = store.open(identifier)
    fd = -1
    try:
        fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(fd)
        if (st.st_size, st.st_mtime_ns) != source.stamp:
            os.close(fd)
            fd = -1
    except OSError:
        if fd >= 0:
            os.close(fd)
        fd = -1
    return Opened(source, fd, time.monotonic())


class OpenSources:
    """identifier -> Opened, least recently used out; touched only from the event loop."""

    def __init__(self, capacity: int = CAPACITY, recheck: float = RECHECK) -> None:
        self.capacity = capacity
        self.recheck = recheck
        self._items: OrderedDict[str, Opened] = OrderedDict()
        self.nowait = _NOWAIT is not None

    def get(self, identifier: str) -> Opened | None:
        """A source still current, or None when the I/O pool must look it up."""
        opened = self._items.get(identifier)
        if opened is None:
            return None
        if time.monotonic() - opened.checked > self.recheck:
            return None
        try:
            st = os.stat(opened.source.path)
        except OSError:
            self._drop(identifier)
            return None
        if (st.st_size, st.st_mtime_ns) != opened.source.stamp:
            self._drop(identifier)
            return None
        self._items.move_to_end(identifier)
        return opened

    def put(self, identifier: str, opened: Opened) -> None:
        self._drop(identifier)
        self._items[identifier] = opened
        while len(self._items) > self.capacity:
            _, old = self._items.popitem(last=False)
            if old.fd >= 0:
                os.close(old.fd)

    def _drop(self, identifier: str) -> None:
        old = self._items.pop(identifier, None)
        if old is not None and old.fd >= 0:
            os.close(old.fd)

    def clear(self) -> None:
        for identifier in list(self._items):
            self._drop(identifier)

    def read_nowait(self, opened: Opened, offset: int, count: int) -> bytes | None:
        """Bytes already in the page cache, read on the loop; None when reading would wait."""
        if opened.fd < 0 or not self.nowait:
            return None
        buf = bytearray(count)
        try:
            n = os.preadv(opened.fd, [buf], offset, _NOWAIT)
        except BlockingIOError:
            return None
        except OSError:
            self.nowait = False  # a file system without non-blocking reads: always the pool
            return None
        return bytes(buf) if n == count else None
