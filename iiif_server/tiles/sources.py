"""Sources: identifier -> file under the image root, and its geometry.

An identifier is a path below the image root without its extension. Anything
that could reach outside the root is refused before the file system is asked.
Open sources (geometry, parsed TIFF layout) are cached per file and dropped
when the file's size or mtime changes. Pixels are not: each render opens its
own pyvips image of the level it needs (a header read, well under a
millisecond), so nothing decoded outlives its request.

A `Source` reads its bytes through a `Reader`: a file here, an object in a
bucket in objectsource.py; the geometry parsing and the pipeline are the same.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Protocol

import pyvips
import tifffile

from iiif_server.errors import RequestError
from iiif_server.tiles import jp2
from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.edges import EdgeTiles, layout, read_description

EXTENSIONS = (".tif", ".tiff", ".ptif", ".jpg", ".jpeg", ".png", ".webp", ".jp2", ".j2k", ".jpx")
MAX_IDENTIFIER = 1024
UNTILED_TILE = 512
TIFF_SUFFIXES = (".tif", ".tiff", ".ptif")
SCAN_LIMIT = 20_000  # entries looked at to find loose images: the home page never walks a whole archive
# EXIF orientations 5-8 swap width and height
_SWAPPING = {5, 6, 7, 8}


@dataclass(frozen=True)
class Level:
    """One resolution stored in (or cheaply decodable from) the file."""

    width: int
    height: int
    factor: int  # full width / level width, a power of two
    page: int | None = None  # TIFF page (IFD) holding the level
    subifd: int | None = None  # or its SubIFD index
    shrink: int | None = None  # or the JPEG shrink-on-load factor


@dataclass(frozen=True)
class RawTiles:
    """Where the stored JPEG tiles of one TIFF level sit in the file.

    Offsets and byte counts are packed arrays (16 bytes a tile, not ~70 as tuples of ints):
    every cached source of a large scan carries thousands."""

    offsets: array[int]
    counts: array[int]
    tables: bytes
    tiles_across: int
    rgb: bool = False  # samples stored as RGB (no YCbCr transform): needs an Adobe marker per tile


SOURCE_OVERHEAD = 2048  # bytes of a Source beyond its tile tables (levels, reader, names)
SOURCES_BYTES = 32 << 20  # opened sources kept per store and process: a 20000x15000 scan's tables are ~80 KB


class SourceCache(MemoryCache):
    """Opened sources by key, least recently used out, bounded by their bytes (not their count: a
    large scan's tile tables weigh a hundred small ones); a lock around the plain memory cache."""

    def __init__(self, budget: int = SOURCES_BYTES) -> None:
        super().__init__(budget, largest=budget, cost=lambda source: source.nbytes)
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: object = None) -> Source | None:
        """The source kept for `key` if it describes the file as `stamp` finds it."""
        with self._lock:
            found: Source | None = super().get(key)
        return found if found is not None and found.stamp == stamp else None

    def put(self, key: Hashable, value: Source) -> None:
        with self._lock:
            super().put(key, value)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            super().pop(key)

    @property
    def budget(self) -> int:
        return self.max_bytes

    @property
    def used(self) -> int:
        return self.size


class Reader(Protocol):
    """Where an image's bytes are."""

    def read(self, offset: int, size: int) -> bytes:
        """Exactly these bytes (a stored tile)."""
        ...

    def load(self, **options: Any) -> pyvips.Image:
        """A libvips image for random access, with loader options (page, subifd, shrink ...)."""
        ...

    def stream(self) -> BinaryIO:
        """A seekable binary file object, for parsing the TIFF layout."""
        ...


class FileReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, offset: int, size: int) -> bytes:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    @contextmanager
    def current(self, stamp: tuple[int, int]) -> Iterator[Callable[[int, int], bytes] | None]:
        """A reader of the file at one open, if it is still the one `stamp` describes (many tiles of one
        request: one open instead of one per tile)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            yield (lambda offset, size: os.pread(fd, size, offset)) if (st.st_size, st.st_mtime_ns) == stamp else None
        finally:
            os.close(fd)

    def read_current(self, offset: int, size: int, stamp: tuple[int, int]) -> bytes | None:
        """These bytes if the file is still the one `stamp` describes (offsets of a replaced file point anywhere)."""
        with self.current(stamp) as pread:
            return None if pread is None else pread(offset, size)

    def load(self, **options: Any) -> pyvips.Image:
        return pyvips.Image.new_from_file(str(self.path), **{"access": "random", **options})

    def stream(self) -> BinaryIO:
        return open(self.path, "rb")


@dataclass
class Source:
    """An opened image: geometry and stored-tile layout, no pixels."""

    path: PurePath  # the file, or the object's key: its name appears in messages
    stamp: tuple[int, int]
    width: int
    height: int
    levels: tuple[Level, ...]
    tile_width: int
    tile_height: int
    orientation: int = 1
    raw: dict[int, RawTiles] = field(default_factory=dict)
    reader: Reader = None  # type: ignore[assignment]  # set in __post_init__: the file at `path` by default
    untiled: bool = False  # pixels only by decoding a whole level: see untiled.py
    # complete JPEG streams stored for one output size (tiles/thumbnail.py): (w, h) -> (offset, count, quality)
    stored: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)
    edges: EdgeTiles | None = None  # viewers' edge tiles stored as sent (tiles/edges.py)

    def __post_init__(self) -> None:
        if self.reader is None:
            self.reader = FileReader(Path(self.path))

    @property
    def nbytes(self) -> int:
        """Roughly what keeping this source costs: its stored-tile tables and a fixed part."""
        return SOURCE_OVERHEAD + sum(raw.offsets.itemsize * len(raw.offsets) + raw.counts.itemsize * len(raw.counts)
                                     + len(raw.tables) for raw in self.raw.values()) + (
                                         self.edges.nbytes if self.edges else 0)

    @property
    def scale_factors(self) -> list[int]:
        levels = self.levels
        if self.untiled:  # offer only the levels a worker may decode (untiled.py): viewers then never ask for more
            from iiif_server.tiles.untiled import fits

            levels = tuple(lv for lv in levels if fits(lv)) or levels
        factors = [lv.factor for lv in levels]
        # viewers need factors down to a tile-sized image; add power-of-two steps
        f = factors[-1]
        while max(self.width, self.height) / f > max(self.tile_width, self.tile_height):
            f *= 2
            factors.append(f)
        return factors

    def image(self, level_index: int) -> pyvips.Image:
        """A new pyvips image of one level, oriented, for one render.

        Not kept: a level image shared by all requests (and threads) held on to
        ~100 KB of native memory per request, without bound (bench/soak.py);
        one per render frees everything with it."""
        level = self.levels[level_index]
        options: dict[str, Any] = {}
        if level.page is not None:
            options["page"] = level.page
        if level.subifd is not None:
            options["subifd"] = level.subifd
        if level.shrink is not None and level.shrink > 1:
            options["shrink"] = level.shrink
        if self.untiled:  # one bounded decode in memory, shared by concurrent requests
            from iiif_server.tiles.untiled import decodes

            img = decodes.level(self, level_index, options)
        else:
            img = self.reader.load(fail=True, **options)
        if self.orientation != 1:
            img = img.autorot()
        return img


class SourceStore(Protocol):
    def open(self, identifier: str) -> Source: ...

    def identifiers(self) -> Iterator[str]: ...

    def readable(self) -> bool: ...

    def loose_images(self, catalogued: set[str]) -> Iterator[str]:
        """Identifiers outside the catalogued collections' top-level folders, looking at SCAN_LIMIT entries at most."""
        ...

    def describe(self) -> str:
        """Where the images are, for the start-up message."""
        ...


def unknown(identifier: str) -> RequestError:
    """The one answer for an image that does not exist (or is hidden from the requester)."""
    return RequestError(f"no image with identifier {identifier!r}", status=404)


def check_identifier(identifier: str) -> list[str]:
    """Split a decoded identifier into path parts, refusing anything unsafe."""
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        raise RequestError("identifier is empty or too long")
    if "\x00" in identifier or "\\" in identifier:
        raise RequestError("identifier holds a forbidden character")
    if identifier.startswith("/"):
        raise RequestError("identifier must be a relative path")
    parts = identifier.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise RequestError("identifier holds an empty, '.' or '..' segment")
        if part.startswith("."):  # hidden: an ingest's temporary files, withdrawn copies on their way out
            raise unknown(identifier)
        if any(ord(c) < 32 for c in part):
            raise RequestError("identifier holds a control character")
    return parts


