"""Images in S3 (SeaweedFS on loopback, a real server, no mock): what only object storage has.

The image tests themselves run on S3 too where they are marked `storages` (tests/web/test_http.py,
tests/tiles/test_pixels.py, tests/tiles/test_traversal.py): each runs as `[files]` and as `[s3]`, with
`settings`, `client`, `pyramid` and `hc` serving the same images uploaded to a bucket, through
`--images s3://images/test` (tests/conftest.py). Here: the cost of a stored tile (one ranged GET of its
bytes), no whole-object reads for regions, the stamp's TTL, health and credentials.

Without the `weed` binary these tests skip, unless IIIF_SERVER_REQUIRE_S3=1 (.ci/run).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import obstore
import pytest
import pyvips
import seaweed
from support import S3_BUCKET, quadrants, s3_settings_for

from iiif_server import config
from iiif_server.storage import upload
from iiif_server.tiles import hot
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.objectstore import ObjectStoreSource
from iiif_server.tiles.pipeline import raw_tile
from iiif_server.tiles.prepare import add_edges
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.tiles.sources import Source
from iiif_server.web.app import create_app, image_source


@pytest.fixture(scope="module")
def pyramid(s3_settings: config.Settings) -> Source:
    return image_source(s3_settings).open("pyramid")


@pytest.fixture
async def hc(hostile_s3_settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over the traversal tests' hostile layout, in S3 (tests/tiles/conftest.py)."""
    app = create_app(hostile_s3_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


# --- what only object storage has ----------------------------------------------------------------------------


def test_the_source_is_the_object_store(s3_settings: config.Settings, pyramid: Source) -> None:
    assert isinstance(image_source(s3_settings), ObjectStoreSource)
    assert pyramid.path.as_posix() == "pyramid.tif"


def test_geometry_and_stored_tile_offsets_equal_the_files(s3_settings: config.Settings, image_root: Path) -> None:
    s3, fs = image_source(s3_settings), FileSystemSource(image_root)
    for ident in ("pyramid", "quadrants", "nested/deeper/page"):
        a, b = s3.open(ident), fs.open(ident)
        assert (a.width, a.height, a.levels, a.tile_width, a.tile_height) == (b.width, b.height, b.levels,
                                                                               b.tile_width, b.tile_height)
        assert a.raw == b.raw


async def test_a_stored_tile_is_one_ranged_get_of_exactly_its_bytes(s3_settings: config.Settings,
                                                                    image_root: Path) -> None:
    app = create_app(s3_settings)
    source = app.state.service.source
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get("/iiif/3/pyramid/info.json")).status_code == 200  # directories read once here
        opened = source.open("pyramid")
        fs = FileSystemSource(image_root).open("pyramid")
        for col, row in ((0, 0), (3, 2), (7, 5)):
            fetches, fetched = source.blocks.fetches, source.blocks.fetched
            r = await c.get(f"/iiif/3/pyramid/{col * 256},{row * 256},256,256/256,256/0/default.jpg")
            assert r.status_code == 200
            index = row * opened.raw[0].tiles_across + col
            assert source.blocks.fetches - fetches == 1, "one GET per stored tile"
            assert source.blocks.fetched - fetched == opened.raw[0].counts[index], "of exactly its bytes"
            with open(image_root / "pyramid.tif", "rb") as fh:
                fh.seek(fs.raw[0].offsets[index])
                assert fh.read(fs.raw[0].counts[index])[2:] in r.content
    app.state.catalogue.engine.dispose()


