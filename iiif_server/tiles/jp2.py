"""JPEG 2000 served without ingest: its resolution levels, decoded by libvips or else by Pillow.

A JPEG 2000 codestream holds its image at every resolution level of its wavelet transform, and
either decoder can stop at one (libvips' `page`, Pillow's `reduce`), so a thumbnail of a large
scan decodes a small level, never the whole image. The number of levels is read from the
codestream's COD marker. The libvips bundled with pyvips-binary has no OpenJPEG (Debian's has);
Pillow's wheels bundle it, so there Pillow decodes. Either way the file is untiled: each level is
decoded whole, within untiled.py's budget.
"""

from __future__ import annotations

import math
import struct
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

import pyvips

if TYPE_CHECKING:
    from iiif_server.tiles.sources import Reader

SUFFIXES = (".jp2", ".j2k", ".j2c", ".jpx")
LIBVIPS_DECODES = bool(pyvips.type_find("VipsOperation", "jp2kload"))
HEAD_BYTES = 1 << 16  # the main header (SIZ, COD) sits within the first few hundred bytes of real files
MAX_PIXELS = 1 << 30  # as ingest's limit for Pillow: a level is decoded whole, twice over in memory
SOC_SIZ = b"\xff\x4f\xff\x51"
COD = 0xFF52


def is_jp2(path: PurePath) -> bool:
    return path.suffix.lower() in SUFFIXES


def header(fh: BinaryIO) -> tuple[int, int, int]:
    """Width, height and the number of reduced levels (decomposition levels) of the codestream."""
    head = fh.read(HEAD_BYTES)
    start = head.find(SOC_SIZ)
    if start < 0:
        raise ValueError("no JPEG 2000 codestream")
    pos = start + 2
    width = height = levels = -1
    while pos + 4 <= len(head):
        marker, length = struct.unpack(">HH", head[pos : pos + 4])
        if marker == 0xFF51 and pos + 22 <= len(head):  # SIZ: Xsiz, Ysiz, XOsiz, YOsiz
            xsiz, ysiz, xo, yo = struct.unpack(">IIII", head[pos + 6 : pos + 22])
            width, height = xsiz - xo, ysiz - yo
        elif marker == COD and pos + 10 <= len(head):  # Scod, progression, layers (2), MCT, then the levels
            levels = head[pos + 9]
            break
        elif marker in (0xFF90, 0xFF93):  # a tile-part or the data: the main header is over
            break
        pos += 2 + length
    if width <= 0 or height <= 0 or levels < 0:
        raise ValueError("JPEG 2000 main header without SIZ or COD")
    return width, height, levels


def level_size(width: int, height: int, reduce: int) -> tuple[int, int]:
    """A level's size as both decoders give it (rounded up)."""
    return math.ceil(width / 2**reduce), math.ceil(height / 2**reduce)


def pillow_decodes(width: int, height: int, reduce: int) -> bool:
    """Whether Pillow can decode this level: it sizes a reduced image by rounding half up where
    OpenJPEG rounds up, and refuses the level when the two differ (Pillow 12)."""
    power = 1 << reduce
    return all(int((side + (power >> 1)) / power) == math.ceil(side / power) for side in (width, height))


def levels(width: int, height: int, reductions: int) -> list[int]:
    """The reduce factors this server decodes: all of them with libvips; with Pillow, up to the first
    it cannot (requests for smaller sizes then shrink that level)."""
    usable = []
    for reduce in range(reductions + 1):
        if not LIBVIPS_DECODES and not pillow_decodes(width, height, reduce):
            break
        usable.append(reduce)
    return usable


class PillowReader:
    """A JPEG 2000 file (or object) decoded by Pillow; `page` names the resolution level, as for libvips."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner

    def read(self, offset: int, size: int) -> bytes:
        return self.inner.read(offset, size)

    def stream(self) -> BinaryIO:
        return self.inner.stream()

    def load(self, page: int = 0, **_: Any) -> pyvips.Image:
        from PIL import Image as PILImage

        with self.inner.stream() as fh, PILImage.open(fh) as im:
            w, h = level_size(im.width, im.height, page)
            if w * h > MAX_PIXELS:
                raise ValueError(f"a {w}x{h} JPEG 2000 level is too large to decode")
            im.reduce = page  # type: ignore[assignment,method-assign]  # the decoder's reduce factor
            im.load()
            mode = "RGBA" if "A" in im.getbands() else ("L" if im.mode in ("L", "I;16", "I") else "RGB")
            if im.mode.startswith("I"):  # 16-bit grey: scaled to 8 bits, not clipped
                im = im.point(lambda v: v / 257, "I").convert("L")  # type: ignore[arg-type]
            pixels = im if im.mode == mode else im.convert(mode)
            img = pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height, len(mode), "uchar")
        return img.copy(interpretation="b-w" if mode == "L" else "srgb")


def reader_for(inner: Reader) -> Reader:
    """The reader that decodes JPEG 2000 here: the file's own (libvips) or Pillow's."""
    return inner if LIBVIPS_DECODES else PillowReader(inner)