def open_source(path: PurePath, stamp: tuple[int, int], reader: Reader | None = None) -> Source:
    """Read an image's geometry without decoding pixels."""
    reader = reader if reader is not None else FileReader(Path(path))
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _open_tiff(path, stamp, reader)
        if jp2.is_jp2(path):
            return _open_jp2(path, stamp, reader)
        return _open_plain(path, stamp, reader)
    except RequestError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make a parser raise anything
        raise RequestError(f"image cannot be read: {type(exc).__name__}", status=500) from exc


def _orientation(img: pyvips.Image) -> int:
    if img.get_typeof("orientation"):
        value = int(img.get("orientation"))
        return value if 1 <= value <= 8 else 1
    return 1


def _open_jp2(path: PurePath, stamp: tuple[int, int], reader: Reader) -> Source:
    """JPEG 2000: every resolution level of the codestream, decoded at its own size (jp2.py)."""
    with reader.stream() as fh:
        w, h, reductions = jp2.header(fh)
    levels = [Level(*jp2.level_size(w, h, r), 2**r, page=r or None) for r in jp2.levels(w, h, reductions)]
    return Source(path, stamp, w, h, tuple(levels), UNTILED_TILE, UNTILED_TILE, reader=jp2.reader_for(reader),
                  untiled=True)


def _open_plain(path: PurePath, stamp: tuple[int, int], reader: Reader) -> Source:
    img = reader.load()
    orientation = _orientation(img)
    w, h = img.width, img.height
    loader = img.get("vips-loader") if img.get_typeof("vips-loader") else ""
    levels = [Level(w, h, 1)]
    if loader.startswith("jpeg"):
        # JPEG decodes at 1/2, 1/4, 1/8 size for little more than the cost of reading;
        # ask libvips for each size (it rounds down, libjpeg alone would round up)
        for shrink in (2, 4, 8):
            if w // shrink < 1 or h // shrink < 1:
                break
            small = reader.load(shrink=shrink)
            levels.append(Level(small.width, small.height, shrink, shrink=shrink))
    if orientation in _SWAPPING:
        w, h = h, w
        levels = [Level(lv.height, lv.width, lv.factor, shrink=lv.shrink) for lv in levels]
    return Source(path, stamp, w, h, tuple(levels), UNTILED_TILE, UNTILED_TILE, orientation, reader=reader,
                  untiled=True)


def _open_tiff(path: PurePath, stamp: tuple[int, int], reader: Reader) -> Source:
    with reader.stream() as fh, tifffile.TiffFile(fh) as tif:
        pages = tif.pages
        if len(pages) == 0:
            raise ValueError("no readable image directory (truncated file?)")
        first = pages[0]
        w, h = int(first.imagewidth), int(first.imagelength)
        tiled = first.is_tiled
        tw = int(first.tilewidth) if tiled else UNTILED_TILE
        th = int(first.tilelength) if tiled else UNTILED_TILE
        levels = [Level(w, h, 1, page=0)]
        raw: dict[int, RawTiles] = {}
        candidates: list[tuple[Any, int | None, int | None]]
        if first.subifds:
            candidates = [(p, None, i) for i, p in enumerate(first.pages)]
        else:
            candidates = [(pages[i], i, None) for i in range(1, len(pages))]
        for page, page_no, sub_no in candidates:
            pw, ph = int(page.imagewidth), int(page.imagelength)
            prev = levels[-1]
            if (page.description or "").startswith("iiif-server "):
                break  # a page tiles/thumbnail.py or tiles/edges.py appended, never a level
            # a pyramid level halves the previous one (rounded either way)
            if not (abs(pw - prev.width / 2) <= 1 and abs(ph - prev.height / 2) <= 1):
                break
            levels.append(Level(pw, ph, prev.factor * 2, page=page_no, subifd=sub_no))
        for index in range(len(levels)):
            page = first if index == 0 else candidates[index - 1][0]
            tiles = _raw_tiles(page)
            if tiles is not None and page.tilewidth == tw and page.tilelength == th:
                raw[index] = tiles
        tag = first.tags.get("Orientation")
        orientation = int(tag.value) if tag is not None else 1
        stored = _stored_streams(pages)
        edges = _edge_streams(pages, w, h, tw, th, [levels[i].factor for i in sorted(raw)])
    if orientation not in range(1, 9):
        orientation = 1
    if orientation != 1:
        raw, stored, edges = {}, {}, None
        if orientation in _SWAPPING:
            w, h = h, w
            levels = [Level(lv.height, lv.width, lv.factor, lv.page, lv.subifd) for lv in levels]
    return Source(path, stamp, w, h, tuple(levels), tw, th, orientation, raw, reader, untiled=not tiled,
                  stored=stored, edges=edges)


