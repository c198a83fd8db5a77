"""Edge tiles stored in the access copy, so that viewers' tiles at the right and bottom edges are read, not rendered.

The stored TIFF tiles at a level's right and bottom edges are padded to the full tile size, so a
viewer's request for one (a smaller region, a smaller size) was decoded and re-encoded per request.
`add_edges` appends one more page to a finished pyramidal TIFF holding every edge tile as the server
answers it today (`pipeline.process` on that tile's request), one complete JPEG stream per strip,
in an order the reader computes from the pyramid alone (`layout`): for each level with stored JPEG
tiles, the last column top to bottom, then the last row left to right without the corner; a column
(row) is an edge where the level's width (height) is not a multiple of the tile. Each tile has two
strips: the size viewers name with `w,h` (Image API 3) and the one `w,` gives (Image API 2, and the
levels smaller than one tile); they differ by a pixel of height on many images, and where they do not,
both strips point at the same bytes. The page's ImageDescription names the JPEG quality, the tile,
the image size and the tile count: `sources` lists the streams in `Source.edges` only when they
describe this pyramid, and `pipeline.locate_stored` sends one as stored when the server's JPEG
quality is the page's. Ingest calls it on the staged copy before the rename (or upload).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from iiif_server.tiles.request import Plan, _proportional

DESCRIPTION = "iiif-server edges "


@dataclass(frozen=True)
class EdgeLevel:
    """The edge tiles of one level, in the page's order from `start`."""

    factor: int
    start: int
    cols: int
    rows: int
    right: bool  # the last column is cut by the image's right edge
    bottom: bool  # the last row by its bottom edge

    @property
    def count(self) -> int:
        return (self.rows if self.right else 0) + (self.cols - (1 if self.right else 0) if self.bottom else 0)


@dataclass(frozen=True)
class EdgeTiles:
    """Where the edge tiles' streams sit in the file: two strips a tile, packed (16 bytes a strip, not ~70
    as tuples: every cached source of a scan carries a few hundred)."""

    quality: int
    offsets: array[int]
    counts: array[int]
    levels: tuple[EdgeLevel, ...]

    @property
    def nbytes(self) -> int:
        arrays = self.offsets.itemsize * len(self.offsets) + self.counts.itemsize * len(self.counts)
        return arrays + 64 * len(self.levels)


def layout(width: int, height: int, tw: int, th: int, factors: list[int]) -> tuple[EdgeLevel, ...]:
    """The edge tiles of the levels at these scale factors, as viewers cut them (in full-image pixels)."""
    out, start = [], 0
    for d in factors:
        sw, sh = tw * d, th * d
        level = EdgeLevel(d, start, -(-width // sw), -(-height // sh), width % sw != 0, height % sh != 0)
        if level.count:
            out.append(level)
            start += level.count
    return tuple(out)


def tiles(levels: tuple[EdgeLevel, ...], width: int, height: int, tw: int,
          th: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(factor, x, y, w, h) of every edge tile, in the page's order."""
    for lv in levels:
        sw, sh = tw * lv.factor, th * lv.factor
        cells = [(lv.cols - 1, row) for row in range(lv.rows)] if lv.right else []
        if lv.bottom:
            cells += [(col, lv.rows - 1) for col in range(lv.cols - (1 if lv.right else 0))]
        for col, row in cells:
            x, y = col * sw, row * sh
            yield lv.factor, x, y, min(sw, width - x), min(sh, height - y)


def sizes(factor: int, w: int, h: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The output sizes viewers ask for a tile: `w,h` (the ceiling of both), and `w,` (height proportional)."""
    out_w = math.ceil(w / factor)
    return (out_w, math.ceil(h / factor)), (out_w, _proportional(out_w, w, h))


def describe(quality: int, tw: int, th: int, width: int, height: int, count: int) -> bytes:
    return f"{DESCRIPTION}q={quality} tile={tw}x{th} size={width}x{height} tiles={count}".encode() + b"\0"


def read_description(description: str) -> dict[str, str] | None:
    """The page's fields (q, tile, size, tiles), None for other pages."""
    if not description.startswith(DESCRIPTION):
        return None
    fields = dict(part.partition("=")[::2] for part in description[len(DESCRIPTION):].split())
    return fields if {"q", "tile", "size", "tiles"} <= fields.keys() and fields["q"].isdigit() else None


def find(edges: EdgeTiles, plan: Plan, width: int, height: int, tw: int, th: int) -> tuple[int, int] | None:
    """(offset, count) of the stored stream for a request that names an edge tile exactly, else None."""
    if plan.x + plan.w != width and plan.y + plan.h != height:
        return None  # an edge tile touches the right or the bottom edge
    for lv in edges.levels:
        sw, sh = tw * lv.factor, th * lv.factor
        if plan.x % sw or plan.y % sh or (plan.w, plan.h) != (min(sw, width - plan.x), min(sh, height - plan.y)):
            continue
        col, row = plan.x // sw, plan.y // sh
        if lv.right and col == lv.cols - 1:
            n = row
        elif lv.bottom and row == lv.rows - 1:
            n = (lv.rows if lv.right else 0) + col
        else:
            continue
        for variant, size in enumerate(sizes(lv.factor, plan.w, plan.h)):
            if size == (plan.out_w, plan.out_h):
                strip = 2 * (lv.start + n) + variant
                return (edges.offsets[strip], edges.counts[strip]) if edges.counts[strip] else None
    return None


