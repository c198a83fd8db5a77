"""Odd-sized pages keep their edge colours under 4:2:0 chroma (issue 18): libvips fills the rest of an edge tile
with black, so an odd last column or row shared its colour with black, and a 1x1 page came out grey."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
import tifffile

from iiif_server.ingest.convert import write_access_copy
from iiif_server.tiles.sources import open_source

RED, GREEN = [220, 20, 20], [20, 200, 20]


def page(width: int, height: int, edge: int) -> pyvips.Image:
    """Green, its last `edge` columns and rows red."""
    img = (pyvips.Image.black(width, height, bands=3) + GREEN).cast("uchar")
    img = img.draw_rect(RED, width - edge, 0, edge, height, fill=True).draw_rect(RED, 0, height - edge, width, edge,
                                                                                 fill=True)
    return img.copy(interpretation="srgb")


def near(pixel: list[float], colour: list[int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


@pytest.mark.parametrize(("width", "height"), [(257, 193), (1001, 777), (513, 3), (3, 513)])
def test_an_odd_sized_page_keeps_its_size_and_its_edge_colour(tmp_path: Path, width: int, height: int) -> None:
    master, copy = tmp_path / "m.png", tmp_path / "c.tif"
    page(width, height, 3).pngsave(str(master))
    assert write_access_copy(master, 0, copy) == (width, height)
    with tifffile.TiffFile(copy) as tif:
        assert (tif.pages[0].imagewidth, tif.pages[0].imagelength) == (width, height)
    st = copy.stat()
    source = open_source(copy, (st.st_size, st.st_mtime_ns))
    assert (source.width, source.height) == (width, height)
    decoded = pyvips.Image.new_from_file(str(copy))
    assert (decoded.width, decoded.height) == (width, height)
    for x, y in ((width - 1, 0), (0, height - 1), (width - 1, height - 1)):
        assert near(decoded(x, y), RED), (x, y, decoded(x, y))
    if min(width, height) > 10:
        assert near(decoded(width // 2 - 4, height // 2 - 4), GREEN)


def test_a_one_pixel_page_is_its_colour_not_grey(tmp_path: Path) -> None:
    master, copy = tmp_path / "m.png", tmp_path / "c.tif"
    (pyvips.Image.black(1, 1, bands=3) + RED).cast("uchar").copy(interpretation="srgb").pngsave(str(master))
    assert write_access_copy(master, 0, copy) == (1, 1)
    assert near(pyvips.Image.new_from_file(str(copy))(0, 0), RED, 45)