async def test_object_sources_stay_off_the_file_hot_path(s3_settings: config.Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The file hot path (tiles/hot.py) stats a file before reusing its source: an object's key is no file,
    so object sources are never kept there and each request asks the store (which trusts a HEAD for its TTL)."""
    statted: list[str] = []
    real_stat = hot.os.stat

    def stat(path: object, *args: object, **kwargs: object) -> object:
        statted.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    app = create_app(s3_settings)
    service = app.state.service
    monkeypatch.setattr(hot.os, "stat", stat)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        for _ in range(2):
            for url in ("/iiif/3/pyramid/0,0,256,256/256,256/0/default.jpg", "/iiif/3/pyramid/info.json",
                        "/iiif/3/pyramid/full/!200,200/0/default.jpg"):
                assert (await c.get(url)).status_code == 200
    assert not service.hot._items
    assert not any(p.endswith("pyramid.tif") for p in statted), statted
    opened = hot.Opened(service.source.open("pyramid"), time.monotonic())
    service.hot.put("pyramid", opened)
    assert service.hot.get("pyramid") is None
    assert service.hot.read_nowait(opened.source, 0, 8) is None
    app.state.catalogue.engine.dispose()


@pytest.mark.libvips
async def test_rendered_regions_read_blocks_not_whole_objects(weed: seaweed.Weed, tmp_path: Path) -> None:
    # a pyramid larger than a few blocks, with noise so that its tiles do not compress to nothing
    big = quadrants(4096, 4096).add(pyvips.Image.gaussnoise(4096, 4096, sigma=30)).cast("uchar")
    big.copy(interpretation="srgb").tiffsave(str(tmp_path / "big.tif"), tile=True, tile_width=256,
                                             tile_height=256, pyramid=True, compression="jpeg", Q=90)
    size = (tmp_path / "big.tif").stat().st_size
    upload(weed.store(S3_BUCKET, "blocks"), tmp_path / "big.tif", "big.tif")
    app = create_app(s3_settings_for(weed, tmp_path / "data", "blocks"))
    source = app.state.service.source
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        r = await c.get("/iiif/3/big/1000,1000,700,500/350,/0/default.png")  # general path, level 1
        assert r.status_code == 200
        img = pyvips.Image.new_from_buffer(r.content, "")
        assert (img.width, img.height) == (350, 250)
        r = await c.get("/iiif/3/big/3000,3000,300,300/300,/0/default.jpg")  # off the grid, full resolution
        assert r.status_code == 200
    assert source.blocks.fetched < size / 3, (source.blocks.fetched, size)
    app.state.catalogue.engine.dispose()


@pytest.mark.libvips
async def test_an_edge_tile_stored_at_ingest_is_one_ranged_get_of_its_stream(weed: seaweed.Weed,
                                                                              tmp_path: Path) -> None:
    """The edges page (tiles/edges.py) read from object storage: the same streams, each one GET."""
    path = tmp_path / "edged.tif"
    quadrants(1100, 700).tiffsave(str(path), tile=True, tile_width=256, tile_height=256, pyramid=True,
                                  compression="jpeg", Q=85)
    add_edges(path, 85)
    upload(weed.store(S3_BUCKET, "edges"), path, "edged.tif")
    app = create_app(s3_settings_for(weed, tmp_path / "data", "edges"))
    source = app.state.service.source
    local = FileSystemSource(tmp_path).open("edged")
    url = "/iiif/2/edged/1024,512,76,188/76,/0/default.jpg"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get("/iiif/2/edged/info.json")).status_code == 200
        assert source.open("edged").edges == local.edges
        fetches = source.blocks.fetches
        r = await c.get(url)
        assert r.status_code == 200 and source.blocks.fetches - fetches == 1
    plan = resolve(parse(2, *url.split("/")[4:]), 1100, 700, Limits())
    assert r.content == raw_tile(local, plan)
    app.state.catalogue.engine.dispose()


async def test_a_replaced_object_is_served_once_its_stamp_expires(weed: seaweed.Weed, tmp_path: Path) -> None:
    store = weed.store(S3_BUCKET, "replaced")
    red = pyvips.Image.black(40, 30, bands=3).new_from_image([255, 0, 0]).cast("uchar").copy(interpretation="srgb")
    blue = red.new_from_image([0, 0, 255]).cast("uchar").copy(interpretation="srgb")
    obstore.put(store, "page.png", red.pngsave_buffer())
    for ttl, expected in ((3600, [255, 0, 0]), (0, [0, 0, 255])):
        app = create_app(s3_settings_for(weed, tmp_path / f"d{ttl}", "replaced", s3_ttl=ttl))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            first = await c.get("/iiif/3/page/full/max/0/default.png")
            assert pyvips.Image.new_from_buffer(first.content, "")(5, 5)[:3] == [255, 0, 0]
            obstore.put(store, "page.png", blue.pngsave_buffer())
            second = await c.get("/iiif/3/page/full/max/0/default.png")
            assert second.status_code == 200
            assert pyvips.Image.new_from_buffer(second.content, "")(5, 5)[:3] == expected
            if ttl == 0:
                assert second.headers["etag"] != first.headers["etag"]
        app.state.catalogue.engine.dispose()
        obstore.put(store, "page.png", red.pngsave_buffer())


@pytest.mark.parametrize("change", [{"images": "s3://no-such-bucket/x"}, {"s3_secret_access_key": "wrong-secret"},
                                    {"s3_access_key_id": "nobody"}])
async def test_healthz_is_503_without_a_readable_bucket(weed: seaweed.Weed, tmp_path: Path,
                                                        change: dict[str, str]) -> None:
    settings = dataclasses.replace(s3_settings_for(weed, tmp_path, "test"), **change)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        r = await c.get("/healthz")
        assert r.status_code == 503
        tile = await c.get("/iiif/3/pyramid/info.json")
        assert tile.status_code in (404, 503)
        for body in (r.text, tile.text):
            assert seaweed.SECRET_KEY not in body and "wrong-secret" not in body
    app.state.catalogue.engine.dispose()


async def test_hidden_keys_are_not_served(hc: httpx.AsyncClient) -> None:
    assert (await hc.get("/iiif/3/inside/info.json")).status_code == 200
    assert (await hc.get("/iiif/3/.hidden%2Finside/info.json")).status_code == 404
    assert (await hc.get("/iiif/3/..%2Foutside%2Fsecret/info.json")).status_code == 400


def test_the_secret_is_not_in_the_settings_repr(s3_settings: config.Settings) -> None:
    assert seaweed.SECRET_KEY not in repr(s3_settings)
    assert "s3_secret_access_key" not in repr(s3_settings)


def test_upload_is_visible_whole_under_its_key(weed: seaweed.Weed, tmp_path: Path) -> None:
    store = weed.store(S3_BUCKET, "uploads")
    local = tmp_path / "copy.tif"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    upload(store, local, "c1/d1/p1.tif")
    assert bytes(obstore.get(store, "c1/d1/p1.tif").bytes()) == local.read_bytes()


def test_the_image_root_of_object_storage_is_no_folder(s3_settings: config.Settings) -> None:
    assert s3_settings.image_location == "s3://images/test"
    with pytest.raises(ValueError, match="object storage"):
        _ = s3_settings.image_root


def test_an_ingest_target_publishes_the_staged_copy_and_survives_pickling(weed: seaweed.Weed, tmp_path: Path) -> None:
    import pickle

    from iiif_server.storage import ObjectTarget

    settings = s3_settings_for(weed, tmp_path, "ingested")
    target = pickle.loads(pickle.dumps(ObjectTarget(settings.image_url or "", settings, tmp_path / "staging")))
    local = target.local("coll/doc/p1.tif")
    local.parent.mkdir(parents=True)
    quadrants(300, 200).tiffsave(str(local), tile=True, pyramid=True, compression="jpeg")
    assert not target.exists("coll/doc/p1.tif")
    target.publish("coll/doc/p1.tif")
    assert target.exists("coll/doc/p1.tif") and not local.exists()
    assert image_source(settings).open("coll/doc/p1").width == 300


async def test_ingest_into_object_storage_publishes_after_commit_and_reruns_as_a_no_op(
    weed: seaweed.Weed, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from iiif_server import cli as cli_module

    src = tmp_path / "masters" / "Brief é"
    src.mkdir(parents=True)
    quadrants(400, 300).pngsave(str(src / "p1.png"))
    quadrants(300, 400).pngsave(str(src / "p2.png"))
    settings = s3_settings_for(weed, tmp_path / "data", "ingest")
    args = ["ingest", str(src.parent), "--collection", "letters", "--processes", "1",
            "--data-dir", str(settings.data_dir), "--images", settings.image_location,
            "--s3-endpoint", str(settings.s3_endpoint), "--s3-region", seaweed.REGION,
            "--s3-access-key-id", seaweed.ACCESS_KEY, "--s3-secret-access-key", seaweed.SECRET_KEY]
    first = CliRunner().invoke(cli_module.main, args)
    assert first.exit_code == 0, first.output
    assert "2 converted" in first.output
    store = weed.store(S3_BUCKET, "ingest")
    keys = {item["path"] for batch in obstore.list(store) for item in batch}
    assert keys == {"letters/Brief é/p1.tif", "letters/Brief é/p2.tif"}  # no staging debris in the bucket
    assert not any((settings.data_dir / "staging").rglob("*.tif"))  # nor left on local disk
    again = CliRunner().invoke(cli_module.main, args)
    assert again.exit_code == 0 and "0 converted, 2 unchanged" in again.output, again.output
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        info = await c.get("/iiif/3/letters%2FBrief%20%C3%A9%2Fp2/info.json")
        assert info.status_code == 200 and (info.json()["width"], info.json()["height"]) == (300, 400)
        manifest = await c.get("/iiif/presentation/letters/Brief%20%C3%A9/manifest")
        assert [canvas["width"] for canvas in manifest.json()["items"]] == [400, 300]
    app.state.catalogue.engine.dispose()


async def test_remove_deletes_the_objects_and_the_rows(weed: seaweed.Weed, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iiif_server import cli as cli_module

    src = tmp_path / "masters" / "doc"
    src.mkdir(parents=True)
    for name in ("p1", "p2", "p3"):
        quadrants(300, 200).pngsave(str(src / f"{name}.png"))
    settings = s3_settings_for(weed, tmp_path / "data", "withdraw")
    storage = ["--data-dir", str(settings.data_dir), "--images", settings.image_location,
               "--s3-endpoint", str(settings.s3_endpoint), "--s3-region", seaweed.REGION,
               "--s3-access-key-id", seaweed.ACCESS_KEY, "--s3-secret-access-key", seaweed.SECRET_KEY]
    runner = CliRunner()
    ingested = runner.invoke(cli_module.main, ["ingest", str(src.parent), "--collection", "c", "--processes", "1",
                                               *storage])
    assert ingested.exit_code == 0, ingested.output
    store = weed.store(S3_BUCKET, "withdraw")

    def keys() -> set[str]:
        return {item["path"] for batch in obstore.list(store) for item in batch}

    assert keys() == {"c/doc/p1.tif", "c/doc/p2.tif", "c/doc/p3.tif"}
    page = runner.invoke(cli_module.main, ["remove", "c/doc/p2", "--yes", *storage])
    assert page.exit_code == 0 and "1 page(s)" in page.output, page.output
    assert keys() == {"c/doc/p1.tif", "c/doc/p3.tif"}
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        manifest = await c.get("/iiif/presentation/c/doc/manifest")
        assert manifest.status_code == 200 and len(manifest.json()["items"]) == 2
        assert (await c.get("/iiif/3/c%2Fdoc%2Fp2/info.json")).status_code == 404
    app.state.catalogue.engine.dispose()
    document = runner.invoke(cli_module.main, ["remove", "c/doc", "--yes", *storage])
    assert document.exit_code == 0 and "1 document(s), 2 page(s)" in document.output, document.output
    assert keys() == set()
