"""A thumbnail stored in the access copy, so that a wall of thumbnails is read, not rendered.

`add_thumbnail` appends one page to a finished pyramidal TIFF: the image at the size a
`full/!200,200` request gives, encoded exactly as the general path encodes it, as one
JPEG strip (a complete JPEG stream). Marked as a reduced-resolution page and smaller
than the pyramid's last level, it is not taken for a pyramid level (sources only follow
halvings); `sources._open_tiff` lists it in `Source.stored` and the pipeline sends it as
stored for that one request, when the server encodes JPEG at the quality the page names in
its ImageDescription. Ingest calls it on the staged copy before the rename (or upload).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .pipeline import Encoding, encode, render
from .request import Limits, parse, resolve
from .sources import open_source

THUMBNAIL_BOX = 200  # what thumbnail walls ask: full/!200,200


def add_thumbnail(path: Path, box: int = THUMBNAIL_BOX, encoding: Encoding | None = None) -> tuple[int, int] | None:
    """Append the `!box,box` thumbnail to a JPEG pyramidal TIFF; its size, or None when not worth it.

    Not worth it when the pyramid already holds a level of that size (then the level is the thumbnail),
    nor for an image within the box."""
    st = path.stat()
    source = open_source(path, (st.st_size, st.st_mtime_ns))
    if source.width <= box and source.height <= box:
        return None  # the request would upscale (refused in Image API 3.0); the full image is level 0
    plan = resolve(parse(3, "full", f"!{box},{box}", "0", "default.jpg"), source.width, source.height, Limits())
    size = (plan.out_w, plan.out_h)
    if any((level.width, level.height) == size for level in source.levels):
        return None
    encoding = encoding or Encoding()
    img = render(source, plan)
    grey = img.bands == 1
    body = encode(img, "jpg", encoding)
    append_jpeg_page(path, [body], plan.out_w, plan.out_h, plan.out_h, 1 if grey else 3,
                     subsampling(grey, encoding.jpeg_quality), describe(encoding.jpeg_quality))
    return size


def subsampling(grey: bool, quality: int) -> tuple[int, int]:
    """The chroma subsampling `encode` gives a JPEG at this quality, in the TIFF's terms."""
    return (1, 1) if grey or quality >= 90 else (2, 2)


DESCRIPTION = "iiif-server thumbnail q="


def describe(quality: int) -> bytes:
    """The page's ImageDescription: a server configured for another JPEG quality renders instead."""
    return f"{DESCRIPTION}{quality}".encode() + b"\0"


def quality_of(description: str) -> int | None:
    """The JPEG quality a stored thumbnail was encoded at, from its ImageDescription; None for other pages."""
    if not description.startswith(DESCRIPTION) or not description[len(DESCRIPTION):].isdigit():
        return None
    return int(description[len(DESCRIPTION):])


def append_jpeg_page(path: Path, strips: list[bytes], width: int, height: int, rows_per_strip: int, bands: int,
                     subsampling: tuple[int, int], description: bytes) -> None:
    """Append a reduced-resolution, JPEG-compressed page whose strips are complete JPEG streams.

    Equal strips are written once (two entries may point at the same bytes). Classic TIFF only
    (access copies stay far below 4 GB); the last directory is linked to the new one."""
    with open(path, "r+b") as f:
        head = f.read(8)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or struct.unpack(order + "H", head[2:4])[0] != 42:
            raise ValueError("not a classic TIFF")
        link, offset = 4, struct.unpack(order + "I", head[4:8])[0]
        while offset:  # walk to the last directory
            f.seek(offset)
            (count,) = struct.unpack(order + "H", f.read(2))
            link = offset + 2 + 12 * count
            f.seek(link)
            (offset,) = struct.unpack(order + "I", f.read(4))
        end = f.seek(0, os.SEEK_END)
        out = bytearray(b"\0" * (end & 1))  # every offset below is even
        at: dict[bytes, int] = {}
        for strip in strips:
            if strip not in at:
                at[strip] = end + len(out)
                out += strip + b"\0" * (len(strip) & 1)
        offsets = [at[strip] for strip in strips]
        counts = [len(strip) for strip in strips]
        n = len(strips)
        tables = end + len(out)  # StripOffsets and StripByteCounts live outside their entries past one strip
        if n > 1:
            out += struct.pack(f"{order}{n}I", *offsets) + struct.pack(f"{order}{n}I", *counts)
        bits = end + len(out)  # BitsPerSample of three bands lives outside the entry
        out += struct.pack(order + "4H", 8, 8, 8, 0)
        text = end + len(out)  # the description (NUL-terminated ASCII), padded to an even length
        out += description + b"\0" * (len(description) & 1)
        ifd = end + len(out)
        short, long_ = 3, 4
        entries = [
            (254, long_, 1, 1),  # NewSubfileType: reduced resolution
            (256, long_, 1, width),
            (257, long_, 1, height),
            (258, short, bands, bits if bands == 3 else 8),
            (259, short, 1, 7),  # JPEG
            (262, short, 1, 6 if bands == 3 else 1),  # YCbCr or grey
            (270, 2, len(description), text),  # ImageDescription
            (273, long_, n, offsets[0] if n == 1 else tables),
            (277, short, 1, bands),
            (278, long_, 1, rows_per_strip),
            (279, long_, n, counts[0] if n == 1 else tables + 4 * n),
            (284, short, 1, 1),
        ]
        if bands == 3:
            entries.append((530, short, 2, 0))
        out += struct.pack(order + "H", len(entries))
        for tag, kind, count, value in entries:
            if tag == 530:
                out += struct.pack(order + "HHIHH", tag, kind, count, *subsampling)
            elif kind == short and count == 1:
                out += struct.pack(order + "HHIHH", tag, kind, count, value, 0)
            else:
                out += struct.pack(order + "HHII", tag, kind, count, value)
        out += struct.pack(order + "I", 0)
        f.write(out)
        f.seek(link)
        f.write(struct.pack(order + "I", ifd))
