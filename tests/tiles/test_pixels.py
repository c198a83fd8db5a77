"""Pixel-level checks of the Image API: regions, sizes, rotation, mirroring, qualities, formats, pyramid tiles.

The test images are quadrants: red top-left, green top-right, blue bottom-left,
white bottom-right. `quadrants.png` is 400x300, `pyramid.tif` is a 2048x1536
JPEG-compressed pyramidal TIFF with 256x256 tiles (levels 2048, 1024, 512, 256 wide).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips
from support import BLUE, GREEN, RED, WHITE

from iiif_server.ingest import demo
from iiif_server.tiles import pipeline
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import (
    Encoding,
    encode,
    from_stored,
    pick_level,
    raw_tile,
    render,
    stored_pixels,
)
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.tiles.sources import Source
from iiif_server.web.app import image_source

pytestmark = pytest.mark.libvips  # pixels

JPEG_TOLERANCE = 12
PNG_TOLERANCE = 1
CLOCKWISE_90 = {"tl": BLUE, "tr": RED, "bl": WHITE, "br": GREEN}


@pytest.fixture(scope="module")
def pyramid(storage: str, image_root: Path, request: pytest.FixtureRequest) -> Source:
    """pyramid.tif from the image folder, or (`[s3]`) from the S3 bucket it was uploaded to."""
    if storage == "s3":
        return image_source(request.getfixturevalue("s3_settings")).open("pyramid")
    return FileSystemSource(image_root).open("pyramid")


def rgb(img: pyvips.Image, x: int, y: int) -> list[float]:
    """The colour at (x, y) as three values (a grey pixel repeated)."""
    px = img(x, y)
    return px[:3] if img.bands >= 3 else [px[0]] * 3


def assert_colour(img: pyvips.Image, x: int, y: int, expected: Sequence[float], tol: float = JPEG_TOLERANCE) -> None:
    got = rgb(img, x, y)
    assert all(abs(g - e) <= tol for g, e in zip(got, expected, strict=True)), f"({x},{y}) is {got}, not {expected}"


def assert_corners(img: pyvips.Image, colours: dict[str, Sequence[float]], tol: float = JPEG_TOLERANCE) -> None:
    """Check the centres of the four quadrants of an output image."""
    w, h = img.width, img.height
    points = {
        "tl": (w // 4, h // 4),
        "tr": (3 * w // 4, h // 4),
        "bl": (w // 4, 3 * h // 4),
        "br": (3 * w // 4, 3 * h // 4),
    }
    for name, colour in colours.items():
        assert_colour(img, *points[name], colour, tol)


def pixels(img: pyvips.Image) -> np.ndarray:
    """height x width x bands, also for one band."""
    return img.numpy().reshape(img.height, img.width, img.bands).astype(int)


def decode(body: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(body, "")


async def fetch(client: httpx.AsyncClient, path: str) -> pyvips.Image:
    r = await client.get(path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return decode(r.content)


def plan_for(source: Source, region: str, size: str, rotation: str = "0", qf: str = "default.jpg"):  # noqa: ANN201
    return resolve(parse(3, region, size, rotation, qf), source.width, source.height, Limits())


# --- regions -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "size", "colour"),
    [
        ("0,0,200,150", (200, 150), RED),
        ("200,0,200,150", (200, 150), GREEN),
        ("0,150,200,150", (200, 150), BLUE),
        ("200,150,200,150", (200, 150), WHITE),
        ("pct:0,0,50,50", (200, 150), RED),
        ("pct:50,0,50,50", (200, 150), GREEN),
        ("pct:0,50,50,50", (200, 150), BLUE),
        ("pct:50,50,50,50", (200, 150), WHITE),
        ("250,200,500,500", (150, 100), WHITE),  # clipped at the image edge
    ],
)
@pytest.mark.parametrize("fmt", ["png", "jpg"])
@pytest.mark.storages
async def test_region_crop_has_the_quadrant_colour_and_size(
    client: httpx.AsyncClient, region: str, size: tuple[int, int], colour: list[int], fmt: str
) -> None:
    img = await fetch(client, f"/iiif/3/quadrants/{region}/max/0/default.{fmt}")
    assert (img.width, img.height) == size
    tol = PNG_TOLERANCE if fmt == "png" else JPEG_TOLERANCE
    for x, y in [
        (1, 1),
        (img.width - 2, 1),
        (1, img.height - 2),
        (img.width - 2, img.height - 2),
        (size[0] // 2, size[1] // 2),
    ]:
        assert_colour(img, x, y, colour, tol)


@pytest.mark.storages
async def test_region_across_the_centre_shows_all_four_quadrants(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/quadrants/100,75,200,150/max/0/default.png")
    assert (img.width, img.height) == (200, 150)
    assert_corners(img, {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE}, PNG_TOLERANCE)


async def test_square_region_is_the_centred_square(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/quadrants/square/max/0/default.png")
    assert (img.width, img.height) == (300, 300)
    # the square is x 50..350 of the 400 wide image: the colour changes at x = 150 of the output
    assert_colour(img, 148, 10, RED, PNG_TOLERANCE)
    assert_colour(img, 151, 10, GREEN, PNG_TOLERANCE)
    assert_corners(img, {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE}, PNG_TOLERANCE)


@pytest.mark.storages
async def test_region_on_nested_identifier(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/nested%2Fdeeper%2Fpage/100,0,100,50/max/0/default.png")
    assert (img.width, img.height) == (100, 50)
    assert_colour(img, 50, 25, GREEN)


# --- sizes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "size", "expected"),
    [
        (3, "max", (400, 300)),
        (3, "200,", (200, 150)),
        (3, ",150", (200, 150)),
        (3, "pct:50", (200, 150)),
        (3, "pct:33", (132, 99)),
        (3, "!100,100", (100, 75)),
        (3, "!300,300", (300, 225)),
        (3, "!400,60", (80, 60)),
        (3, ",7", (9, 7)),
        (3, "100,200", (100, 200)),
        (3, "400,10", (400, 10)),
        (3, "^800,", (800, 600)),
        (3, "^!1000,1000", (1000, 750)),
        (2, "full", (400, 300)),
        (2, "200,", (200, 150)),
        (2, "800,", (800, 600)),
        (2, "pct:25", (100, 75)),
        (2, "!100,100", (100, 75)),
        (2, "37,211", (37, 211)),
    ],
)
@pytest.mark.storages
async def test_size_gives_exact_dimensions_and_keeps_the_colours(
    client: httpx.AsyncClient, version: int, size: str, expected: tuple[int, int]
) -> None:
    img = await fetch(client, f"/iiif/{version}/quadrants/full/{size}/0/default.png")
    assert (img.width, img.height) == expected
    if min(expected) >= 40:
        assert_corners(img, {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE}, tol=2)


async def test_distorting_size_stretches_quadrants(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/quadrants/full/100,280/0/default.jpg")
    assert (img.width, img.height) == (100, 280)
    assert_colour(img, 25, 125, RED)
    assert_colour(img, 75, 125, GREEN)
    assert_colour(img, 25, 155, BLUE)
    assert_colour(img, 75, 155, WHITE)
    img = await fetch(client, "/iiif/3/quadrants/full/^100,600/0/default.jpg")
    assert (img.width, img.height) == (100, 600)
    assert_colour(img, 25, 280, RED)
    assert_colour(img, 75, 320, WHITE)


# --- rotation and mirroring --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotation", "size", "colours"),
    [
        ("0", (400, 300), {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE}),
        ("90", (300, 400), CLOCKWISE_90),
        ("180", (400, 300), {"tl": WHITE, "tr": BLUE, "bl": GREEN, "br": RED}),
        ("270", (300, 400), {"tl": GREEN, "tr": WHITE, "bl": RED, "br": BLUE}),
        ("360", (400, 300), {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE}),
        ("!0", (400, 300), {"tl": GREEN, "tr": RED, "bl": WHITE, "br": BLUE}),
        ("!90", (300, 400), {"tl": WHITE, "tr": GREEN, "bl": BLUE, "br": RED}),
        ("!180", (400, 300), {"tl": BLUE, "tr": WHITE, "bl": RED, "br": GREEN}),
        ("!270", (300, 400), {"tl": RED, "tr": BLUE, "bl": GREEN, "br": WHITE}),
    ],
)
@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.storages
async def test_rotation_by_90s_turns_clockwise_after_mirroring(
    client: httpx.AsyncClient, version: int, rotation: str, size: tuple[int, int], colours: dict[str, list[int]]
) -> None:
    size_param = "max" if version == 3 else "full"
    img = await fetch(client, f"/iiif/{version}/quadrants/full/{size_param}/{rotation}/default.png")
    assert (img.width, img.height) == size
    assert_corners(img, colours, PNG_TOLERANCE)


def rotated_point(x: float, y: float, w: int, h: int, angle: float, out: pyvips.Image) -> tuple[int, int]:
    """Where (x, y) of a w x h image lands after turning it `angle` degrees clockwise onto `out`."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    dx, dy = x - w / 2, y - h / 2
    return round(out.width / 2 + dx * cos - dy * sin), round(out.height / 2 + dx * sin + dy * cos)


