"""A thumbnail page stored in the access copy is sent as stored, byte for byte what the general path gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from iiif_server.ingest import demo
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import Encoding, encode, locate_stored, raw_tile, render
from iiif_server.tiles.prepare import add_thumbnail
from iiif_server.tiles.request import Limits, parse, resolve

pytestmark = pytest.mark.libvips  # encoded thumbnails compared byte for byte


def access_copy(root: Path, name: str, width: int, height: int, grey: bool = False) -> Path:
    img = demo.scan(width, height, seed=9)
    img = img.colourspace("b-w") if grey else img[:3]
    path = root / f"{name}.tif"
    img.tiffsave(str(path), tile=True, tile_width=256, tile_height=256, pyramid=True, compression="jpeg", Q=85)
    return path


@pytest.mark.parametrize("grey", [False, True])
def test_stored_thumbnail_is_the_general_paths_bytes(tmp_path: Path, grey: bool) -> None:
    path = access_copy(tmp_path, "p", 1300, 1900, grey)
    before = FileSystemSource(tmp_path).open("p")
    assert add_thumbnail(path) == (137, 200)
    source = FileSystemSource(tmp_path).open("p")
    assert source.levels == before.levels and source.raw.keys() == before.raw.keys()
    assert set(source.stored) == {(137, 200)}
    plan = resolve(parse(3, "full", "!200,200", "0", "default.jpg"), source.width, source.height, Limits())
    stored = raw_tile(source, plan)
    assert stored is not None
    assert stored == encode(render(source, plan), "jpg", Encoding())
    img = pyvips.Image.new_from_buffer(stored, "")
    assert (img.width, img.height, img.bands) == (137, 200, 1 if grey else 3)
    # the file is still the same pyramid to libvips
    assert pyvips.Image.new_from_file(str(path)).width == 1300


@pytest.mark.parametrize(("region", "size", "qf"), [("full", "!150,150", "default.jpg"),
                                                     ("full", "!200,200", "gray.jpg"),
                                                     ("0,0,1300,1899", "137,", "default.jpg"),
                                                     ("full", "!200,200", "default.png")])
def test_other_requests_do_not_take_the_thumbnail(tmp_path: Path, region: str, size: str, qf: str) -> None:
    add_thumbnail(access_copy(tmp_path, "p", 1300, 1900))
    source = FileSystemSource(tmp_path).open("p")
    plan = resolve(parse(3, region, size, "0", qf), source.width, source.height, Limits())
    assert locate_stored(source, plan) is None


def test_no_thumbnail_where_a_level_has_its_size(tmp_path: Path) -> None:
    assert add_thumbnail(access_copy(tmp_path, "q", 1600, 800)) is None  # 200x100 is the level at factor 8
    assert FileSystemSource(tmp_path).open("q").stored == {}


def test_no_thumbnail_for_an_image_within_the_box(tmp_path: Path) -> None:
    assert add_thumbnail(access_copy(tmp_path, "s", 200, 150)) is None
    assert FileSystemSource(tmp_path).open("s").stored == {}


def test_a_thumbnail_scaled_the_old_way_is_not_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page written before thumbnails were scaled as the server scales them now (libvips' Lanczos) is no
    longer the general path's answer: it is left unread, and the file is still the same pyramid."""
    from iiif_server.tiles import thumbnail

    path = access_copy(tmp_path, "p", 1300, 1900)
    before = FileSystemSource(tmp_path).open("p")
    monkeypatch.setattr(thumbnail, "describe", lambda quality: f"iiif-server thumbnail q={quality}".encode() + b"\0")
    assert add_thumbnail(path) == (137, 200)
    source = FileSystemSource(tmp_path).open("p")
    assert source.stored == {} and source.levels == before.levels
    plan = resolve(parse(3, "full", "!200,200", "0", "default.jpg"), source.width, source.height, Limits())
    assert locate_stored(source, plan) is None
