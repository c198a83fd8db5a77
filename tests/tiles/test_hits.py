"""The hit path makes small public renders on the event loop, and looks a source up again itself when its
second is up: a thumbnail wall is answered even while every image thread is busy, with the full path's bytes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from iiif_server import config
from iiif_server.ingest import demo
from iiif_server.ingest.convert import write_access_copy
from iiif_server.web.app import create_app

pytestmark = pytest.mark.libvips


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of access copies served without ingest: pyramid levels of JPEG tiles, no stored thumbnail."""
    root = tmp_path_factory.mktemp("loose")
    masters = tmp_path_factory.mktemp("masters")
    for name, (width, height) in {"a": (1804, 2002), "b": (2400, 3000)}.items():
        demo.scan(width, height, seed=7)[:3].tiffsave(str(masters / f"{name}.tif"))
        write_access_copy(masters / f"{name}.tif", 0, root / f"{name}.tif", 88, True, thumbnail_quality=None)
    return root


SIZES = ["90,", "!100,100", "!150,150", "!200,200", "!240,240", "!400,400", ",150"]


async def test_thumbnails_are_made_while_every_image_thread_is_busy(loose: Path, tmp_path: Path) -> None:
    app = create_app(config.Settings(data_dir=tmp_path, images=loose, demo=False, cache_mb=0))
    service = app.state.service
    release = threading.Event()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            full_path = {}
            for name in ("a", "b"):  # the full path opens each source and renders (in the image threads)
                for size in SIZES:
                    r = await c.get(f"/iiif/2/{name}/full/{size}/0/default.jpg", headers={"If-None-Match": '"x"'})
                    assert r.status_code == 200
                    full_path[name, size] = r.content
            busy = [service.runtime.pool.submit(release.wait, 60) for _ in range(service.runtime.pool._max_workers)]
            service.hot.recheck = 0  # every source's second is up: each request looks it up again first
            for (name, size), expected in full_path.items():
                r = await asyncio.wait_for(c.get(f"/iiif/2/{name}/full/{size}/0/default.jpg"), 10)
                assert r.status_code == 200, (name, size)
                assert r.content == expected, (name, size)  # the full path's bytes
                img = pyvips.Image.new_from_buffer(r.content, "")
                assert max(img.width, img.height) <= 400 and img.bands == 3
            assert not any(job.done() for job in busy)
    finally:
        release.set()
        app.state.catalogue.engine.dispose()


async def test_a_large_render_still_goes_to_the_image_threads(loose: Path, tmp_path: Path) -> None:
    """Past 0.6 megapixels of stored tiles a request would hold the loop too long: it waits for an image thread."""
    app = create_app(config.Settings(data_dir=tmp_path, images=loose, demo=False, cache_mb=0))
    service = app.state.service
    release = threading.Event()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            assert (await c.get("/iiif/2/b/full/!200,200/0/default.jpg")).status_code == 200  # opens the source
            busy = [service.runtime.pool.submit(release.wait, 60) for _ in range(service.runtime.pool._max_workers)]
            waiting = asyncio.ensure_future(c.get("/iiif/2/b/0,0,2400,3000/1200,/0/default.jpg"))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            release.set()
            r = await asyncio.wait_for(waiting, 30)
            assert r.status_code == 200
            assert pyvips.Image.new_from_buffer(r.content, "").width == 1200
            assert all(job.done() for job in busy)
    finally:
        release.set()
        app.state.catalogue.engine.dispose()


def test_a_sigma_below_the_blur_threshold_leaves_the_pixels_as_they_are() -> None:
    """Thumbnails at two thirds of their level's size or more skip the prefilter: OpenCV's kernel there is
    (1, 0, 0), so the blur would copy the pixels (checked on detail at every pixel, colour and grey)."""
    import cv2

    from iiif_server.tiles.pipeline import UNBLURRED_SIGMA

    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (120, 130, 3), dtype=np.uint8)
    colour[::2, ::2] = 255
    colour[1::2, 1::2] = 0
    for img in (colour, np.ascontiguousarray(colour[..., 1])):
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=UNBLURRED_SIGMA, sigmaY=UNBLURRED_SIGMA,
                                   borderType=cv2.BORDER_REPLICATE)
        assert np.array_equal(blurred, img)


async def test_remembered_urls_and_hosts_answer_as_the_first_time(loose: Path, tmp_path: Path) -> None:
    """The hit path remembers what a URL and a Host header resolve to: a host refused once stays refused, a URL
    whose identifier does not decode keeps its error, and another Host of a remembered URL is checked."""
    app = create_app(config.Settings(data_dir=tmp_path, images=loose, demo=False, cache_mb=64))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            tile = "/iiif/3/a/0,0,256,256/256,256/0/default.jpg"
            for _ in range(3):
                ok = await c.get(tile, headers={"Host": "localhost"})
                assert ok.status_code == 200 and "<http://localhost/iiif/3/a/" in ok.headers["link"]
                assert (await c.get(tile, headers={"Host": "evil.example"})).status_code == 400
                upper = await c.get(tile, headers={"Host": "LOCALHOST:80"})
                assert "<http://localhost/iiif/3/a/" in upper.headers["link"]
                bad = await c.get("/iiif/3/%FF%FE/full/max/0/default.jpg", headers={"Host": "localhost"})
                assert bad.status_code in (400, 404)
            assert len(app.state.service.urls) <= 3
    finally:
        app.state.catalogue.engine.dispose()


async def test_a_damaged_tile_gives_a_clear_500_from_either_path(
        loose: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A thumbnail whose stored tile is damaged: libvips reads the level and says what is wrong, a short 500
    every time; neither the hit path nor the full path fails unhandled."""
    import shutil

    from iiif_server.tiles.files import FileSystemSource

    root = tmp_path / "images"
    root.mkdir()
    shutil.copyfile(loose / "a.tif", root / "a.tif")
    source = FileSystemSource(root).open("a")
    tiles = source.raw[len(source.levels) - 1]  # the smallest level: one tile holds a `!200,200`
    with open(root / "a.tif", "r+b") as f:
        f.seek(tiles.offsets[0] + 2)
        f.write(b"\xff\x00" * 40)  # the tile's markers and the start of its data, same length
    app = create_app(config.Settings(data_dir=tmp_path / "data", images=root, demo=False, cache_mb=0))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            for _ in range(3):  # the full path, then the hit path (the source is open)
                r = await c.get("/iiif/2/a/full/!200,200/0/default.jpg")
                assert r.status_code == 500
                assert r.text.startswith("image cannot be processed: ") and len(r.content) < 300, r.text
    finally:
        app.state.catalogue.engine.dispose()
    logged = capfd.readouterr()
    assert "hit path failed" not in logged.out + logged.err
    assert "unhandled error" not in logged.out + logged.err
