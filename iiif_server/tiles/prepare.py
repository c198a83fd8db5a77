"""Pages prepared at ingest, appended to an access copy: the stored thumbnail (thumbnail.py) and the
viewers' edge tiles (edges.py), each exactly as the server would render it. Only ingest writes them;
the serving code reads them through sources.py, and never imports this module."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pyvips

from iiif_server.tiles import edges, thumbnail
from iiif_server.tiles.edges import layout, sizes, tiles
from iiif_server.tiles.pipeline import Encoding, encode, process, render
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.tiles.sources import open_source
from iiif_server.tiles.thumbnail import subsampling


def add_edges(path: Path, quality: int) -> int | None:
    """Append the edge tiles' page to a JPEG pyramidal TIFF, encoded at the server's JPEG `quality`;
    the number of edge tiles, or None when there are none (no stored JPEG tiles, or every level a
    multiple of the tile)."""
    st = path.stat()
    source = open_source(path, (st.st_size, st.st_mtime_ns))
    w, h, tw, th = source.width, source.height, source.tile_width, source.tile_height
    levels = layout(w, h, tw, th, [source.levels[i].factor for i in sorted(source.raw)])
    if not levels:
        return None
    encoding = Encoding(jpeg_quality=quality)
    strips: list[bytes] = []
    for factor, x, y, rw, rh in tiles(levels, w, h, tw, th):
        done: dict[tuple[int, int], bytes] = {}
        for size in sizes(factor, rw, rh):
            if size not in done:
                plan = resolve(parse(3, f"{x},{y},{rw},{rh}", f"{size[0]},{size[1]}", "0", "default.jpg"), w, h,
                               Limits())
                done[size] = process(source, plan, encoding)  # what the server answers for it today
            strips.append(done[size])
    grey = pyvips.Image.new_from_buffer(strips[0], "").bands == 1  # a header read
    count = len(strips) // 2
    # nominally a column of full tiles, one a strip: a shape TIFF readers list without complaint (never decoded)
    append_jpeg_page(path, strips, tw, th * len(strips), th, 1 if grey else 3, subsampling(grey, quality),
                     edges.describe(quality, tw, th, w, h, count))
    return count


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
                     subsampling(grey, encoding.jpeg_quality), thumbnail.describe(encoding.jpeg_quality))
    return size


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
