"""Images in S3-compatible object storage: identifier -> object, read by ranges.

The identifier rule is the file system's: `portraits/0001` is the object
`PREFIX/portraits/0001.tif` (or another extension of EXTENSIONS, tried in order).

What a request costs:
- an object's size and ETag (its stamp, as size and mtime are a file's) come from
  a HEAD, trusted for `ttl` seconds: a replaced object is served within the TTL,
  a new one appears within it (an unknown identifier is remembered too);
- the TIFF directories are parsed once per object (the Source is cached) from
  blocks of BLOCK bytes kept in a cache bounded in bytes;
- a stored tile sent as it is costs one ranged GET of exactly its bytes;
- other regions decode through a libvips custom source that reads the blocks it
  needs, never the whole object.
Every GET names the ETag it expects (If-Match): an object replaced under a
cached Source answers 412, and the request fails instead of mixing two files.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO

import obstore
import pyvips
from obstore.exceptions import PreconditionError

from iiif_server.errors import RequestError
from iiif_server.names import on_disk
from iiif_server.storage import Location
from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.sources import (
    EXTENSIONS,
    SCAN_LIMIT,
    SOURCES_BYTES,
    TIFF_SUFFIXES,
    Source,
    SourceCache,
    check_identifier,
    open_source,
)

BLOCK = 256 * 1024
META_ENTRY = 256  # bytes one cached stamp costs, besides its key
MAX_KEY = 1024  # S3's limit, in UTF-8 bytes: a longer key cannot exist
MISSING = None


class BlockCache(MemoryCache):
    """Blocks of objects, least recently used out, bounded in bytes; shared by every object of a
    process, so by libvips' and our threads: a lock around the plain memory cache."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, largest=capacity)
        self._lock = threading.Lock()
        self.fetches = 0  # GETs made and bytes received, for tests and benchmarks
        self.fetched = 0

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            return super().get(key)

    def put(self, key: Hashable, value: bytes) -> None:
        with self._lock:
            super().put(key, value)


class ObjectReader:
    """One object's bytes: exact ranges for stored tiles, cached blocks for everything libvips and tifffile read."""

    def __init__(self, store: Any, key: str, size: int, etag: str, blocks: BlockCache,
                 changed: Callable[[str], None] | None = None) -> None:
        self.store, self.key, self.size, self.etag, self.blocks = store, key, size, etag, blocks
        self.changed = changed

    def _get(self, start: int, end: int) -> bytes:
        options: dict[str, Any] = {"range": (start, end)}
        if self.etag:
            options["if_match"] = self.etag
        self.blocks.fetches += 1
        try:
            data = bytes(obstore.get(self.store, self.key, options=options).bytes())  # type: ignore[arg-type]
            self.blocks.fetched += len(data)
            return data
        except PreconditionError as exc:
            if self.changed is not None:
                self.changed(self.key)  # the next request asks for the new object's stamp
            raise OSError(f"{self.key} changed while it was being read") from exc
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store's errors become read errors (500), as a file's would
            raise OSError(f"reading {self.key} failed: {type(exc).__name__}") from exc

    def read(self, offset: int, size: int) -> bytes:
        """Exactly these bytes, in one ranged GET (a stored tile is read once, then its response is cached)."""
        end = min(offset + size, self.size)
        return self._get(offset, end) if end > offset else b""

    def read_blocks(self, offset: int, size: int) -> bytes:
        """These bytes through the block cache; the missing blocks come in one ranged GET."""
        end = min(offset + size, self.size)
        if end <= offset:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        found = {n: self.blocks.get((self.key, self.etag, n)) for n in range(first, last + 1)}
        missing = [n for n, block in found.items() if block is None]
        if missing:
            lo, hi = missing[0] * BLOCK, min((missing[-1] + 1) * BLOCK, self.size)
            data = self._get(lo, hi)
            for n in range(missing[0], missing[-1] + 1):
                block = data[n * BLOCK - lo : (n + 1) * BLOCK - lo]
                found[n] = block
                self.blocks.put((self.key, self.etag, n), block)
        joined = b"".join(found[n] or b"" for n in range(first, last + 1))
        return joined[offset - first * BLOCK : end - first * BLOCK]

    def stream(self) -> BinaryIO:
        return io.BufferedReader(BlockStream(self), buffer_size=BLOCK)  # type: ignore[arg-type]

    def load(self, **options: Any) -> pyvips.Image:
        if PurePosixPath(self.key).suffix.lower() not in TIFF_SUFFIXES:
            # JPEG, PNG ... decode whole anyway: one GET of the object, no block cache churn
            data = self._get(0, self.size)
            return pyvips.Image.new_from_buffer(data, "", **{"access": "random", **options})
        return pyvips.Image.new_from_source(custom_source(self), "", **{"access": "random", **options})


class BlockStream(io.RawIOBase):
    """A seekable file object over an ObjectReader's blocks (for tifffile)."""

    def __init__(self, reader: ObjectReader) -> None:
        self.reader, self.pos = reader, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.reader.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        data = self.reader.read_blocks(self.pos, len(buffer))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def custom_source(reader: ObjectReader) -> pyvips.SourceCustom:
    """A libvips source reading the object's blocks (tiffload seeks to the directories and tiles it needs)."""
    source = pyvips.SourceCustom()
    position = [0]

    def on_read(size: int) -> bytes:
        try:
            data = reader.read_blocks(position[0], size)
        except OSError:
            return b""  # libvips sees a short file and fails the request (500)
        position[0] += len(data)
        return data

    def on_seek(offset: int, whence: int) -> int:
        base = (0, position[0], reader.size)[whence] if whence in (0, 1, 2) else None
        if base is None:
            return -1
        position[0] = max(0, base + offset)
        return position[0]

    source.on_read(on_read)
    source.on_seek(on_seek)
    return source


