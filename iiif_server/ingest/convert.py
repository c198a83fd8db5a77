"""The worker side of ingest: one master -> its pages' access copies (tiled, pyramidal JPEG TIFF with the
stored thumbnail and edge tiles), in a process of its own; no catalogue, no network, nothing shared."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_TILE = 256
# Access copies: JPEG at quality 88 with 4:2:0 chroma: 0.22-0.30 MB per megapixel on synthetic scanned
# pages, a third of quality 90's (bench/access_quality.py; docs/guide/ingest.md, "Access copies are sized on purpose").
# libvips' TIFF writer ties the chroma to the quality: YCbCr 4:2:0 below 90, RGB-coded JPEG (no
# subsampling, ~3x the bytes) from 90; its `rgbjpeg` below 90 subsamples G and B, so it is never used.
ACCESS_QUALITY = 88
SERVED_QUALITY = 85  # the server's default JPEG quality (config.Settings.jpeg_quality): stored thumbnails use it
ACCESS_SUBSAMPLE = True
MAX_PILLOW_PIXELS = 1 << 30  # masters decoded by Pillow are held whole in memory (3-4 bytes a pixel, twice)
LOW_SPACE = 64 << 20  # bytes free below which a failed write is the disk's fault, not the master's
STRIP_ABOVE = 16 << 20  # pixels of a JPEG 2000 master above which it is decoded in strips (Pillow below)
JP2_THREADS = 1  # OpenJPEG's threads a worker decodes with: cores // workers (set by _init_worker)
STRIP_PIXELS = 3 << 19  # pixels of one strip: OpenJPEG needs some 60 bytes a pixel of what it decodes at once


@dataclass
class PageOut:
    ident: str
    width: int
    height: int
    staged: str | None  # the hidden copy written by the worker, None when unchanged


@dataclass
class Outcome:
    path: Path
    checksum: str = ""
    pages: list[PageOut] = field(default_factory=list)
    converted: bool = False
    error: str | None = None
    fatal: str | None = None  # what makes every master fail (no space left): the run stops
    warnings: list[str] = field(default_factory=list)  # what libtiff, libvips or Pillow said of this master


def _init_worker(parent: int, jp2_threads: int = 1) -> None:
    """Workers die with their coordinator, and leave stopping to it. `jp2_threads`: the cores each may use to
    decode a JPEG 2000 master (one when the workers fill the cores: threads cost CPU, they only save time)."""
    global JP2_THREADS
    JP2_THREADS = max(1, jp2_threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the coordinator decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the coordinator died before the watch was set
        os._exit(1)

    def watch() -> None:  # elsewhere, or if prctl failed: notice the coordinator's death within a second
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    import pyvips

    pyvips.concurrency_set(1)  # parallelism comes from the processes
    pyvips.cache_set_max(0)


def describe(exc: BaseException) -> str:
    """One line saying why: libvips' own first detail line (the cause), else the message."""
    for text in (getattr(exc, "detail", None), str(exc)):
        lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
        if lines:
            return lines[0]
    return type(exc).__name__


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Unsupported(Exception):
    """No reader knows the file's format."""


def _unknown_format(exc: Exception) -> bool:
    text = f"{exc} {getattr(exc, 'detail', '')}"
    # libvips lacks the format, or (phones' HEIC) its libheif lacks the HEVC decoder: Pillow's plugins have them
    return "not a known file format" in text or "compression format has not been built in" in text


