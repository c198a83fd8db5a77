"""Native memory: hand freed heap pages back to the system after renders.

glibc's malloc gives each thread that allocates an arena of its own (up to
eight per core), and an arena keeps the pages of freed chunks resident. A
render's decode buffers come and go on the image pool's threads and on
libvips' own workers, so a worker's resident memory settles at the sum of
every arena's high-water mark, far above what is alive. `malloc_trim` returns
those pages (measured in-process over random regions of a 6000x8000 scan: 150
MiB resident without it, 60 MiB with it). Elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

TRIM_INTERVAL = 0.5  # seconds: a trim walks every arena, so not after each render
# glibc maps allocations from this size up on their own and unmaps them when freed. Left alone it raises
# the threshold to the largest block freed so far (up to 32 MiB): a render's buffers of a few MiB
# (libvips' output, encoded images) then come from the arenas, where they fragment and stay.
MAP_FROM = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def map_large_blocks(size: int = MAP_FROM) -> bool:
    """Have glibc map blocks of `size` bytes and more on their own, always (per process); False elsewhere."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))


class Trimmer:
    """At most one `malloc_trim` per interval, from whichever thread finishes a render then."""

    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        self.interval = interval
        self._trim = _malloc_trim()
        self._last = time.monotonic()
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim_now(self) -> None:
        """Return freed pages now, whatever the interval (for measuring what stays alive)."""
        if self._trim is not None:
            with self._lock:
                self._trim(0)

    def after_render(self) -> None:
        if self._trim is None:
            return
        now = time.monotonic()
        if now - self._last < self.interval or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            self._trim(0)
        finally:
            self._lock.release()


trimmer = Trimmer()