def _stored_streams(pages: Any) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Reduced-resolution pages held as one self-contained JPEG strip (tiles/thumbnail.py writes them)."""
    from iiif_server.tiles.thumbnail import quality_of

    out = {}
    for page in pages[1:]:
        if page.is_tiled or not page.subfiletype & 1 or page.compression != 7 or page.jpegtables:
            continue
        if page.bitspersample != 8 or page.samplesperpixel not in (1, 3) or page.photometric not in (1, 6):
            continue
        quality = quality_of(page.description or "")
        if quality is not None and len(page.dataoffsets) == 1 and page.databytecounts[0]:
            out[(int(page.imagewidth), int(page.imagelength))] = (int(page.dataoffsets[0]),
                                                                 int(page.databytecounts[0]), quality)
    return out


def _edge_streams(pages: Any, width: int, height: int, tw: int, th: int, factors: list[int]) -> EdgeTiles | None:
    """The edge tiles' page (tiles/edges.py), when it describes this very pyramid."""
    for page in pages[1:]:
        fields = read_description(page.description or "") if page.compression == 7 else None
        if fields is None:
            continue
        levels = layout(width, height, tw, th, factors)
        count = sum(lv.count for lv in levels)
        if (fields["tile"] != f"{tw}x{th}" or fields["size"] != f"{width}x{height}" or fields["tiles"] != str(count)
                or len(page.dataoffsets) != 2 * count or len(page.databytecounts) != 2 * count):
            return None
        return EdgeTiles(int(fields["q"]), array("Q", page.dataoffsets), array("Q", page.databytecounts), levels)
    return None


def _markers(stream: bytes) -> tuple[int | None, bytes]:
    """The Adobe APP14 colour transform (None without the marker) and the frame's component ids."""
    transform, components = None, b""
    i = 2  # after SOI
    while i + 4 <= len(stream) and stream[i] == 0xFF:
        marker = stream[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no more headers
            break
        length = int.from_bytes(stream[i + 2 : i + 4], "big")
        body = stream[i + 4 : i + 2 + length]
        if marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            transform = body[11]
        elif marker in (0xC0, 0xC1, 0xC2) and len(body) >= 6:  # frame header: ids every 3 bytes
            components = bytes(body[6 + 3 * n] for n in range(body[5]) if 6 + 3 * n < len(body))
        i += 2 + length
    return transform, components


def adobe_transform(stream: bytes) -> int | None:
    """The colour transform of a JPEG stream's Adobe APP14 marker (0: none, 1: YCbCr), None without one."""
    return _markers(stream)[0]


def declares_rgb(stream: bytes) -> bool:
    """Whether a decoder reads the samples as RGB: an Adobe marker saying "no transform", or
    (libjpeg's convention, what libvips 8.14 writes) no marker and components named R, G, B."""
    transform, components = _markers(stream)
    return transform == 0 or (transform is None and components == b"RGB")


def _raw_tiles(page: Any) -> RawTiles | None:
    """Stored JPEG tiles that can be sent as they are: 8-bit RGB/grey, no alpha."""
    if not page.is_tiled or page.compression != 7 or page.bitspersample != 8:
        return None
    if page.samplesperpixel not in (1, 3) or page.planarconfig != 1:
        return None
    if page.photometric not in (1, 2, 6) or page.extrasamples:
        return None
    offsets, counts = array("Q", page.dataoffsets), array("Q", page.databytecounts)
    rgb = page.photometric == 2
    if rgb:
        # RGB-as-stored JPEG (libvips writes it) decodes right only where the stream says so;
        # a decoder would take the samples for YCbCr otherwise
        first = next((n for n, count in enumerate(counts) if count), None)
        if first is None:
            return None
        fh = page.parent.filehandle
        fh.seek(offsets[first])
        if not declares_rgb(fh.read(min(counts[first], 4096))):
            return None
    tables = page.jpegtables or b""
    across = -(-int(page.imagewidth) // int(page.tilewidth))
    return RawTiles(offsets, counts, bytes(tables), across, rgb)