def sniff(path: Path) -> str | None:
    """The format a master's first bytes say it is (for messages that name it), None when unknown."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head.startswith(b"%PDF"):
        return "PDF"
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "TIFF"
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head[4:8] == b"ftyp":
        return "HEIF" if head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"heim", b"heis") else "AVIF"
    if head.startswith((b"\0\0\0\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    return None


def _heif_opener() -> None:
    """Pillow reads HEIC with pillow-heif (a dependency); registered once per process."""
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def _pillow_pages(path: Path) -> int:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    _heif_opener()
    try:
        with PILImage.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except UnidentifiedImageError as exc:
        kind = sniff(path)
        if kind == "PDF":
            raise Unsupported("a PDF document, not an image: export its pages as TIFF or JPEG") from exc
        if kind == "HEIF":
            raise Unsupported("a HEIC photo, which this installation cannot read: pip install pillow-heif") from exc
        if kind is not None:  # what its first bytes say, but no reader can read it
            raise Unsupported(f"unreadable {kind}: the file is damaged or truncated") from exc
        raise Unsupported("unsupported format: not a known file format") from exc


def _pillow_load(path: Path, page: int) -> Any:
    """Formats the installed libvips lacks (BMP, TGA, PCX; JPEG 2000 when it has no OpenJPEG) through Pillow.

    Pillow's wheels bundle OpenJPEG: JP2 and J2K masters, 8 or 16 bits, any number of resolution
    levels (the full one is decoded). 16-bit colour comes scaled to 8 bits; 16-bit grey is kept
    as grey16 here and scaled by `to_srgb8`, as Pillow's own conversion would clip it."""
    import numpy as np
    import pyvips
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = MAX_PILLOW_PIXELS  # archival masters are large; above this Pillow refuses
    _heif_opener()
    with PILImage.open(path) as im:
        im.seek(page)
        if im.mode.startswith("I;16"):
            grey = np.asarray(im).astype("=u2", copy=False)
            return pyvips.Image.new_from_memory(grey.tobytes(), im.width, im.height, 1, "ushort").copy(
                interpretation="grey16")
        mode = "RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB"
        rgb = im if im.mode == mode else im.convert(mode)
        pixels = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, len(rgb.mode), "uchar")
        return pixels.copy(interpretation="srgb")


def page_count(path: Path) -> int:
    """Pages of a master: a multi-page TIFF has several, a pyramid (or a JPEG 2000's levels) only one."""
    import pyvips

    if sniff(path) == "HEIF":  # libvips reads its header, then cannot decode it (no HEVC): Pillow from the start
        return _pillow_pages(path)
    try:
        img = pyvips.Image.new_from_file(str(path), access="sequential")
    except pyvips.Error as exc:
        if not _unknown_format(exc):
            raise
        return _pillow_pages(path)
    pages = int(img.get("n-pages")) if img.get_typeof("n-pages") else 1
    if pages > 1 and img.get("vips-loader").startswith(("tiff", "jp2k")):  # JPEG 2000: its resolution levels
        second = pyvips.Image.new_from_file(str(path), page=1, access="sequential")
        if abs(second.width - img.width / 2) <= 1 and abs(second.height - img.height / 2) <= 1:
            return 1  # the later pages are pyramid levels
    return pages