def stamp_of(meta: dict[str, Any]) -> tuple[int, int]:
    """(size, a number naming the ETag and modification time): a change of either is a new object."""
    named = f"{meta.get('e_tag') or ''}|{meta.get('last_modified')}".encode()
    return int(meta["size"]), int.from_bytes(hashlib.blake2b(named, digest_size=7).digest(), "big")


class ObjectStoreSource:
    """Images in a bucket (below a prefix); the identifier is the key without extension."""

    def __init__(self, store: Any, location: str, ttl: float = 10.0, cache_bytes: int = 128 << 20,
                 sources_bytes: int = SOURCES_BYTES) -> None:
        self.store = store
        self.location = location
        prefix = Location.parse(location).prefix
        self.prefix = prefix + "/" if prefix else ""  # the store adds it; only counted here
        self.ttl = ttl
        self.blocks = BlockCache(cache_bytes)
        self._meta: OrderedDict[str, tuple[float, str | None, dict[str, Any] | None]] = OrderedDict()
        self._meta_bytes = 0
        self._meta_capacity = max(1 << 20, cache_bytes // 16)
        self._sources = SourceCache(sources_bytes)
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.location

    def readable(self) -> bool:
        """The bucket answers with these credentials: a listing of a prefix that holds nothing."""
        try:
            obstore.list_with_delimiter(self.store, ".healthz")
        except Exception:  # noqa: BLE001 - unreachable, no bucket, refused: all unhealthy
            return False
        return True

    def _lookup(self, base: str) -> tuple[str | None, dict[str, Any] | None]:
        """The object for a key without extension: HEADs in EXTENSIONS order (.tif first, the access copies,
        whose too long names are stored as ingest stores them: names.on_disk)."""
        folder, _, last = base.rpartition("/")
        folder = "/".join(on_disk(part) for part in folder.split("/")) + "/" if folder else ""
        for ext in EXTENSIONS:
            key = folder + (on_disk(last, ext) if ext == ".tif" else last + ext)
            if len((self.prefix + key).encode()) > MAX_KEY:
                continue
            try:
                return key, obstore.head(self.store, key)  # type: ignore[return-value]
            except FileNotFoundError:  # obstore raises the builtin for a 404
                continue
            except ValueError:  # a key the client refuses to form (e.g. with DEL): no such object can exist
                return None, MISSING
        return None, MISSING

    def find(self, identifier: str) -> tuple[str, dict[str, Any]]:
        parts = check_identifier(identifier)
        base = "/".join(parts)
        now = time.monotonic()
        with self._lock:
            cached = self._meta.get(base)
        if cached is not None and cached[0] > now:
            key, meta = cached[1], cached[2]
        else:
            try:
                key, meta = self._lookup(base)
            except Exception as exc:  # noqa: BLE001 - the store's errors name the endpoint: keep them in the log
                raise RequestError(f"image storage unavailable: {type(exc).__name__}", status=503) from exc
            self._remember(base, now + self.ttl, key, meta)
        if key is None or meta is None:
            raise RequestError(f"no image with identifier {identifier!r}", status=404)
        return key, meta

    def _remember(self, base: str, expires: float, key: str | None, meta: dict[str, Any] | None) -> None:
        with self._lock:
            old = self._meta.pop(base, None)
            if old is not None:
                self._meta_bytes -= len(base) + META_ENTRY
            self._meta[base] = (expires, key, meta)
            self._meta_bytes += len(base) + META_ENTRY
            while self._meta_bytes > self._meta_capacity:
                dropped, _ = self._meta.popitem(last=False)
                self._meta_bytes -= len(dropped) + META_ENTRY

    def open(self, identifier: str) -> Source:
        key, meta = self.find(identifier)
        stamp = stamp_of(meta)
        cached = self._sources.get(key, stamp)
        if cached is not None:
            return cached
        reader = ObjectReader(self.store, key, int(meta["size"]), meta.get("e_tag") or "", self.blocks, self.forget)
        source = open_source(PurePosixPath(key), stamp, reader)
        self._sources.put(key, source)
        return source

    def forget(self, key: str) -> None:
        """Drop what is known of an object that changed under us."""
        base = key.rpartition(".")[0]
        with self._lock:
            if self._meta.pop(base, None) is not None:
                self._meta_bytes -= len(base) + META_ENTRY
        self._sources.pop(key)

    def _keys(self, offset: str | None = None) -> Iterator[str]:
        for chunk in obstore.list(self.store, offset=offset):  # type: ignore[call-overload]
            for meta in chunk:
                yield meta["path"]

    @staticmethod
    def _identifier(key: str) -> str | None:
        stem, dot, ext = key.rpartition(".")
        if not dot or "." + ext.lower() not in EXTENSIONS or "/" in ext:
            return None
        if any(part.startswith(".") for part in key.split("/")):
            return None
        return stem

    def identifiers(self) -> Iterator[str]:
        """Identifiers in key order, listed page by page."""
        for key in self._keys():
            ident = self._identifier(key)
            if ident is not None:
                yield ident

    def loose_images(self, catalogued: set[str]) -> Iterator[str]:
        """A catalogued collection's keys are skipped with one new listing after them (start-after)."""
        seen, offset = 0, None
        while True:
            restart = None
            for key in self._keys(offset):
                seen += 1
                if seen > SCAN_LIMIT:
                    return
                top = key.split("/", 1)[0]
                if "/" in key and top in catalogued:
                    restart = top + "/\U0010ffff"
                    break
                ident = self._identifier(key)
                if ident is not None:
                    yield ident
            if restart is None:
                return
            offset = restart
