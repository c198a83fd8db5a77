"""Process: a resolved request plus a source -> encoded image bytes.

Knows nothing of HTTP. Picks the smallest stored level that still gives full
quality, crops and scales there, then rotates, converts colour and encodes.
Tiles that coincide with stored JPEG tiles are sent as stored (`raw_tile`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import pyvips

try:  # libjpeg-turbo through a thin binding: ~3x faster than libvips' jpegsave on tiles and thumbnails
    import numpy
    import simplejpeg
except ImportError:  # pragma: no cover - the server still works, only slower
    simplejpeg = None
try:  # OpenCV's resize: a small thumbnail in a tenth of libvips' time, most of which is setting up its pipeline
    import cv2

    cv2.setNumThreads(0)  # parallelism comes from the image threads and the worker processes
except ImportError:  # pragma: no cover - stored tiles are then scaled by libvips
    cv2 = None

from iiif_server.errors import RequestError
from iiif_server.tiles.memory import MAP_FROM, trimmer
from iiif_server.tiles.request import FORMATS, Plan
from iiif_server.tiles.sources import FileReader, Source
from iiif_server.tiles.stored import JPEG_QUALITY, StoredTile
from iiif_server.tiles.stored import WHOLE as WHOLE
from iiif_server.tiles.stored import assemble_stored as assemble_stored
from iiif_server.tiles.stored import locate_stored as locate_stored
from iiif_server.tiles.stored import raw_tile as raw_tile
from iiif_server.tiles.stored import read_stored as read_stored

WHITE = [255.0]
# outputs up to this many pixels are encoded from one uncompressed buffer (3 MB at most);
# larger ones stream through libvips' saver, which never holds the whole image
TURBO_MAX_PIXELS = 1 << 20


@dataclass(frozen=True)
class Encoding:
    jpeg_quality: int = JPEG_QUALITY
    webp_quality: int = 80
    png_compression: int = 6


def _has_operation(name: str) -> bool:
    try:
        return pyvips.type_find("VipsOperation", name) != 0
    except pyvips.Error:
        return False


@cache
def no_metadata(operation: str) -> dict[str, Any]:
    """The saver option that drops metadata: `keep` since libvips 8.15, `strip` before (Debian 12's 8.14)."""
    optional = pyvips.Introspect.get(operation).optional_input
    return {"keep": "none"} if "keep" in optional else {"strip": True}


def self_test(formats: list[str]) -> tuple[list[str], dict[str, str]]:
    """Encode one pixel in every format: those that work, and why the others fail.

    A libvips that lacks an option we pass fails here, at start, not on every request."""
    pixel = pyvips.Image.black(1, 1, bands=3).copy(interpretation="srgb")
    working, broken = [], {}
    for fmt in formats:
        try:
            encode(pixel, fmt, Encoding())
            if fmt == "jpg":  # large outputs use libvips' saver even where small ones do not
                libvips_jpeg(pixel, Encoding().jpeg_quality)
            working.append(fmt)
        except (pyvips.Error, RequestError) as exc:
            broken[fmt] = (getattr(exc, "detail", None) or str(exc)).strip().splitlines()[0][:200]
    return working, broken


def writable_formats() -> list[str]:
    """Formats this libvips can write, in the order the server advertises them."""
    savers = {
        "jpg": "jpegsave_buffer",
        "png": "pngsave_buffer",
        "webp": "webpsave_buffer",
        "tif": "tiffsave_buffer",
        "gif": "gifsave_buffer",
        "jp2": "jp2ksave_buffer",
    }
    return [fmt for fmt, op in savers.items() if _has_operation(op)]


def pick_level(source: Source, plan: Plan) -> int:
    """Index of the smallest level whose crop is still at least the output size."""
    best = 0
    for index, level in enumerate(source.levels):
        sx = level.width / source.width
        sy = level.height / source.height
        if plan.w * sx + 1 >= plan.out_w and plan.h * sy + 1 >= plan.out_h:
            best = index
    return best


def _level_crop(source: Source, plan: Plan, index: int) -> tuple[int, int, int, int]:
    """The crop `render` takes from a level: left, top, right, bottom in the level's pixels."""
    level = source.levels[index]
    sx, sy = level.width / source.width, level.height / source.height
    left, top = math.floor(plan.x * sx), math.floor(plan.y * sy)
    right = min(level.width, max(left + 1, math.ceil((plan.x + plan.w) * sx - 1e-6)))
    bottom = min(level.height, max(top + 1, math.ceil((plan.y + plan.h) * sy - 1e-6)))
    return left, top, right, bottom


# up to this sigma OpenCV's 8-bit Gaussian kernel is (1, 0, 0): blurring copies the pixels, at the cost of a resize
# (a thumbnail at two thirds of its level's size or more; tests/tiles/test_pixels.py checks the copy)
UNBLURRED_SIGMA = 0.25
# decoded pixels a request may assemble from its stored tiles (12 MB of RGB); past it libvips streams the level
STORED_PIXELS_MAX = 4 << 20


Read = Callable[[Source, StoredTile], "bytes | None"]


def _decode_stored(source: Source, tile: StoredTile, read: Read, out: Any = None) -> Any:
    """One stored tile as an array (height x width x bands), or None; decoded into `out` when given
    (a writable buffer of at least the tile's size)."""
    data = read(source, tile)
    stream = assemble_stored(source, tile, data) if data is not None else None
    if stream is None:
        return None
    try:
        grey = simplejpeg.decode_jpeg_header(stream)[2] == "Gray"
        return simplejpeg.decode_jpeg(stream, colorspace="GRAY" if grey else "RGB", buffer=out)
    except ValueError:  # a damaged tile: libvips reads the level, and says what is wrong if it cannot
        return None


KEPT_MAX = MAP_FROM


class Scratch(threading.local):
    """A thread's buffers for decoding stored tiles, kept between requests: a few MiB allocated and freed
    per region fragmented glibc's arenas, and random regions grew a worker by 200 MiB over 200,000
    requests (bench/soak.py). At most STORED_PIXELS_MAX x 3 bytes per image thread."""

    def __init__(self) -> None:
        self.tile = numpy.empty(0, dtype=numpy.uint8) if simplejpeg is not None else None
        self.region = self.tile

    def tile_buffer(self, size: int) -> Any:
        if self.tile.size < size:
            self.tile = numpy.empty(size, dtype=numpy.uint8)
        return self.tile[:size]

    def region_array(self, height: int, width: int, bands: int) -> Any:
        size = height * width * bands
        if self.region.size < size:
            self.region = numpy.empty(size, dtype=numpy.uint8)
        return self.region[:size].reshape(height, width, bands)

    def array(self, name: str, height: int, width: int, bands: int) -> Any:
        """Another kept buffer (the blurred region, the scaled one), by name, or None from KEPT_MAX bytes up:
        blocks that large are mapped for their request and unmapped after it (memory.map_large_blocks),
        and keeping them would add 20 MiB per image thread."""
        size = height * width * bands
        if size >= KEPT_MAX:
            return None
        kept = getattr(self, name, None)
        if kept is None or kept.size < size:
            kept = numpy.empty(size, dtype=numpy.uint8)
            setattr(self, name, kept)
        return kept[:size].reshape(height, width) if bands == 1 else kept[:size].reshape(height, width, bands)


_scratch = Scratch()


@contextmanager
def _tile_reader(source: Source, read: Read | None, tiles: int) -> Iterator[Read | None]:
    """`read`, or the default: the file opened once for a request of several tiles (None if it changed)."""
    if read is None and tiles > 1 and isinstance(source.reader, FileReader):
        with source.reader.current(source.stamp) as pread:
            yield None if pread is None else (lambda _, tile: pread(tile.offset, tile.count))
    else:
        yield read or read_stored


def stored_pixels(source: Source, plan: Plan, read: Read | None = None, max_decoded: int | None = None) -> Any:
    """The pixels a request asks for, before rotation, quality and encoding, from the stored JPEG tiles its
    region covers: each tile decoded by libjpeg-turbo straight into its place in one buffer, then scaled
    once (`scale_array`). An array (height x width x bands), or None where libvips must read the level
    (not JPEG tiles, more than STORED_PIXELS_MAX pixels). `render` and `from_stored` both take their
    pixels from here, so every format, quality and rotation of a request shows the same pixels.

    With the default `read` (`read_stored`) it blocks (a worker thread's job); `max_decoded`: only a request
    whose stored tiles hold at most this many pixels (a thumbnail or an edge tile, made on the event loop)."""
    if simplejpeg is None or not source.raw:
        return None
    index = pick_level(source, plan)
    tiles = source.raw.get(index)
    if tiles is None:
        return None
    left, top, right, bottom = _level_crop(source, plan, index)
    width, height = right - left, bottom - top
    tw, th = source.tile_width, source.tile_height
    cols = range(left // tw, (right - 1) // tw + 1)
    rows = range(top // th, (bottom - 1) // th + 1)
    scaled = (width, height) != (plan.out_w, plan.out_h)
    if max_decoded is not None and len(cols) * len(rows) * tw * th > max_decoded:
        return None
    if width * height > STORED_PIXELS_MAX:
        return None
    part = None
    with _tile_reader(source, read, len(cols) * len(rows)) as read_tile:
        if read_tile is None:
            return None
        for row in rows:
            for col in cols:
                n = row * tiles.tiles_across + col
                if n >= len(tiles.offsets) or tiles.counts[n] == 0:
                    return None
                out = _scratch.tile_buffer(tw * th * 3)
                pixels = _decode_stored(source, StoredTile(index, tiles.offsets[n], tiles.counts[n]), read_tile, out)
                if pixels is None or pixels.shape[:2] != (th, tw):
                    return None
                x, y = col * tw, row * th  # the tile's corner in the level; copy what lies inside the crop
                x0, y0, x1, y1 = max(left, x), max(top, y), min(right, x + tw), min(bottom, y + th)
                if scaled and len(cols) == len(rows) == 1:  # scaled straight from the decoded tile, uncopied
                    return scale_array(pixels[y0 - y : y1 - y, x0 - x : x1 - x], plan.out_w, plan.out_h)
                if part is None:
                    part = _scratch.region_array(height, width, pixels.shape[2])
                elif pixels.shape[2] != part.shape[2]:
                    return None
                part[y0 - top : y1 - top, x0 - left : x1 - left] = pixels[y0 - y : y1 - y, x0 - x : x1 - x]
    if part is None or not scaled:
        return part
    return scale_array(part, plan.out_w, plan.out_h)


def scale_array(part: Any, out_w: int, out_h: int) -> Any:
    """An 8-bit array scaled to out_w x out_h: where it shrinks, a Gaussian blur of sigma (1/scale - 1) / 2
    first (the usual anti-aliasing prefilter), then bilinear interpolation. Without OpenCV, libvips'
    Lanczos resize (`_scale`)."""
    height, width, bands = part.shape
    if cv2 is None:
        img = pyvips.Image.new_from_memory(part.data, width, height, bands, "uchar")
        img = _scale(img.copy(interpretation="b-w" if bands == 1 else "srgb"), out_w, out_h)
        return numpy.frombuffer(img.write_to_memory(), dtype=numpy.uint8).reshape(out_h, out_w, bands)
    sx, sy = out_w / width, out_h / height
    src = part if bands > 1 else part.reshape(height, width)  # OpenCV's one-channel images are 2-D
    sigma_x, sigma_y = max(0.0, (1 / sx - 1) / 2), max(0.0, (1 / sy - 1) / 2)
    if sigma_x > UNBLURRED_SIGMA or sigma_y > UNBLURRED_SIGMA:
        # a sigma of 0 would make OpenCV derive one from the kernel size: a tiny one blurs (almost) nothing
        src = cv2.GaussianBlur(src, (0, 0), sigmaX=max(sigma_x, 1e-3), sigmaY=max(sigma_y, 1e-3),
                               dst=_scratch.array("blurred", height, width, bands), borderType=cv2.BORDER_REPLICATE)
    out = cv2.resize(src, (out_w, out_h), dst=_scratch.array("scaled", out_h, out_w, bands),
                     interpolation=cv2.INTER_LINEAR)
    return out.reshape(out_h, out_w, bands)


def from_stored(source: Source, plan: Plan, enc: Encoding, read: Read | None = None,
                max_decoded: int | None = None) -> bytes | None:
    """A JPEG request answered from the stored JPEG tiles it covers (`stored_pixels`: edge tiles, regions,
    thumbnails of any size), encoded by libjpeg-turbo; the general path's pixels at a fraction of its CPU:
    libvips reads such a TIFF's tiles one at a time under a lock, and sets up a pipeline per resize.

    None where the general path must answer (not JPEG tiles, rotation, mirroring, other qualities,
    formats, more than STORED_PIXELS_MAX pixels)."""
    if simplejpeg is None or plan.format != "jpg" or plan.mirror or plan.rotation:
        return None
    if plan.quality not in ("default", "color"):
        return None
    part = stored_pixels(source, plan, read, max_decoded)
    if part is None:
        return None
    if part.shape[0] * part.shape[1] > TURBO_MAX_PIXELS:
        img = pyvips.Image.new_from_memory(numpy.ascontiguousarray(part).data, part.shape[1], part.shape[0],
                                           part.shape[2], "uchar")
        return libvips_jpeg(img.copy(interpretation="b-w" if part.shape[2] == 1 else "srgb"), enc.jpeg_quality)
    return _turbo_array(part, enc.jpeg_quality)


def _turbo_array(pixels: Any, quality: int) -> bytes:
    if pixels.shape[2] == 1:
        return bytes(simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="GRAY", colorsubsampling="Gray"))
    subsampling = "444" if quality >= 90 else "420"
    return bytes(simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB", colorsubsampling=subsampling))


def to_srgb8(img: pyvips.Image) -> pyvips.Image:
    """sRGB (or grey) with 8 bits per sample, alpha kept."""
    # relative colorimetric, as libvips' own colourspace(): in-gamut colours stay exactly as
    # the profile describes them (perceptual tables of CMYK profiles shift them visibly)
    if img.get_typeof("icc-profile-data"):
        try:
            img = img.icc_transform("srgb", embedded=True, intent="relative")
        except pyvips.Error:
            pass  # a broken profile: fall back to plain conversion below
    elif img.interpretation == "cmyk":
        img = img.icc_transform("srgb", input_profile="cmyk", intent="relative")
    grey = img.bands < 3
    target = "b-w" if grey else "srgb"
    if img.interpretation not in ("srgb", "b-w") or img.format != "uchar":
        if img.interpretation in ("srgb", "b-w", "multiband", "rgb") and img.format in ("ushort", "short"):
            img = (img >> 8).cast("uchar") if img.format == "ushort" else img.cast("uchar")
            img = img.copy(interpretation=target)
        else:
            img = img.colourspace(target)
    if img.format != "uchar":
        img = img.cast("uchar")
    return img


def _apply_quality(img: pyvips.Image, quality: str) -> pyvips.Image:
    """Grey for `gray` and `bitonal`; bitonal is thresholded after rotation (`_threshold`)."""
    if quality in ("gray", "bitonal") and img.bands >= 3:
        img = img.colourspace("b-w")
    if quality == "bitonal" and img.hasalpha():
        img = img.flatten(background=WHITE)
    return img


def _threshold(img: pyvips.Image) -> pyvips.Image:
    """Only black and white: after any interpolation (arbitrary rotation) has made greys."""
    return (img >= 128).ifthenelse(255, 0).cast("uchar").copy(interpretation="b-w")


def _rotate(img: pyvips.Image, plan: Plan) -> pyvips.Image:
    if plan.mirror:
        img = img.fliphor()
    angle = plan.rotation
    if angle == 0:
        return img
    if angle in (90, 180, 270):
        return img.rot(f"d{int(angle)}")
    if plan.format == "jpg" or plan.quality == "bitonal":
        if img.hasalpha():
            img = img.flatten(background=WHITE)
        background = [255.0] * img.bands
    else:
        if not img.hasalpha():
            img = img.bandjoin(255)
        background = [0.0] * img.bands
    return img.rotate(angle, background=background)


def _scale(img: pyvips.Image, out_w: int, out_h: int) -> pyvips.Image:
    if (img.width, img.height) == (out_w, out_h):
        return img
    hscale, vscale = out_w / img.width, out_h / img.height
    if img.hasalpha():
        # resample premultiplied: else the colour of transparent pixels bleeds into the visible ones
        fmt = img.format
        img = img.premultiply().resize(hscale, vscale=vscale).unpremultiply().cast(fmt)
    else:
        img = img.resize(hscale, vscale=vscale)
    if (img.width, img.height) != (out_w, out_h):
        # rounding can leave a pixel more or less: crop or replicate the edge
        img = img.embed(0, 0, out_w, out_h, extend="copy")
    return img


def render(source: Source, plan: Plan) -> pyvips.Image:
    """The pixels a request asks for, not yet encoded."""
    stored = stored_pixels(source, plan)
    if stored is not None:  # the same pixels as `from_stored`'s, whatever the format, quality or rotation
        height, width, bands = stored.shape
        img = pyvips.Image.new_from_memory(numpy.array(stored).data, width, height, bands, "uchar")
        img = img.copy(interpretation="b-w" if bands == 1 else "srgb")
    else:
        index = pick_level(source, plan)
        img = source.image(index)
        left, top, right, bottom = _level_crop(source, plan, index)
        img = img.crop(left, top, right - left, bottom - top)
        img = _scale(img, plan.out_w, plan.out_h)
    img = to_srgb8(img)
    img = _apply_quality(img, plan.quality)
    img = _rotate(img, plan)
    if plan.quality == "bitonal":
        img = _threshold(img)
    return img


def encode(img: pyvips.Image, fmt: str, enc: Encoding, bitonal: bool = False) -> bytes:
    if fmt == "jpg":
        if img.hasalpha():
            img = img.flatten(background=WHITE)
        fast = turbo_jpeg(img, enc.jpeg_quality)
        return fast if fast is not None else libvips_jpeg(img, enc.jpeg_quality)
    if fmt == "png":
        depth = 1 if bitonal else 8
        return img.pngsave_buffer(compression=enc.png_compression, bitdepth=depth, **no_metadata("pngsave_buffer"))
    if fmt == "webp":
        return img.webpsave_buffer(Q=enc.webp_quality, **no_metadata("webpsave_buffer"))
    if fmt == "tif":
        return img.tiffsave_buffer(compression="deflate", **no_metadata("tiffsave_buffer"))
    if fmt == "gif":
        return img.gifsave_buffer(**no_metadata("gifsave_buffer"))
    if fmt == "jp2" and _has_operation("jp2ksave_buffer"):
        return img.jp2ksave_buffer(**no_metadata("jp2ksave_buffer"))
    raise RequestError(f"format {fmt!r} is not supported by this server", status=501)


def libvips_jpeg(img: pyvips.Image, quality: int) -> bytes:
    return img.jpegsave_buffer(Q=quality, **no_metadata("jpegsave_buffer"))  # type: ignore[no-any-return]


def turbo_jpeg(img: pyvips.Image, quality: int) -> bytes | None:
    """JPEG through libjpeg-turbo for small 8-bit grey or RGB images; None where libvips must do it.

    Chroma as libvips subsamples it by default: 4:2:0 below quality 90, none from 90 up."""
    if simplejpeg is None or img.format != "uchar" or img.bands not in (1, 3):
        return None
    if img.width * img.height > TURBO_MAX_PIXELS:
        return None
    pixels = numpy.frombuffer(img.write_to_memory(), dtype=numpy.uint8).reshape(img.height, img.width, img.bands)
    return _turbo_array(pixels, quality)


_trace = threading.local()


def process(source: Source, plan: Plan, enc: Encoding) -> bytes:
    """Encoded bytes for a resolved request (runs in a worker thread)."""
    if plan.format not in FORMATS:
        raise RequestError(f"unknown format {plan.format!r}")
    _trace.passthrough = False
    try:
        stored = raw_tile(source, plan, enc.jpeg_quality)
        if stored is not None:
            _trace.passthrough = True
            return stored
        cut = from_stored(source, plan, enc)  # decoded, but from the stored tiles alone
        if cut is not None:
            trimmer.after_render()
            return cut
        body = encode(render(source, plan), plan.format, enc, plan.quality == "bitonal")
        trimmer.after_render()  # the decode buffers are free now: give their pages back
        return body
    except pyvips.Error as exc:
        raise RequestError(f"image cannot be processed: {_describe(exc, source)}", status=500) from exc
    except OSError as exc:  # the file went away or became unreadable since it was opened
        raise RequestError(f"image cannot be read: {type(exc).__name__}", status=500) from exc


def was_passthrough() -> bool:
    """Whether the last `process` in this thread sent a stored tile as stored (for the metrics)."""
    return bool(getattr(_trace, "passthrough", False))


def _describe(exc: pyvips.Error, source: Source) -> str:
    """The first line of libvips' explanation, naming the file without the server's folders."""
    lines = (getattr(exc, "detail", None) or str(exc)).strip().splitlines()
    line = lines[0].strip() if lines else "libvips error"
    return line.replace(str(source.path), source.path.name)[:200]