def jp2_strips(path: Path, scratch: Path) -> Any | None:
    """A large JPEG 2000 master decoded strip by strip through OpenJPEG (glymur) into a raw file in `scratch`,
    read back by libvips as it writes the copy: a worker holds one strip, never the whole image (Pillow held
    about 20 bytes a pixel: 1.5 GB for 75 megapixels). None where glymur or OpenJPEG is missing, or the master
    is small enough for Pillow."""
    try:
        import glymur
        import numpy as np
        import pyvips

        jp2 = glymur.Jp2k(str(path))
        shape = jp2.shape
    except Exception:  # noqa: BLE001 - no binding, no libopenjp2, or not what glymur reads: Pillow decides
        return None
    height, width = shape[0], shape[1]
    bands = shape[2] if len(shape) > 2 else 1
    if width * height <= STRIP_ABOVE or bands not in (1, 3):
        return None
    rows = max(64, STRIP_PIXELS // width)
    with tempfile.NamedTemporaryFile(dir=scratch, prefix=".strips-", suffix=".raw", delete=False) as raw:
        depth = None
        for top in range(0, height, rows):
            strip = np.ascontiguousarray(jp2[top:min(height, top + rows), :])
            depth = depth or strip.dtype
            raw.write(strip.astype(depth, copy=False).tobytes())
    fmt = "ushort" if depth == np.uint16 else "uchar"
    img = pyvips.Image.rawload(raw.name, width, height, bands, format=fmt)
    interpretation = ("srgb" if fmt == "uchar" else "rgb16") if bands == 3 else ("b-w" if fmt == "uchar" else
                                                                                "grey16")
    _scratch_files.append(raw.name)
    return img.copy(interpretation=interpretation)


def jp2_whole(path: Path) -> Any | None:
    """An 8-bit JPEG 2000 master decoded at once through OpenJPEG: imagecodecs' build where the [jp2] extra is
    installed, else glymur's (the system's libopenjp2). Both give Pillow's pixels with 2-2.7x (imagecodecs) or
    1.7-2.1x (glymur) less CPU (bench/jp2_decode.py). None where neither can, or for other depths: Pillow then."""
    import numpy as np
    import pyvips

    try:
        import imagecodecs

        pixels = imagecodecs.jpeg2k_decode(path.read_bytes(), numthreads=JP2_THREADS)
    except ImportError:
        try:
            import glymur

            glymur.set_option("lib.num_threads", JP2_THREADS)
            pixels = glymur.Jp2k(str(path))[:]
        except Exception:  # noqa: BLE001 - no binding, no libopenjp2, or not what glymur reads: Pillow decides
            return None
    except Exception:  # noqa: BLE001 - damaged: Pillow's reading says why, as before
        return None
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        return None
    if pixels.ndim == 2:  # grey becomes RGB, as Pillow's reading gave it
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    height, width, bands = pixels.shape
    img = pyvips.Image.new_from_memory(np.ascontiguousarray(pixels).data, width, height, bands, "uchar")
    return img.copy(interpretation="srgb")


_scratch_files: list[str] = []  # raw strips of the master being converted: removed once its copy is written


def open_master(path: Path, page: int, access: str = "sequential", scratch: Path | None = None) -> Any:
    import pyvips

    options = {"page": page} if page else {}  # only multi-page loaders take `page`
    kind = sniff(path)
    if kind == "HEIF":
        return _pillow_load(path, page)
    if kind == "JPEG 2000" and not page and not jp2_loads():
        decoded = (jp2_strips(path, scratch) if scratch is not None else None) or jp2_whole(path)
        if decoded is not None:
            return decoded
    try:
        return pyvips.Image.new_from_file(str(path), access=access, fail=True, **options)
    except pyvips.Error as exc:
        if not _unknown_format(exc):
            raise
        return _pillow_load(path, page)


def jp2_loads() -> bool:
    """Whether the installed libvips decodes JPEG 2000 itself (Debian's does, tile by tile; the wheels do not)."""
    import pyvips

    return bool(pyvips.type_find("VipsOperation", "jp2kload"))


def open_upright(path: Path, page: int, scratch: Path | None = None) -> Any:
    """A master turned as its EXIF or TIFF orientation says (a phone's or camera's capture of a page).

    Turning reads the pixels out of order, which a sequential decode cannot: such a master is opened
    for random access (libvips keeps a large one in a temporary file, not in memory)."""
    img = open_master(path, page, scratch=scratch)
    orientation = int(img.get("orientation")) if img.get_typeof("orientation") else 1
    if orientation in range(2, 9):
        img = open_master(path, page, access="random")
    return img.autorot()


def access_options(quality: int = ACCESS_QUALITY, subsample: bool = ACCESS_SUBSAMPLE) -> dict[str, Any]:
    """tiffsave's JPEG options, or ValueError for what its writer cannot do."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality {quality} is not between 1 and 100")
    if subsample and quality >= 90:
        raise ValueError(f"libvips writes 4:2:0 chroma only below quality 90: use a quality up to 89, "
                         f"or no subsampling (RGB JPEG, about 3x the bytes), not quality {quality}")
    if not subsample and quality < 90:
        raise ValueError(f"libvips writes JPEG without chroma subsampling only from quality 90, not {quality}")
    return {"compression": "jpeg", "Q": quality}


def write_access_copy(master: Path, page: int, out: Path, quality: int = ACCESS_QUALITY,
                      subsample: bool = ACCESS_SUBSAMPLE, thumbnail_quality: int | None = SERVED_QUALITY
                      ) -> tuple[int, int]:
    """Convert one page to a tiled, pyramidal JPEG TIFF at `out` (a hidden staging path).

    With `thumbnail_quality` (the server's JPEG quality) the copy also holds the `full/!200,200`
    thumbnail as the server renders it, sent as stored (tiles/thumbnail.py): a wall of thumbnails
    is then read, not decoded; and viewers' tiles at the right and bottom edges, each as the server
    renders it, likewise sent as stored (tiles/edges.py)."""
    from iiif_server.tiles.pipeline import WHITE, Encoding, no_metadata, to_srgb8
    from iiif_server.tiles.prepare import add_edges, add_thumbnail

    img = to_srgb8(open_upright(master, page, out.parent))
    if img.hasalpha():
        img = img.flatten(background=WHITE)
    width, height = img.width, img.height
    # 4:2:0 shares colour between pairs of columns and rows, and libvips fills the rest of an edge tile with
    # black: an odd last column or row (a whole 1x1 page) would share its colour with black. Written with its
    # edge repeated once, then declared at its own size, it shares it with itself.
    odd = subsample and img.bands == 3 and (width % 2 or height % 2)
    if odd:
        img = img.embed(0, 0, width + width % 2, height + height % 2, extend="copy")
    try:
        img.tiffsave(str(out), tile=True, tile_width=ACCESS_TILE, tile_height=ACCESS_TILE, pyramid=True,
                     **access_options(quality, subsample), **no_metadata("tiffsave"))
        if odd:
            declare_size(out, width, height)
        if thumbnail_quality is not None:
            add_thumbnail(out, encoding=Encoding(jpeg_quality=thumbnail_quality))
            add_edges(out, thumbnail_quality)
        os.chmod(out, 0o644)
        durable(out)  # on disk before the commit that makes it servable, not only in the page cache
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        while _scratch_files:  # the raw strips of a JPEG 2000 master, read by now
            os.unlink(_scratch_files.pop())
    return width, height


def declare_size(path: Path, width: int, height: int) -> None:
    """Set the full-resolution size a TIFF declares (its tiles are whole tiles whatever the size)."""
    import tifffile

    with tifffile.TiffFile(path, mode="r+b") as tif:
        tags = tif.pages[0].tags
        tags["ImageWidth"].overwrite(width)
        tags["ImageLength"].overwrite(height)


def durable(path: Path) -> None:
    """Flush a written file to the disk (a power cut after the commit must not find it truncated)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def page_idents(stem: str, count: int) -> list[str]:
    return [stem] if count == 1 else [f"{stem}-{n}" for n in range(1, count + 1)]


def process_master(master: str, stem: str, staging: str, known_checksum: str | None, copies_exist: bool,
                   quality: int = ACCESS_QUALITY, subsample: bool = ACCESS_SUBSAMPLE,
                   thumbnail_quality: int | None = SERVED_QUALITY) -> Outcome:
    path = Path(master)
    with said_meanwhile() as said:
        outcome = _process(path, stem, staging, known_checksum, copies_exist, quality, subsample, thumbnail_quality)
    outcome.warnings = said
    return outcome


def _process(path: Path, stem: str, staging: str, known_checksum: str | None, copies_exist: bool, quality: int,
             subsample: bool, thumbnail_quality: int | None) -> Outcome:
    try:
        checksum = sha256(path)
        if checksum == known_checksum and copies_exist:  # touched, not changed
            return Outcome(path, checksum)
        pages = []
        for n, ident in enumerate(page_idents(stem, page_count(path))):
            out = Path(staging) / f"{uuid.uuid4().hex}.tif"
            pages.append(PageOut(ident, *write_access_copy(path, n, out, quality, subsample, thumbnail_quality),
                                 staged=str(out)))
        return Outcome(path, checksum, pages, converted=True)
    except Unsupported as exc:
        return Outcome(path, error=str(exc))
    except Exception as exc:  # a corrupt master is reported, never fatal to the batch
        if _no_space(exc, staging):
            return Outcome(path, fatal=f"no space left on the disk of {staging}: free some and run again")
        reason = describe(exc)
        if _unknown_format(exc):
            return Outcome(path, error=f"unsupported format: {reason}")
        kind = sniff(path)
        return Outcome(path, error=f"unreadable{' ' + kind if kind else ''}: {reason}")


def _no_space(exc: BaseException, folder: str) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False


@contextmanager
def said_meanwhile() -> Iterator[list[str]]:
    """What libraries print while one master is converted (libtiff's and libvips' warnings on the standard
    error, Pillow's Python warnings), as lines to report with that master instead of loose on the terminal."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught, warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        os.dup2(caught.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read(64 << 10).decode("utf-8", "replace")
            lines += [line.strip() for line in text.splitlines() if line.strip()][:20]
            lines += [str(w.message) for w in raised][:20]
