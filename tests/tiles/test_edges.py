"""Edge tiles stored in the access copy are sent as stored, byte for byte what the server answers without them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import httpx
import pytest
import pyvips
import tifffile

from iiif_server import config
from iiif_server.ingest import demo
from iiif_server.ingest.convert import write_access_copy
from iiif_server.runtime import observe
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import WHOLE, Encoding, locate_stored, process, was_passthrough
from iiif_server.tiles.prepare import add_edges, add_thumbnail
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.web.app import create_app

pytestmark = pytest.mark.libvips  # encoded tiles compared byte for byte


def viewer_tiles(width: int, height: int, factors: list[int], version: int, tile: int = 256) -> list[str]:
    """Every tile URL path (after the identifier) OpenSeadragon's IIIF tile source asks for."""
    out = []
    for d in sorted(factors, reverse=True):
        level_w, level_h = math.ceil(width / d), math.ceil(height / d)
        if level_w < tile and level_h < tile:  # a level inside one tile: the whole image at that width
            size = ("max" if version == 3 else "full") if level_w == width else f"{level_w},"
            out.append(f"full/{size}/0/default.jpg")
            continue
        span = tile * d
        for y in range(0, height, span):
            for x in range(0, width, span):
                w, h = min(span, width - x), min(span, height - y)
                region = "full" if (x, y, w, h) == (0, 0, width, height) else f"{x},{y},{w},{h}"
                sw, sh = math.ceil(w / d), math.ceil(h / d)
                size = f"{sw},{sh}" if version == 3 else f"{sw},"
                out.append(f"{region}/{size}/0/default.jpg")
    return out


def master(root: Path, width: int, height: int, grey: bool = False) -> Path:
    img = demo.scan(width, height, seed=5)
    img = img.colourspace("b-w") if grey else img[:3]
    path = root / "masters" / f"m{width}x{height}{'g' if grey else ''}.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    img.tiffsave(str(path))
    return path


def copies(root: Path, width: int, height: int, grey: bool = False, quality: int = 88,
           subsample: bool = True) -> tuple[Path, Path]:
    """The same access copy twice: plain, and with the pages ingest appends (thumbnail, edges)."""
    plain, stored = root / "plain", root / "stored"
    plain.mkdir(parents=True, exist_ok=True)
    stored.mkdir(parents=True, exist_ok=True)
    write_access_copy(master(root, width, height, grey), 0, plain / "p.tif", quality, subsample,
                      thumbnail_quality=None)
    shutil.copyfile(plain / "p.tif", stored / "p.tif")
    add_thumbnail(stored / "p.tif")
    add_edges(stored / "p.tif", 85)
    return plain, stored


async def answers(root: Path, tmp: Path, paths: list[str], **settings: object) -> list[tuple[bytes, str | None]]:
    """Body and outcome of each GET, response cache off. Each URL is asked twice: the full path answers the
    first (it opens the source), the event loop's hit path the second; both must agree."""
    app = create_app(config.Settings(data_dir=tmp, images=root, demo=False, cache_mb=0, **settings))  # type: ignore
    app.state.service.hot.recheck = 0  # every first request a full lookup: the full path
    log = tmp / "logs" / "access.jsonl"
    out = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            for path in paths:
                first = await c.get(path)
                app.state.service.hot.recheck = 60
                second = await c.get(path)
                app.state.service.hot.recheck = 0
                assert first.status_code == second.status_code == 200, (path, first.text)
                observe.flush_logs()
                seen = [json.loads(line)["outcome"] for line in log.read_text().splitlines()[-2:]]
                assert first.content == second.content and seen[0] == seen[1], (path, seen)
                out.append((second.content, seen[-1]))
    finally:
        app.state.catalogue.engine.dispose()
    return out


