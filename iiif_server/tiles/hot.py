"""The hot path's memory: opened sources, reused without a thread hop.

Opening a source resolves the identifier against the image root (a path walk
per candidate extension, a symlink check) and parses the file's layout once:
that belongs in the I/O pool. A source opened in the last second is taken
from here on the event loop instead, after one `stat` of its resolved path (a
single system call on an inode the last request has just used), so a replaced
or withdrawn file is noticed at once, and the full lookup runs again every
second. Stored tiles are read on the loop with a non-blocking `preadv`
(`RWF_NOWAIT`: data not in the page cache makes it fail instead of wait, and
the read goes to the pool), on a descriptor checked once to name the very file
the source describes and kept open for the next tiles of that file (128
files at most, a wall of thumbnails; a source whose file changed is looked up again, and a
new descriptor opened, before any read). Sources in object storage are
not kept here (their store trusts a HEAD for a few seconds instead): nothing
on this path ever stats an object's key.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.sources import SOURCES_BYTES, FileReader, Source, SourceStore

RECHECK = 1.0  # seconds between full lookups of one identifier
BUDGET = SOURCES_BYTES  # per worker process, counted as the store counts its sources (Source.nbytes)
_NOWAIT = getattr(os, "RWF_NOWAIT", None)
OPEN_FILES = 128  # descriptors kept for reads on the loop, per worker process (a wall of 100 portraits)


@dataclass
class Opened:
    source: Source
    checked: float


def open_checked(store: SourceStore, identifier: str) -> Opened:
    """Full lookup (blocking: run in the I/O pool)."""
    return Opened(store.open(identifier), time.monotonic())


class OpenSources:
    """identifier -> Opened, least recently used out; touched only from the event loop."""

    def __init__(self, budget: int = BUDGET, recheck: float = RECHECK) -> None:
        self.recheck = recheck
        self._items = MemoryCache(budget, largest=budget, cost=lambda opened: opened.source.nbytes)
        self.nowait = _NOWAIT is not None
        self._fds: OrderedDict[str, tuple[int, tuple[int, int]]] = OrderedDict()  # path -> (fd, its stamp)

    def get(self, identifier: str) -> Opened | None:
        """A source still current, or None when the I/O pool must look it up."""
        opened = self._items.get(identifier)
        if opened is None:
            return None
        if time.monotonic() - opened.checked > self.recheck:
            return None
        reader = opened.source.reader
        if not isinstance(reader, FileReader):  # put() keeps files only; never a stat of an object's key
            return None
        try:
            st = os.stat(reader.path)
        except OSError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns) != opened.source.stamp:
            self._items.pop(identifier)
            self._close(str(reader.path))  # a withdrawn file's space is freed when its last descriptor closes
            return None
        return opened

    def due(self, identifier: str) -> bool:
        """Whether the identifier's source was kept and only its second is up (`get` said None): its full
        lookup may run from the hit path instead of the full path."""
        opened = self._items.get(identifier)
        return opened is not None and time.monotonic() - opened.checked > self.recheck

    def put(self, identifier: str, opened: Opened) -> None:
        """Remember a source read from a file; others (object storage) are looked up every time."""
        if not isinstance(opened.source.reader, FileReader):
            return
        self._items.put(identifier, opened)

    def read_nowait(self, source: Source, offset: int, count: int) -> bytes | None:
        """Bytes of the source's file already in the page cache, read on the loop; None when reading
        would wait or the file is no longer the one described."""
        if not self.nowait or not isinstance(source.reader, FileReader):
            return None
        fd = self._descriptor(str(source.reader.path), source.stamp)
        if fd is None:
            return None
        buf = bytearray(count)
        try:
            n = os.preadv(fd, [buf], offset, _NOWAIT)
        except BlockingIOError:
            return None
        except OSError:
            self.nowait = False  # a file system without non-blocking reads: always the pool
            return None
        return bytes(buf) if n == count else None

    def _descriptor(self, path: str, stamp: tuple[int, int]) -> int | None:
        """An open descriptor of the file at `path` whose size and mtime are `stamp`."""
        kept = self._fds.get(path)
        if kept is not None:
            if kept[1] == stamp:
                self._fds.move_to_end(path)
                return kept[0]
            self._close(path)  # the file was replaced: its source is being looked up again
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_size, st.st_mtime_ns) != stamp:
            os.close(fd)
            return None
        self._fds[path] = (fd, stamp)
        while len(self._fds) > OPEN_FILES:
            _, (old, _) = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _close(self, path: str) -> None:
        kept = self._fds.pop(path, None)
        if kept is not None:
            os.close(kept[0])
