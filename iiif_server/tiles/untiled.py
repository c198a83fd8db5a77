"""Untiled sources (JPEG, PNG, WebP, JPEG 2000, stripped TIFF): bounded, shared decodes in memory.

libvips cannot read part of an untiled image: a random-access image decodes whole on its first
pixel read, into memory below VIPS_DISC_THRESHOLD (100 MB) and above it into a temporary file it
unlinks at once, so a 20000x15000 scan filled ~860 MiB of disc nobody could see, once per request
that opened it. Here a level is decoded straight into memory (sequential read, no temporary
file), concurrent requests for it wait for that one decode, decoded levels are kept in a cache
bounded by bytes, and a level larger than the worker's budget is refused with a message that
recommends ingest (JPEG's reduced levels, which decode at 1/2 to 1/8 size, often still fit).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import pyvips

from iiif_server.errors import TooLarge

if TYPE_CHECKING:
    from iiif_server.tiles.sources import Level, Source

log = logging.getLogger("iiif_server")

DEFAULT_BUDGET = 512 << 20  # bytes of decoded untiled levels per worker process (--untiled-memory-mb)
ESTIMATE_BYTES_PER_PIXEL = 3  # 8-bit RGB, what scans are; the real size is accounted after the decode
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4,
                 "double": 8, "complex": 8, "dpcomplex": 16}


class Decodes:
    """Decoded untiled levels of one worker: single flight per level, bytes-bounded LRU."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = DEFAULT_BUDGET if budget is None else budget
        self._cache: OrderedDict[Hashable, tuple[pyvips.Image, int]] = OrderedDict()
        self._inflight: dict[Hashable, int] = {}  # key -> bytes reserved for its decode
        self._cond = threading.Condition()
        self._warned: set[Hashable] = set()
        self.decodes = 0  # decodes done (for tests and metrics)

    @property
    def used(self) -> int:
        with self._cond:
            return self._used()

    def _used(self) -> int:
        return sum(size for _, size in self._cache.values()) + sum(self._inflight.values())

    def level(self, source: Source, index: int, options: dict[str, Any]) -> pyvips.Image:
        """The decoded level (a memory image, shared: callers only read it)."""
        level = source.levels[index]
        estimate = level.width * level.height * ESTIMATE_BYTES_PER_PIXEL
        if estimate > self.budget:
            raise self._refuse(source, level.width, level.height)
        key = (str(source.path), source.stamp, index)
        with self._cond:
            while True:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit[0]
                if key not in self._inflight:
                    if self._make_room(estimate):
                        self._inflight[key] = estimate
                        break
                self._cond.wait()  # its decode, or room, is on the way
        img = None
        try:
            img = source.reader.load(fail=True, access="sequential", **options).copy_memory()
            self.decodes += 1
        finally:
            with self._cond:
                del self._inflight[key]
                if img is not None:
                    size = img.width * img.height * img.bands * _SAMPLE_BYTES.get(img.format, 8)
                    if size <= self.budget:
                        self._cache[key] = (img, size)
                        self._make_room(0)
                self._cond.notify_all()
        if img is not None and size > self.budget:
            raise self._refuse(source, level.width, level.height)
        assert img is not None
        return img

    def _make_room(self, wanted: int) -> bool:
        """Evict the least recently used levels until `wanted` more bytes fit; False if in-flight decodes hold it."""
        while self._used() + wanted > self.budget and self._cache:
            self._cache.popitem(last=False)
        return self._used() + wanted <= self.budget

    def _refuse(self, source: Source, width: int, height: int) -> TooLarge:
        if (source.path, source.stamp) not in self._warned:
            self._warned.add((source.path, source.stamp))
            log.warning("untiled image %s is %dx%d: too large to decode within %d MiB per worker; ingest it "
                        "(iiif-server ingest) to serve it tiled", source.path, source.width, source.height,
                        self.budget >> 20)
        return TooLarge(f"this image is stored untiled ({source.width}x{source.height}); a {width}x{height} decode "
                        f"exceeds the server's {self.budget >> 20} MiB for untiled images: ask for a smaller size, "
                        "or ingest the image to serve it at full resolution", status=501)


decodes = Decodes()


def fits(level: Level) -> bool:
    """Whether a level's decode fits this worker's budget (as estimated before decoding)."""
    return level.width * level.height * ESTIMATE_BYTES_PER_PIXEL <= decodes.budget