def edge_paths(plain: Path, version: int) -> list[str]:
    """The viewer tile URLs the plain copy cannot send as stored (its edge tiles)."""
    source = FileSystemSource(plain).open("p")
    found = []
    for rest in viewer_tiles(source.width, source.height, source.scale_factors, version):
        plan = resolve(parse(version, *rest.split("/")), source.width, source.height, Limits())
        if locate_stored(source, plan) is None:
            found.append(f"/iiif/{version}/p/{rest}")
    return found


@pytest.mark.parametrize(("width", "height", "grey", "quality", "subsample"), [
    (1100, 700, False, 88, True),  # 1100x700 .. 137x87: the last level inside one tile
    (999, 1301, True, 88, True),  # grey; `w,` and `w,h` name different heights for some tiles
    (700, 520, False, 90, False),  # RGB-stored JPEG tiles (`--no-subsample`)
    (200, 150, False, 88, True),  # the whole image inside one padded tile
])
async def test_every_edge_tile_is_sent_as_stored_with_the_plain_copys_bytes(
        tmp_path: Path, width: int, height: int, grey: bool, quality: int, subsample: bool) -> None:
    plain, stored = copies(tmp_path, width, height, grey, quality, subsample)
    source = FileSystemSource(stored).open("p")
    assert source.edges is not None and source.edges.quality == 85
    paths = edge_paths(plain, 2) + edge_paths(plain, 3)
    assert len(paths) >= 2
    before = await answers(plain, tmp_path / "d1", paths)
    after = await answers(stored, tmp_path / "d2", paths)
    for path, (old, old_outcome), (new, new_outcome) in zip(paths, before, after, strict=True):
        assert new == old, path
        assert old_outcome == "decoded" and new_outcome == "passthrough", (path, old_outcome, new_outcome)
    img = pyvips.Image.new_from_buffer(after[-1][0], "")
    assert img.bands == (1 if grey else 3)


async def test_interior_tiles_and_other_requests_are_unchanged(tmp_path: Path) -> None:
    plain, stored = copies(tmp_path, 1100, 700)
    paths = ["/iiif/3/p/0,0,256,256/256,256/0/default.jpg",  # an interior tile: stored in the pyramid
             "/iiif/3/p/1024,0,76,256/76,256/0/default.png",  # an edge tile in another format
             "/iiif/3/p/1024,0,76,256/76,256/0/gray.jpg",
             "/iiif/3/p/1024,0,76,256/76,256/90/default.jpg",
             "/iiif/3/p/1024,0,76,256/38,128/0/default.jpg",  # another size of that region
             "/iiif/3/p/1020,0,80,256/80,256/0/default.jpg",  # not on the grid
             "/iiif/2/p/full/!200,200/0/default.jpg"]  # the stored thumbnail
    before = await answers(plain, tmp_path / "d1", paths)
    after = await answers(stored, tmp_path / "d2", paths)
    assert [body for body, _ in after] == [body for body, _ in before]
    assert [outcome for _, outcome in after] == ["passthrough", "decoded", "decoded", "decoded", "decoded",
                                                 "decoded", "passthrough"]


async def test_a_server_at_another_jpeg_quality_renders_edge_tiles(tmp_path: Path) -> None:
    plain, stored = copies(tmp_path, 1100, 700)
    paths = edge_paths(plain, 3)[:6]
    before = await answers(plain, tmp_path / "d1", paths, jpeg_quality=75)
    after = await answers(stored, tmp_path / "d2", paths, jpeg_quality=75)
    assert after == before
    assert {outcome for _, outcome in after} == {"decoded"}