def canvas_corners(img: pyvips.Image) -> list[tuple[int, int]]:
    return [(0, 0), (img.width - 1, 0), (0, img.height - 1), (img.width - 1, img.height - 1)]


QUADRANT_CENTRES = [((100, 75), RED), ((300, 75), GREEN), ((100, 225), BLUE), ((300, 225), WHITE)]


@pytest.mark.parametrize("fmt", ["png", "webp"])
async def test_arbitrary_rotation_has_transparent_corners(client: httpx.AsyncClient, fmt: str) -> None:
    img = await fetch(client, f"/iiif/3/quadrants/full/max/45/default.{fmt}")
    side = 700 * math.sqrt(0.5)  # 400 cos 45 + 300 sin 45
    assert abs(img.width - side) <= 1 and abs(img.height - side) <= 1
    assert img.bands == 4 and img.hasalpha()
    for x, y in canvas_corners(img):
        assert img(x, y)[3] == 0
    tol = PNG_TOLERANCE if fmt == "png" else JPEG_TOLERANCE
    for (x, y), colour in QUADRANT_CENTRES:
        px, py = rotated_point(x, y, 400, 300, 45, img)
        assert_colour(img, px, py, colour, tol)
        assert img(px, py)[3] == 255


async def test_arbitrary_rotation_has_white_corners_in_jpeg(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/quadrants/full/max/45/default.jpg")
    assert img.bands == 3
    for x, y in canvas_corners(img):
        assert_colour(img, x, y, WHITE, 3)
    for (x, y), colour in QUADRANT_CENTRES:
        assert_colour(img, *rotated_point(x, y, 400, 300, 45, img), colour)


async def test_mirrored_arbitrary_rotation(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/quadrants/full/max/!30/default.png")
    mirrored = [((400 - x, y), colour) for (x, y), colour in QUADRANT_CENTRES]
    for (x, y), colour in mirrored:
        assert_colour(img, *rotated_point(x, y, 400, 300, 30, img), colour, PNG_TOLERANCE)


# --- qualities ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif", "gif"])
@pytest.mark.storages
async def test_gray_quality_has_no_colour(client: httpx.AsyncClient, fmt: str) -> None:
    img = await fetch(client, f"/iiif/3/quadrants/full/max/0/gray.{fmt}")
    a = pixels(img)
    if img.bands >= 3:
        assert np.abs(a[..., 0] - a[..., 1]).max() <= 2 and np.abs(a[..., 1] - a[..., 2]).max() <= 2
    else:
        assert img.bands == 1
    # luminance order: blue < red < green < white
    levels = [rgb(img, x, y)[0] for (x, y), _ in QUADRANT_CENTRES]
    red, green, blue, white = levels
    assert blue < red < green < white and white >= 250


@pytest.mark.parametrize("rotation", ["0", "45", "!90"])
@pytest.mark.parametrize("fmt", ["png", "tif", "gif"])
@pytest.mark.storages
async def test_bitonal_quality_is_only_black_and_white(client: httpx.AsyncClient, fmt: str, rotation: str) -> None:
    img = await fetch(client, f"/iiif/3/quadrants/full/max/{rotation}/bitonal.{fmt}")
    values = set(np.unique(pixels(img)[..., : min(img.bands, 3)]).tolist())
    assert values <= {0, 255} and values == {0, 255}


async def test_bitonal_png_is_one_bit(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/full/max/0/bitonal.png")
    assert r.content[24] == 1  # IHDR bit depth


async def test_color_quality_equals_default(client: httpx.AsyncClient) -> None:
    a = await fetch(client, "/iiif/3/quadrants/full/max/0/color.png")
    b = await fetch(client, "/iiif/3/quadrants/full/max/0/default.png")
    assert (pixels(a) == pixels(b)).all()


# --- formats -----------------------------------------------------------------------------------------------------

MAGIC = {
    "jpg": ("image/jpeg", [b"\xff\xd8\xff"], "jpegload"),
    "png": ("image/png", [b"\x89PNG\r\n\x1a\n"], "pngload"),
    "webp": ("image/webp", [b"RIFF"], "webpload"),
    "tif": ("image/tiff", [b"II*\x00", b"MM\x00*"], "tiffload"),
    "gif": ("image/gif", [b"GIF87a", b"GIF89a"], "gifload"),
}


@pytest.mark.parametrize("fmt", list(MAGIC))
@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.storages
async def test_every_format_is_its_real_type(client: httpx.AsyncClient, fmt: str, version: int) -> None:
    r = await client.get(f"/iiif/{version}/quadrants/full/200,/0/default.{fmt}")
    assert r.status_code == 200, r.text
    media, magics, loader = MAGIC[fmt]
    assert r.headers["content-type"] == media
    assert any(r.content.startswith(m) for m in magics), r.content[:12]
    if fmt == "webp":
        assert r.content[8:12] == b"WEBP"
    img = decode(r.content)
    assert img.get("vips-loader").startswith(loader)
    assert (img.width, img.height) == (200, 150)
    assert_corners(img, {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE})


# --- the pyramidal TIFF ------------------------------------------------------------------------------------------

# one grid-aligned 256x256 tile per scale factor (1, 2, 4) and quadrant: output points and their colours
PYRAMID_TILES = [
    ("0,0,256,256", {(64, 64): RED, (192, 192): RED}),
    ("1024,0,256,256", {(64, 64): GREEN, (192, 192): GREEN}),
    ("0,768,256,256", {(64, 64): BLUE, (192, 192): BLUE}),
    ("1792,1280,256,256", {(64, 64): WHITE, (192, 192): WHITE}),
    ("512,0,512,512", {(64, 64): RED, (192, 192): RED}),
    ("1024,512,512,512", {(64, 64): GREEN, (192, 100): GREEN, (64, 160): WHITE, (192, 192): WHITE}),
    ("0,512,512,512", {(64, 64): RED, (192, 100): RED, (64, 160): BLUE, (192, 192): BLUE}),
    ("0,0,1024,1024", {(64, 64): RED, (192, 170): RED, (64, 214): BLUE, (192, 240): BLUE}),
    ("1024,0,1024,1024", {(64, 64): GREEN, (192, 170): GREEN, (64, 214): WHITE, (192, 240): WHITE}),
]
TILE_IDS = [region for region, _ in PYRAMID_TILES]


def assert_points(img: pyvips.Image, points: dict[tuple[int, int], list[int]]) -> None:
    for (x, y), colour in points.items():
        assert_colour(img, x, y, colour)


@pytest.mark.parametrize(("region", "points"), PYRAMID_TILES, ids=TILE_IDS)
@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.storages
async def test_pyramid_tile_at_each_scale_factor_has_the_right_colours(
    client: httpx.AsyncClient, version: int, region: str, points: dict[tuple[int, int], list[int]]
) -> None:
    img = await fetch(client, f"/iiif/{version}/pyramid/{region}/256,256/0/default.jpg")
    assert (img.width, img.height, img.bands) == (256, 256, 3)
    assert_points(img, points)


@pytest.mark.parametrize(("region", "points"), PYRAMID_TILES, ids=TILE_IDS)
@pytest.mark.storages
async def test_rendered_pyramid_tile_has_the_right_colours(
    client: httpx.AsyncClient, region: str, points: dict[tuple[int, int], list[int]]
) -> None:
    # png never takes the stored-tile path: this is the general decode-crop-encode path
    img = await fetch(client, f"/iiif/3/pyramid/{region}/256,256/0/default.png")
    assert (img.width, img.height) == (256, 256)
    assert_points(img, points)


@pytest.mark.parametrize(
    ("region", "size", "expected", "colour"),
    [
        ("0,1024,1024,512", "256,", (256, 128), BLUE),  # scale factor 4, last row
        ("1024,1024,1024,512", "256,", (256, 128), WHITE),
        ("full", "256,", (256, 192), None),  # scale factor 8: the whole image in one tile
        ("1792,1280,512,512", "128,", (128, 128), WHITE),  # scale factor 2, clipped to 256x256
        ("1536,1024,1024,1024", "128,", (128, 128), WHITE),  # scale factor 4 beyond the right edge
    ],
)
@pytest.mark.storages
async def test_pyramid_edge_tiles_are_smaller(
    client: httpx.AsyncClient, region: str, size: str, expected: tuple[int, int], colour: list[int] | None
) -> None:
    img = await fetch(client, f"/iiif/3/pyramid/{region}/{size}/0/default.jpg")
    assert (img.width, img.height) == expected
    if colour is None:
        assert_corners(img, {"tl": RED, "tr": GREEN, "bl": BLUE, "br": WHITE})
    else:
        assert_corners(img, {"tl": colour, "tr": colour, "bl": colour, "br": colour})


@pytest.mark.storages
def test_pyramid_has_stored_jpeg_tiles_at_each_full_level(pyramid: Source) -> None:
    assert [lv.factor for lv in pyramid.levels] == [1, 2, 4, 8]
    assert (pyramid.tile_width, pyramid.tile_height) == (256, 256)
    # the smallest level (256x192) is one padded edge tile: only the others can be sent as stored
    assert {0, 1, 2} <= set(pyramid.raw)


@pytest.mark.parametrize(("region", "points"), PYRAMID_TILES, ids=TILE_IDS)
@pytest.mark.storages
async def test_stored_tile_is_sent_as_stored_and_matches_the_general_path(
    client: httpx.AsyncClient, pyramid: Source, region: str, points: dict[tuple[int, int], list[int]]
) -> None:
    plan = plan_for(pyramid, region, "256,256")
    stored = raw_tile(pyramid, plan)
    assert stored is not None, f"{region} is a stored tile"
    r = await client.get(f"/iiif/3/pyramid/{region}/256,256/0/default.jpg")
    assert r.status_code == 200
    assert r.content == stored
    # the stored bytes decode on their own (tables spliced in, colour model known to the decoder)
    raw_img = decode(stored)
    assert (raw_img.width, raw_img.height, raw_img.bands) == (256, 256, 3)
    assert_points(raw_img, points)
    general = decode(encode(render(pyramid, plan), "jpg", Encoding()))
    diff = np.abs(pixels(raw_img) - pixels(general))
    # JPEG at two qualities; edges inside a tile ring a little, flat areas agree closely
    assert np.median(diff) <= 2 and diff.mean() <= 4


@pytest.mark.parametrize(
    ("region", "size", "rotation", "quality"),
    [
        ("0,0,256,256", "256,256", "0", "default.png"),  # another format
        ("0,0,256,256", "256,256", "90", "default.jpg"),  # rotated
        ("0,0,256,256", "256,256", "!0", "default.jpg"),  # mirrored
        ("0,0,256,256", "256,256", "0", "gray.jpg"),  # another quality
        ("0,0,256,256", "128,128", "0", "default.jpg"),  # scaled
        ("128,0,256,256", "256,256", "0", "default.jpg"),  # off the grid
        ("0,0,2048,2048", "256,256", "0", "default.jpg"),  # the padded smallest level
    ],
)
@pytest.mark.storages
def test_requests_that_are_not_a_stored_tile_are_rendered(
    pyramid: Source, region: str, size: str, rotation: str, quality: str
) -> None:
    assert raw_tile(pyramid, plan_for(pyramid, region, size, rotation, quality)) is None


async def test_gray_tile_request_is_gray(client: httpx.AsyncClient) -> None:
    img = await fetch(client, "/iiif/3/pyramid/1024,0,256,256/256,256/0/gray.jpg")
    assert img.bands == 1


# --- level selection ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "level"),
    [
        ("full/256,/0/default.jpg", 3),
        ("full/200,/0/default.jpg", 3),
        ("full/300,/0/default.jpg", 2),
        ("full/600,/0/default.jpg", 1),
        ("0,0,1024,1024/256,256/0/default.png", 2),
        ("0,0,512,512/256,256/90/default.png", 1),
        ("0,0,256,256/256,256/0/default.png", 0),
        ("full/2048,/0/default.jpg", 0),
    ],
)
@pytest.mark.storages
async def test_small_output_is_read_from_a_small_pyramid_level(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, path: str, level: int
) -> None:
    used: list[int] = []
    original = Source.image

    def recording(self: Source, level_index: int) -> pyvips.Image:
        used.append(level_index)
        return original(self, level_index)

    monkeypatch.setattr(Source, "image", recording)
    # requests answered from stored tiles decode those tiles, not the level through libvips
    real_decode = pipeline._decode_stored

    def decoding(source: Source, tile: pipeline.StoredTile, *args: Any) -> Any:
        used.append(tile.level)
        return real_decode(source, tile, *args)

    monkeypatch.setattr(pipeline, "_decode_stored", decoding)
    r = await client.get(f"/iiif/3/pyramid/{path}")
    assert r.status_code == 200, r.text
    assert used and set(used) == {level}  # one level (through libvips once, or tile by tile)


@pytest.mark.storages
def test_pick_level_never_upscales_by_more_than_a_pixel(pyramid: Source) -> None:
    for width in range(1, 2049, 7):
        plan = plan_for(pyramid, "full", f"{width},")
        level = pyramid.levels[pick_level(pyramid, plan)]
        assert level.width + 1 >= width
        smaller = [lv for lv in pyramid.levels if lv.width + 1 >= width]
        assert level == smaller[-1]


# --- requests from a few stored tiles (edge tiles, one-tile levels, thumbnails) --------------------------------------


@pytest.fixture(scope="module", params=["srgb", "b-w"])
def textured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A 1000x700 scan with detail everywhere: edge tiles on every level, a one-tile smallest level."""
    from iiif_server.ingest import demo

    root = tmp_path_factory.mktemp(f"textured-{request.param}")
    img = demo.scan(1000, 700, seed=5)
    img = img.colourspace("b-w") if request.param == "b-w" else img[:3]
    img.tiffsave(str(root / "t.tif"), tile=True, tile_width=256, tile_height=256, pyramid=True,
                 compression="jpeg", Q=85)
    return FileSystemSource(root).open("t")


@pytest.mark.parametrize(
    ("region", "size"),
    [
        ("768,0,232,256", "232,"),  # right edge, full resolution
        ("0,512,256,188", "256,"),  # bottom edge
        ("768,512,232,188", "232,188"),  # corner
        ("512,512,488,188", "244,94"),  # corner at scale factor 2
        ("full", "250,175"),  # the smallest stored level: one padded tile
        ("full", "!250,250"),
        ("0,0,100,60", "100,"),  # any region inside one tile
        ("700,0,232,256", "232,"),  # across two tiles, unscaled
        ("768,0,232,256", "100,"),  # inside one tile, scaled
        ("full", "!200,200"),  # a thumbnail from the one-tile level
        ("0,0,1000,700", "400,"),  # scaled from four tiles of the level below
        ("0,0,1000,700", "max"),  # twelve tiles
        ("100,50,700,500", "333,"),  # a region across tiles, scaled, not on the grid
        ("full", "90,"),  # thumbnails of the sizes pages and viewers ask
        ("full", ",150"),
        ("full", "!333,333"),
        ("0,0,1000,700", "300,500"),  # distorted: shrunk across, stretched down
    ],
)
def test_request_from_stored_tiles_has_the_general_paths_pixels(
    textured: Source, region: str, size: str
) -> None:
    plan = plan_for(textured, region, size)
    fast = from_stored(textured, plan, Encoding())
    assert fast is not None, "answered from the stored tile"
    general = encode(render(textured, plan), "jpg", Encoding())
    a, b = decode(fast), decode(general)
    assert (a.width, a.height) == (b.width, b.height) == (plan.out_w, plan.out_h)
    assert a.bands == b.bands
    assert np.abs(pixels(a) - pixels(b)).max() == 0


@pytest.mark.parametrize(
    ("region", "size", "qf"),
    [
        ("768,0,232,256", "232,", "default.png"),  # another format
        ("768,0,232,256", "232,", "gray.jpg"),  # another quality
    ],
)
def test_other_formats_and_qualities_are_rendered(textured: Source, region: str, size: str, qf: str) -> None:
    assert from_stored(textured, plan_for(textured, region, size, "0", qf), Encoding()) is None


def test_a_region_past_the_pixel_budget_is_left_to_libvips(textured: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_for(textured, "0,0,1000,700", "max")
    monkeypatch.setattr(pipeline, "STORED_PIXELS_MAX", 1000 * 700 - 1)
    assert from_stored(textured, plan, Encoding()) is None
    monkeypatch.setattr(pipeline, "STORED_PIXELS_MAX", 1000 * 700)
    assert from_stored(textured, plan, Encoding()) is not None


@pytest.mark.parametrize(("region", "size"), [("full", "!200,200"), ("full", "90,"), ("100,50,700,500", "333,")])
def test_every_format_quality_and_rotation_shows_the_stored_tiles_pixels(textured: Source, region: str,
                                                                          size: str) -> None:
    """A PNG, a gray or a turned image of a request is made of the very pixels its JPEG is encoded from."""
    plan = plan_for(textured, region, size)
    expected = np.array(stored_pixels(textured, plan)).astype(int)
    assert expected.shape == (plan.out_h, plan.out_w, textured.levels and expected.shape[2])
    png = pixels(decode(encode(render(textured, plan_for(textured, region, size, "0", "default.png")), "png",
                               Encoding())))
    assert np.array_equal(png, expected)
    turned = pixels(render(textured, plan_for(textured, region, size, "90", "default.png")))
    assert np.array_equal(turned, np.rot90(expected, k=-1))
    if expected.shape[2] == 3:
        gray = render(textured, plan_for(textured, region, size, "0", "gray.png"))
        want = pyvips.Image.new_from_array(expected.astype(np.uint8)).copy(interpretation="srgb").colourspace("b-w")
        assert np.array_equal(pixels(gray), pixels(want))


@pytest.mark.parametrize("size", ["90,", "!150,150", "!200,200", "!400,400", "333,"])
def test_scaled_stored_tiles_stay_in_place(tmp_path: Path, size: str) -> None:
    """Scaled from the stored tiles of a level, a thumbnail is libvips' thumbnail of the full-size image
    give or take the filter: much closer to it than that thumbnail is to itself moved by one pixel."""
    img = demo.scan(1000, 700, seed=5)[:3].gaussblur(2)  # detail at every level, no single-pixel noise
    img.tiffsave(str(tmp_path / "s.tif"), tile=True, tile_width=256, tile_height=256, pyramid=True,
                 compression="jpeg", Q=85)
    source = FileSystemSource(tmp_path).open("s")
    plan = plan_for(source, "full", size)
    fast = np.array(stored_pixels(source, plan)).astype(int)
    whole = pixels(source.image(0).thumbnail_image(plan.out_w, height=plan.out_h, size="force"))
    moved = np.abs(np.roll(whole, 1, axis=1) - whole).mean()
    assert np.abs(fast - whole).mean() < 0.75 * moved
