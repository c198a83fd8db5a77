"""Stored JPEG tiles: where a request's tile sits in its file, and its bytes as a stream any decoder reads.

A request that asks exactly for one stored tile (same level, grid and size), a stored thumbnail page or a
stored edge tile is sent as stored (`raw_tile`); `pipeline.stored_pixels` decodes the tiles of others.
"""

from __future__ import annotations

from dataclasses import dataclass

from iiif_server.tiles.edges import find
from iiif_server.tiles.request import Plan
from iiif_server.tiles.sources import FileReader, Source, adobe_transform, declares_rgb

# APP14 "Adobe", version 100, no flags, colour transform 0: the samples are RGB
ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
JPEG_QUALITY = 85  # the server's default (pipeline.Encoding, settings.jpeg_quality)


WHOLE = -1  # StoredTile.level of a complete stored image (a thumbnail page), not a pyramid tile


@dataclass(frozen=True)
class StoredTile:
    """Where one stored JPEG tile sits in its file: found without any I/O."""

    level: int
    offset: int
    count: int


def locate_stored(source: Source, plan: Plan, jpeg_quality: int = JPEG_QUALITY) -> StoredTile | None:
    """The stored tile a request asks for exactly (same level, grid and size), if any.

    `jpeg_quality`: the server's; a stored thumbnail encoded at another is not what it would render."""
    if plan.format != "jpg" or plan.mirror or plan.rotation or plan.quality not in ("default", "color"):
        return None
    if plan.region_is_full and (found := source.stored.get((plan.out_w, plan.out_h))):
        if found[2] == jpeg_quality:
            return StoredTile(WHOLE, found[0], found[1])
    if not source.raw:
        return None
    tw, th = source.tile_width, source.tile_height
    if (plan.out_w, plan.out_h) != (tw, th):
        return _edge(source, plan, jpeg_quality)
    for index, level in enumerate(source.levels):
        d = level.factor
        if plan.w != tw * d or plan.h != th * d or index not in source.raw:
            continue
        if plan.x % (tw * d) or plan.y % (th * d):
            return None
        col, row = plan.x // (tw * d), plan.y // (th * d)
        if (col + 1) * tw > level.width or (row + 1) * th > level.height:
            return _edge(source, plan, jpeg_quality)  # edge tiles are padded in the file
        tiles = source.raw[index]
        n = row * tiles.tiles_across + col
        if n >= len(tiles.offsets) or tiles.counts[n] == 0:
            return None
        return StoredTile(index, tiles.offsets[n], tiles.counts[n])
    return _edge(source, plan, jpeg_quality)


def _edge(source: Source, plan: Plan, jpeg_quality: int) -> StoredTile | None:
    """An edge tile stored as the server renders it (tiles/edges.py), at the server's JPEG quality."""
    edges = source.edges
    if edges is None or edges.quality != jpeg_quality:
        return None
    found = find(edges, plan, source.width, source.height, source.tile_width, source.tile_height)
    return None if found is None else StoredTile(WHOLE, *found)


def assemble_stored(source: Source, tile: StoredTile, data: bytes) -> bytes | None:
    """A stored tile's bytes as a JPEG stream any decoder reads right; None when they cannot be sent as stored."""
    if len(data) != tile.count or not data.startswith(b"\xff\xd8"):
        return None
    if tile.level == WHOLE:
        return data if data.endswith(b"\xff\xd9") else None
    tiles = source.raw[tile.level]
    head = b"\xff\xd8"
    if tiles.rgb:
        if not declares_rgb(data):
            return None  # the samples would decode as YCbCr
        if adobe_transform(data) is None:
            head += ADOBE_RGB  # named R, G, B only: say "no transform" for every decoder
    if tiles.tables:
        # tables hold SOI..EOI; the tile repeats SOI: splice them into one stream
        if not (tiles.tables.startswith(b"\xff\xd8") and tiles.tables.endswith(b"\xff\xd9")):
            return None
        return head + tiles.tables[2:-2] + data[2:]
    return head + data[2:]


def read_stored(source: Source, tile: StoredTile) -> bytes | None:
    """Read a stored tile by path (may block: a worker thread's job).

    The file must still be the one the source describes: offsets of a replaced file point anywhere."""
    reader = source.reader
    if isinstance(reader, FileReader):
        return reader.read_current(tile.offset, tile.count, source.stamp)
    return reader.read(tile.offset, tile.count)  # an object store's reader names the version it expects


def raw_tile(source: Source, plan: Plan, jpeg_quality: int = JPEG_QUALITY) -> bytes | None:
    """The stored JPEG bytes for a request that asks exactly for one stored tile."""
    tile = locate_stored(source, plan, jpeg_quality)
    if tile is None:
        return None
    data = read_stored(source, tile)
    return None if data is None else assemble_stored(source, tile, data)