def test_the_page_describes_this_pyramid(tmp_path: Path) -> None:
    plain, stored = copies(tmp_path, 1100, 700)
    before = FileSystemSource(plain).open("p")
    source = FileSystemSource(stored).open("p")
    assert source.levels == before.levels and source.raw.keys() == before.raw.keys()
    assert source.stored.keys() == {(200, 127)}
    assert source.edges is not None
    # per level: the last column (right) and the last row less the corner; 137x87 is one tile
    assert [(lv.factor, lv.count) for lv in source.edges.levels] == [(1, 3 + 4), (2, 2 + 2), (4, 1 + 1), (8, 1)]
    assert len(source.edges.offsets) == 2 * 14
    assert source.nbytes - before.nbytes < 1024  # eight bytes a strip and the level table
    # appended again for another pyramid's geometry: no longer believed
    copy = stored / "q.tif"
    shutil.copyfile(stored / "p.tif", copy)
    with open(copy, "r+b") as fh:
        data = fh.read()
        at = data.index(b"size=1100x700")
        fh.seek(at)
        fh.write(b"size=1100x701")
    assert FileSystemSource(stored).open("q").edges is None


def test_a_worker_threads_process_sends_the_stored_stream(tmp_path: Path) -> None:
    """`process` (the pool's path, when the bytes are not in the page cache) sends it as stored too."""
    plain, stored = copies(tmp_path, 1100, 700)
    source = FileSystemSource(stored).open("p")
    plan = resolve(parse(2, "1024,512,76,188", "76,", "0", "default.jpg"), 1100, 700, Limits())
    tile = locate_stored(source, plan)
    assert tile is not None and tile.level == WHOLE
    body = process(source, plan, Encoding())
    assert was_passthrough()
    assert body == process(FileSystemSource(plain).open("p"), plan, Encoding()) and not was_passthrough()


def test_no_page_where_no_level_has_edges(tmp_path: Path) -> None:
    plain = tmp_path / "p.tif"
    write_access_copy(master(tmp_path, 512, 512), 0, plain, thumbnail_quality=None)  # 512, 256: whole tiles
    assert add_edges(plain, 85) is None
    assert FileSystemSource(tmp_path).open("p").edges is None


def test_ingest_writes_the_page_at_the_served_quality(tmp_path: Path) -> None:
    write_access_copy(master(tmp_path, 1100, 700), 0, tmp_path / "p.tif")
    edges = FileSystemSource(tmp_path).open("p").edges
    assert edges is not None and edges.quality == 85


def test_libvips_and_tifffile_still_read_the_pyramid(tmp_path: Path) -> None:
    plain, stored = copies(tmp_path, 1100, 700)
    path = stored / "p.tif"
    source = FileSystemSource(stored).open("p")
    with tifffile.TiffFile(path) as tif:
        shapes = [tuple(level.shape[:2]) for level in tif.series[0].levels]
        assert shapes == [(lv.height, lv.width) for lv in source.levels]
        assert [p.description for p in tif.pages[-2:]][1].startswith("iiif-server edges q=85 ")
    with tifffile.TiffFile(plain / "p.tif") as tif:
        plain_shapes = [tuple(level.shape[:2]) for level in tif.series[0].levels]
    assert plain_shapes == shapes
    for level in source.levels:
        img = pyvips.Image.new_from_file(str(path), page=level.page)
        ref = pyvips.Image.new_from_file(str(plain / "p.tif"), page=level.page)
        assert (img.width, img.height) == (level.width, level.height)
        assert (img - ref).abs().max() == 0
    assert pyvips.Image.new_from_file(str(path)).width == 1100


def test_the_edge_page_is_not_a_level_even_where_it_would_halve_the_last(tmp_path: Path) -> None:
    """A one-level 512x2049 TIFF: its edges page (four strips, nominally 256x1024) halves it, yet is no level."""
    path = tmp_path / "p.tif"
    demo.scan(512, 2049, seed=1)[:3].tiffsave(str(path), tile=True, tile_width=256, tile_height=256,
                                             compression="jpeg", Q=85)
    before = FileSystemSource(tmp_path).open("p")
    assert add_edges(path, 85) == 2
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[-1].shape[:2] == (1024, 256)
    after = FileSystemSource(tmp_path).open("p")
    assert after.levels == before.levels and after.edges is not None
