"""Input files of every kind come out as 8-bit sRGB (or grey) with the right colours.

Each input holds four flat patches (top-left, top-right, bottom-left,
bottom-right); the tests read the centres of the patches in the output.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips
from support import BLUE, GREEN, RED, WHITE, write_pyramid

from iiif_server import config
from iiif_server.errors import RequestError
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import Encoding, no_metadata, process, raw_tile, render
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.tiles.sources import Source, adobe_transform
from iiif_server.web.app import create_app

pytestmark = pytest.mark.libvips  # decoders and colour conversion

TOL = 12  # JPEG in, JPEG out
QUADRANTS = (RED, GREEN, BLUE, WHITE)
# well inside the CMYK gamut, so a round trip through CMYK keeps them
MUTED = ([200, 60, 60], [60, 160, 80], [70, 110, 150], [230, 230, 230])
GREYS = (30, 100, 170, 240)


def patches(width: int, height: int, colours: Sequence[Sequence[int] | int], dtype: type = np.uint8) -> np.ndarray:
    """height x width x bands, the four colours as top-left, top-right, bottom-left, bottom-right."""
    values = [np.atleast_1d(np.asarray(c)) for c in colours]
    a = np.zeros((height, width, len(values[0])), dtype)
    hw, hh = width // 2, height // 2
    a[:hh, :hw], a[:hh, hw:], a[hh:, :hw], a[hh:, hw:] = values
    return a


def vips(a: np.ndarray, interpretation: str) -> pyvips.Image:
    return pyvips.Image.new_from_array(a).copy(interpretation=interpretation)


def quadrants(width: int, height: int) -> pyvips.Image:
    return vips(patches(width, height, QUADRANTS), "srgb")


# --- JPEG-in-TIFF pyramids written by hand (libvips writes RGB tiles only) ---------------------------------------


def jpeg_segments(stream: bytes) -> list[tuple[int, bytes]]:
    """(marker, bytes) of each segment after SOI; the scan and all after it as the last one."""
    out, i = [], 2
    while i < len(stream):
        marker = stream[i + 1]
        if marker == 0xDA:
            out.append((marker, stream[i:]))
            break
        length = int.from_bytes(stream[i + 2 : i + 4], "big")
        out.append((marker, stream[i : i + 2 + length]))
        i += 2 + length
    return out


def write_jpeg_tiff(path: Path, img: pyvips.Image, photometric: int, tile: int = 256) -> None:
    """A tiled pyramidal TIFF as libtiff writes it: JPEGTables apart, tiles without tables or APP markers."""
    levels = [img]
    while max(levels[-1].width, levels[-1].height) > tile:
        levels.append(levels[-1].resize(0.5))
    buf = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4
    for n, level in enumerate(levels):
        tables, tiles = b"", []
        for y in range(0, level.height, tile):
            for x in range(0, level.width, tile):
                part = level.crop(x, y, min(tile, level.width - x), min(tile, level.height - y))
                part = part.embed(0, 0, tile, tile, extend="copy")
                mode = "on" if photometric == 6 else "off"
                stream = part.jpegsave_buffer(Q=90, subsample_mode=mode, **no_metadata("jpegsave_buffer"))
                segments = jpeg_segments(stream)
                tables = b"\xff\xd8" + b"".join(s for m, s in segments if m in (0xDB, 0xC4)) + b"\xff\xd9"
                kept = (s for m, s in segments if m not in (0xDB, 0xC4) and not 0xE0 <= m <= 0xEF)
                tiles.append(b"\xff\xd8" + b"".join(kept))
        offsets = []
        for t in tiles:
            offsets.append(len(buf))
            buf += t
        short, long_, undefined = 3, 4, 7
        entries: list[tuple[int, int, Sequence[int] | bytes]] = [
            (254, long_, [1 if n else 0]),
            (256, long_, [level.width]),
            (257, long_, [level.height]),
            (258, short, [8] * level.bands),
            (259, short, [7]),
            (262, short, [photometric]),
            (277, short, [level.bands]),
            (284, short, [1]),
            (322, long_, [tile]),
            (323, long_, [tile]),
            (324, long_, offsets),
            (325, long_, [len(t) for t in tiles]),
            (347, undefined, tables),
        ]
        if photometric == 6:
            entries.append((530, short, [2, 2]))
        packed = []
        for tag, kind, values in entries:
            if kind == undefined:
                raw = bytes(values)
            else:
                raw = struct.pack(f"<{len(values)}{'H' if kind == short else 'I'}", *values)
            if len(raw) > 4:
                buf += b"\x00" * (len(buf) % 2)
                where = len(buf)
                buf += raw
                raw = struct.pack("<I", where)
            packed.append(struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\x00"))
        buf += b"\x00" * (len(buf) % 2)
        buf[link : link + 4] = struct.pack("<I", len(buf))
        buf += struct.pack("<H", len(packed)) + b"".join(packed)
        link = len(buf)
        buf += b"\x00\x00\x00\x00"
    path.write_bytes(bytes(buf))


# --- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    srgb = quadrants(200, 100)

    vips(patches(200, 100, GREYS), "b-w").pngsave(str(root / "grey8.png"))
    vips(patches(200, 100, GREYS), "b-w").jpegsave(str(root / "grey8-jpeg.jpg"), Q=95)

    cmyk = vips(patches(200, 100, MUTED), "srgb").icc_transform("cmyk")
    cmyk.jpegsave(str(root / "cmyk.jpg"), Q=95)  # with its CMYK profile
    # no profile: the default CMYK one applies
    cmyk.jpegsave(str(root / "cmyk-bare.jpg"), Q=95, **no_metadata("jpegsave"))

    vips(patches(200, 100, QUADRANTS, np.uint16) * 257, "rgb16").pngsave(str(root / "rgb16.png"))
    vips(patches(200, 100, [c * 257 for c in GREYS], np.uint16), "grey16").tiffsave(str(root / "grey16.tif"))

    rgba = patches(200, 100, [RED + [255], GREEN + [0], BLUE + [128], WHITE + [255]])
    vips(rgba, "srgb").pngsave(str(root / "rgba.png"))
    vips(rgba.astype(np.uint16) * 257, "rgb16").pngsave(str(root / "rgba16.png"))
    # opaque red left, fully transparent green right: a resize must not bleed the hidden green
    edge = np.zeros((60, 199, 4), np.uint8)
    edge[:, :100] = RED + [255]
    edge[:, 100:] = GREEN + [0]
    vips(edge, "srgb").pngsave(str(root / "alpha-edge.png"))

    oriented = srgb.copy()
    oriented.set_type(pyvips.GValue.gint_type, "orientation", 6)
    oriented.jpegsave(str(root / "exif6.jpg"), Q=95)
    oriented.tiffsave(str(root / "tiff6.tif"), tile=True, tile_width=64, tile_height=64, compression="deflate")

    srgb.icc_transform("p3").pngsave(str(root / "p3.png"))
    srgb.webpsave(str(root / "lossless.webp"), lossless=True)
    srgb.tiffsave(str(root / "plain.tif"))
    black = pyvips.Image.black(200, 100, bands=3).cast("uchar").copy(interpretation="srgb")
    pages = pyvips.Image.arrayjoin([srgb, black, black.invert()], across=1)
    pages.set_type(pyvips.GValue.gint_type, "page-height", 100)
    pages.tiffsave(str(root / "pages.tif"))
    quadrants(201, 101).jpegsave(str(root / "odd.jpg"), Q=95)

    write_pyramid(quadrants(2048, 1536), root / "pyramid.tif")
    write_pyramid(quadrants(1500, 1001), root / "odd-pyramid.tif")
    write_jpeg_tiff(root / "ycbcr.tif", quadrants(1024, 768), photometric=6)
    write_jpeg_tiff(root / "grey-tiles.tif", vips(patches(1024, 768, GREYS), "b-w"), photometric=1)
    write_jpeg_tiff(root / "rgb-bare.tif", quadrants(1024, 768), photometric=2)

    (root / "random.jpg").write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (root / "empty.png").write_bytes(b"")
    good = (root / "pyramid.tif").read_bytes()
    (root / "truncated.tif").write_bytes(good[: len(good) // 2])
    srgb.tiffsave(str(root / "short-strips.tif"), compression="deflate")
    data = (root / "short-strips.tif").read_bytes()
    (root / "short-strips.tif").write_bytes(data[:16] + bytes(200) + data[216:])  # garbage where the pixels are
    return root


@pytest.fixture
async def client(root: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config.Settings(data_dir=tmp_path, images=root, demo=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


# --- helpers -----------------------------------------------------------------------------------------------------


def pixels(img: pyvips.Image) -> np.ndarray:
    return img.numpy().reshape(img.height, img.width, img.bands).astype(int)


def centres(img: pyvips.Image) -> list[list[int]]:
    """The colours at the centres of the four patches (grey repeated to three values)."""
    w, h = img.width, img.height
    a = pixels(img)
    out = []
    for x, y in [(w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)]:
        px = a[y, x]
        out.append(px[:3].tolist() if img.bands >= 3 else [int(px[0])] * 3)
    return out


def assert_colours(img: pyvips.Image, expected: Sequence[Sequence[int] | int], tol: int = TOL) -> None:
    want = [[c] * 3 if isinstance(c, int) else list(c) for c in expected]
    got = centres(img)
    for g, e in zip(got, want, strict=True):
        assert all(abs(a - b) <= tol for a, b in zip(g, e, strict=True)), f"{got} is not {want}"


def assert_8bit_srgb_or_grey(img: pyvips.Image) -> None:
    assert img.format == "uchar"
    assert img.bands in (1, 2, 3, 4)
    assert img.interpretation in ("srgb", "b-w")


async def fetch(client: httpx.AsyncClient, path: str) -> pyvips.Image:
    r = await client.get(path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    img = pyvips.Image.new_from_buffer(r.content, "")
    assert_8bit_srgb_or_grey(img)
    return img


async def info(client: httpx.AsyncClient, identifier: str, version: int = 3) -> dict:
    r = await client.get(f"/iiif/{version}/{identifier}/info.json")
    assert r.status_code == 200, r.text
    return json.loads(r.content)


# --- colour models and bit depths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "expected", "tol"),
    [
        ("grey8", GREYS, 3),
        ("rgb16", QUADRANTS, 3),
        ("grey16", GREYS, 3),
        ("lossless", QUADRANTS, 3),
        ("plain", QUADRANTS, 3),
        ("pages", QUADRANTS, 3),
        ("p3", QUADRANTS, 6),
        ("cmyk", MUTED, 14),
        ("cmyk-bare", MUTED, 14),
        ("grey8-jpeg", GREYS, 3),
    ],
)
@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif"])
async def test_every_input_comes_out_as_8bit_srgb_with_its_colours(
    client: httpx.AsyncClient, identifier: str, expected: Sequence, tol: int, fmt: str
) -> None:
    doc = await info(client, identifier)
    assert (doc["width"], doc["height"]) == (200, 100)
    img = await fetch(client, f"/iiif/3/{identifier}/full/max/0/default.{fmt}")
    assert (img.width, img.height) == (200, 100)
    assert_colours(img, expected, tol + (0 if fmt in ("png", "tif") else TOL))
    small = await fetch(client, f"/iiif/3/{identifier}/full/100,/0/default.{fmt}")
    assert (small.width, small.height) == (100, 50)
    assert_colours(small, expected, tol + (0 if fmt in ("png", "tif") else TOL))


@pytest.mark.parametrize("identifier", ["grey8", "grey8-jpeg", "grey16"])
async def test_grey_input_stays_grey(client: httpx.AsyncClient, identifier: str) -> None:
    for fmt in ("jpg", "png"):
        img = await fetch(client, f"/iiif/3/{identifier}/full/max/0/default.{fmt}")
        assert img.bands == 1 and img.interpretation == "b-w"
    grey_jpeg = await fetch(client, "/iiif/3/grey8/full/max/0/default.jpg")
    assert_colours(grey_jpeg, GREYS, 4)


async def test_p3_input_is_converted_to_srgb(root: Path, client: httpx.AsyncClient) -> None:
    stored = pyvips.Image.new_from_file(str(root / "p3.png"))
    assert stored.get_typeof("icc-profile-data")
    # the stored numbers are far from sRGB: passing them through unconverted would fail
    assert abs(centres(stored)[1][0] - GREEN[0]) > 60
    img = await fetch(client, "/iiif/3/p3/full/max/0/default.png")
    assert_colours(img, QUADRANTS, 6)


async def test_cmyk_input_has_three_bands_out(client: httpx.AsyncClient) -> None:
    for identifier in ("cmyk", "cmyk-bare"):
        for fmt in ("jpg", "png", "tif"):
            img = await fetch(client, f"/iiif/3/{identifier}/full/max/0/default.{fmt}")
            assert img.bands == 3 and img.interpretation == "srgb"
        grey = await fetch(client, f"/iiif/3/{identifier}/full/max/0/gray.jpg")
        assert grey.bands == 1


async def test_gray_and_bitonal_of_16bit_input(client: httpx.AsyncClient) -> None:
    grey = await fetch(client, "/iiif/3/rgb16/full/max/0/gray.png")
    assert grey.bands == 1
    bitonal = await fetch(client, "/iiif/3/grey16/full/max/0/bitonal.png")
    assert set(np.unique(pixels(bitonal)).tolist()) == {0, 255}
    assert_colours(bitonal, (0, 0, 255, 255), 0)


# --- alpha -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["max", "100,", "77,"])
@pytest.mark.parametrize("identifier", ["rgba", "rgba16"])
async def test_alpha_is_composited_on_white_for_jpeg(client: httpx.AsyncClient, identifier: str, size: str) -> None:
    img = await fetch(client, f"/iiif/3/{identifier}/full/{size}/0/default.jpg")
    assert img.bands == 3
    assert_colours(img, (RED, WHITE, [127, 127, 255], WHITE), TOL)


@pytest.mark.parametrize("size", ["max", "77,"])
@pytest.mark.parametrize("identifier", ["rgba", "rgba16"])
@pytest.mark.parametrize("fmt", ["png", "webp", "tif"])
async def test_alpha_is_kept_for_formats_that_have_it(
    client: httpx.AsyncClient, fmt: str, identifier: str, size: str
) -> None:
    img = await fetch(client, f"/iiif/3/{identifier}/full/{size}/0/default.{fmt}")
    assert img.bands == 4 and img.hasalpha()
    a = pixels(img)
    w, h = img.width, img.height
    alphas = [a[h // 4, w // 4, 3], a[h // 4, 3 * w // 4, 3], a[3 * h // 4, w // 4, 3], a[3 * h // 4, 3 * w // 4, 3]]
    assert [abs(x - y) <= 2 for x, y in zip(alphas, [255, 0, 128, 255], strict=True)] == [True] * 4
    tol = 2 if fmt != "webp" else TOL
    assert all(abs(x - y) <= tol for x, y in zip(a[h // 4, w // 4, :3], RED, strict=True))
    assert all(abs(x - y) <= tol for x, y in zip(a[3 * h // 4, w // 4, :3], BLUE, strict=True))


@pytest.mark.parametrize("size", ["133,", "50,", "pct:37"])
async def test_scaling_does_not_bleed_hidden_colour_from_transparent_pixels(
    client: httpx.AsyncClient, size: str
) -> None:
    # on white, a mix of opaque red and transparent anything is pink (R=255, G=B): never yellow or green
    img = await fetch(client, f"/iiif/3/alpha-edge/full/{size}/0/default.png")
    a = pixels(img).astype(float)
    rgb, alpha = a[..., :3], a[..., 3:] / 255
    on_white = rgb * alpha + 255 * (1 - alpha)
    assert np.abs(on_white[..., 1] - on_white[..., 2]).max() <= 3
    assert on_white[..., 0].min() >= 250
    jpeg = await fetch(client, f"/iiif/3/alpha-edge/full/{size}/0/default.jpg")
    b = pixels(jpeg)
    assert np.abs(b[..., 1] - b[..., 2]).max() <= TOL


# --- orientation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["exif6", "tiff6"])
@pytest.mark.parametrize("version", [3, 2])
async def test_orientation_6_is_turned_upright(client: httpx.AsyncClient, identifier: str, version: int) -> None:
    doc = await info(client, identifier, version)
    assert (doc["width"], doc["height"]) == (100, 200)
    for size in sizes_of(doc):
        w, h = size
        img = await fetch(client, f"/iiif/{version}/{identifier}/full/{w},{h}/0/default.png")
        assert (img.width, img.height) == (w, h)
    full = "max" if version == 3 else "full"
    img = await fetch(client, f"/iiif/{version}/{identifier}/full/{full}/0/default.png")
    assert (img.width, img.height) == (100, 200)
    # stored as quadrants, shown turned 90 degrees clockwise
    assert_colours(img, (BLUE, RED, WHITE, GREEN), TOL)
    small = await fetch(client, f"/iiif/{version}/{identifier}/full/25,/0/default.png")
    assert (small.width, small.height) == (25, 50)
    assert_colours(small, (BLUE, RED, WHITE, GREEN), TOL)
    crop = await fetch(client, f"/iiif/{version}/{identifier}/50,100,50,100/{full}/0/default.png")
    assert (crop.width, crop.height) == (50, 100)
    assert_colours(crop, (GREEN, GREEN, GREEN, GREEN), TOL)
    turned = await fetch(client, f"/iiif/{version}/{identifier}/full/{full}/270/default.png")
    assert (turned.width, turned.height) == (200, 100)
    assert_colours(turned, QUADRANTS, TOL)


def sizes_of(doc: dict) -> list[tuple[int, int]]:
    return [(s["width"], s["height"]) for s in doc["sizes"]]


# --- JPEG shrink-on-load levels ----------------------------------------------------------------------------------


def test_declared_levels_are_the_sizes_libvips_decodes(root: Path) -> None:
    store = FileSystemSource(root)
    for identifier in ("odd", "exif6", "pyramid", "odd-pyramid", "ycbcr"):
        source = store.open(identifier)
        for index, level in enumerate(source.levels):
            img = source.image(index)
            assert (img.width, img.height) == (level.width, level.height), (identifier, level)


@pytest.mark.parametrize("width", [201, 150, 101, 100, 51, 50, 26, 25, 13, 12, 7, 1])
async def test_odd_jpeg_any_width_is_exact(client: httpx.AsyncClient, width: int) -> None:
    img = await fetch(client, f"/iiif/3/odd/full/{width},/0/default.png")
    assert (img.width, img.height) == (width, max(1, round(101 * width / 201)))
    if width >= 40:
        assert_colours(img, QUADRANTS, TOL)


# --- pyramids ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("identifier", "width", "height"), [("pyramid", 2048, 1536), ("odd-pyramid", 1500, 1001)])
async def test_pyramid_info_tiles_reach_one_tile_and_sizes_can_be_requested(
    client: httpx.AsyncClient, identifier: str, width: int, height: int
) -> None:
    doc = await info(client, identifier)
    assert (doc["width"], doc["height"]) == (width, height)
    [tiles] = doc["tiles"]
    assert tiles["width"] == 256 and tiles.get("height", 256) == 256
    factors = tiles["scaleFactors"]
    assert factors[0] == 1 and all(b == 2 * a for a, b in zip(factors, factors[1:], strict=False))
    assert math.ceil(width / factors[-1]) <= 256 and math.ceil(height / factors[-1]) <= 256
    assert len(factors) == 1 or math.ceil(max(width, height) / factors[-2]) > 256
    sizes = sizes_of(doc)
    assert sizes == sorted(sizes) and sizes[-1] == (width, height)
    for w, h in sizes:
        img = await fetch(client, f"/iiif/3/{identifier}/full/{w},{h}/0/default.jpg")
        assert (img.width, img.height) == (w, h)
        assert_colours(img, QUADRANTS, TOL)
    v2 = await info(client, identifier, 2)
    assert v2["tiles"] == doc["tiles"] and v2["sizes"] == doc["sizes"]


async def test_every_tile_a_viewer_asks_for_has_the_size_it_expects(client: httpx.AsyncClient) -> None:
    """What OpenSeadragon and Mirador request: the grid of each scale factor, size ceil(region / factor)."""
    doc = await info(client, "odd-pyramid")
    width, height, tile = doc["width"], doc["height"], doc["tiles"][0]["width"]
    for factor in doc["tiles"][0]["scaleFactors"]:
        step = tile * factor
        for y in range(0, height, step):
            for x in range(0, width, step):
                w, h = min(step, width - x), min(step, height - y)
                ow, oh = math.ceil(w / factor), math.ceil(h / factor)
                for size in (f"{ow},", f"{ow},{oh}"):
                    r = await client.get(f"/iiif/3/odd-pyramid/{x},{y},{w},{h}/{size}/0/default.jpg")
                    assert r.status_code == 200, r.text
                    img = pyvips.Image.new_from_buffer(r.content, "")
                    if size.endswith(","):
                        assert img.width == ow and abs(img.height - oh) <= 1, (x, y, w, h, factor)
                    else:
                        assert (img.width, img.height) == (ow, oh)


def tile_plan(source: Source, region: str, size: str = "256,256", qf: str = "default.jpg"):  # noqa: ANN201
    return resolve(parse(3, region, size, "0", qf), source.width, source.height, Limits())


@pytest.mark.parametrize(
    ("region", "points"),
    [
        ("0,0,256,256", {(64, 64): RED, (192, 192): RED}),
        ("512,0,256,256", {(64, 64): GREEN, (192, 192): GREEN}),
        ("0,512,256,256", {(64, 64): BLUE, (192, 192): BLUE}),
        ("768,512,256,256", {(64, 64): WHITE, (192, 192): WHITE}),
        # scale factor 2: the tile holds level rows 0..255, green above row 192, white below
        ("512,0,512,512", {(64, 64): GREEN, (192, 170): GREEN, (64, 214): WHITE, (192, 240): WHITE}),
        ("0,0,512,512", {(64, 64): RED, (192, 170): RED, (64, 214): BLUE, (192, 240): BLUE}),
    ],
)
async def test_ycbcr_tiles_with_shared_tables_are_sent_as_stored(
    root: Path, client: httpx.AsyncClient, region: str, points: dict[tuple[int, int], list[int]]
) -> None:
    source = FileSystemSource(root).open("ycbcr")
    assert set(source.raw) == {0, 1, 2} and not source.raw[0].rgb
    assert source.raw[0].tables.startswith(b"\xff\xd8")
    stored = raw_tile(source, tile_plan(source, region))
    assert stored is not None and stored.count(b"\xff\xdb") >= 1  # quantisation tables spliced in
    r = await client.get(f"/iiif/3/ycbcr/{region}/256,256/0/default.jpg")
    assert r.content == stored
    img = pyvips.Image.new_from_buffer(stored, "")
    assert (img.width, img.height, img.bands, img.interpretation) == (256, 256, 3, "srgb")
    for (x, y), colour in points.items():
        assert all(abs(a - b) <= TOL for a, b in zip(img(x, y), colour, strict=True)), (x, y, img(x, y))
    general = render(source, tile_plan(source, region))
    assert np.abs(pixels(general) - pixels(img)).mean() <= 3


async def test_grey_jpeg_tiles_are_sent_as_stored(root: Path, client: httpx.AsyncClient) -> None:
    source = FileSystemSource(root).open("grey-tiles")
    stored = raw_tile(source, tile_plan(source, "512,0,256,256"))
    assert stored is not None
    r = await client.get("/iiif/3/grey-tiles/512,0,256,256/256,256/0/default.jpg")
    assert r.content == stored
    img = pyvips.Image.new_from_buffer(stored, "")
    assert img.bands == 1
    assert_colours(img, (GREYS[1],) * 4, 4)


def test_rgb_jpeg_tiles_without_adobe_marker_are_never_sent_as_stored(root: Path) -> None:
    # a decoder would read such samples as YCbCr: they must be decoded and encoded again
    source = FileSystemSource(root).open("rgb-bare")
    assert source.raw == {}
    assert raw_tile(source, tile_plan(source, "0,0,256,256")) is None


def test_libvips_rgb_jpeg_tiles_carry_the_adobe_marker(root: Path) -> None:
    source = FileSystemSource(root).open("pyramid")
    assert all(tiles.rgb for tiles in source.raw.values())
    stored = raw_tile(source, tile_plan(source, "0,0,256,256"))
    assert stored is not None and adobe_transform(stored) == 0


# --- broken files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["random", "empty", "truncated", "short-strips"])
@pytest.mark.parametrize("path", ["info.json", "full/max/0/default.jpg", "0,0,64,64/64,/0/default.png"])
async def test_corrupt_file_gives_a_short_500_and_the_server_keeps_going(
    root: Path, client: httpx.AsyncClient, identifier: str, path: str
) -> None:
    r = await client.get(f"/iiif/3/{identifier}/{path}")
    if identifier == "short-strips" and path == "info.json":
        assert r.status_code == 200  # the header is fine; only the pixels are broken
    else:
        assert r.status_code == 500, r.text
        assert r.headers["content-type"].startswith("text/plain")
        assert 0 < len(r.text) < 300 and "Traceback" not in r.text
        assert str(root) not in r.text  # no file system paths
    again = await fetch(client, "/iiif/3/plain/full/50,/0/default.jpg")
    assert (again.width, again.height) == (50, 25)
    # and the broken file answers the same way twice (nothing half-opened stays cached as good)
    second = await client.get(f"/iiif/3/{identifier}/{path}")
    assert second.status_code == r.status_code


async def test_broken_file_replaced_by_a_good_one_is_served(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    target = folder / "swap.jpg"
    target.write_bytes(b"not a jpeg at all")
    app = create_app(config.Settings(data_dir=tmp_path / "data", images=folder, demo=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/iiif/3/swap/full/max/0/default.jpg")).status_code == 500
        quadrants(40, 20).jpegsave(str(target))
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        r = await c.get("/iiif/3/swap/full/max/0/default.jpg")
        assert r.status_code == 200
        assert pyvips.Image.new_from_buffer(r.content, "").width == 40


def _stale_source(root: Path, tmp_path: Path, name: str) -> tuple[Path, Source]:
    """A source opened from a copy of `name`, to be damaged after opening (as a file replaced mid-request)."""
    folder = tmp_path / "stale"
    folder.mkdir()
    target = folder / name
    target.write_bytes((root / name).read_bytes())
    return target, FileSystemSource(folder).open(target.stem)


def test_file_damaged_after_opening_gives_500_without_server_paths(root: Path, tmp_path: Path) -> None:
    target, source = _stale_source(root, tmp_path, "odd.jpg")
    target.write_bytes(b"garbage" * 100)
    with pytest.raises(RequestError) as caught:
        process(source, tile_plan(source, "full", "50,", "default.png"), Encoding())
    assert caught.value.status == 500
    assert str(target.parent) not in caught.value.message and len(caught.value.message) < 300


def test_file_removed_after_opening_gives_500(root: Path, tmp_path: Path) -> None:
    target, source = _stale_source(root, tmp_path, "pyramid.tif")
    plan = tile_plan(source, "0,0,256,256")
    assert raw_tile(source, plan) is not None
    target.unlink()
    for p in (plan, tile_plan(source, "0,0,256,256", qf="default.png")):
        with pytest.raises(RequestError) as caught:
            process(source, p, Encoding())
        assert caught.value.status == 500
        assert str(target.parent) not in caught.value.message


def test_opened_sources_are_kept_within_a_byte_budget(tmp_path: Path) -> None:
    """The store keeps opened sources by what their tile tables weigh, not by how many there are."""
    big, small = tmp_path / "big.tif", tmp_path / "small.tif"
    write_pyramid(pyvips.Image.black(4096, 4096, bands=3), big, tile=128)  # 1,365 stored tiles
    write_pyramid(pyvips.Image.black(256, 256, bands=3), small, tile=128)
    for n in range(20):
        os.link(small, tmp_path / f"small-{n}.tif")
    weight = FileSystemSource(tmp_path).open("big").nbytes
    assert weight > 1365 * 8  # its offsets and counts are counted
    store = FileSystemSource(tmp_path, budget=weight + 4 * FileSystemSource(tmp_path).open("small").nbytes)
    first = store.open("big")
    for n in range(20):
        store.open(f"small-{n}")
        assert store._cache.used <= store._cache.budget
    assert store.open("big") is not first  # the big one went, though 21 sources are few
    assert store.open("small-19") is store.open("small-19")  # and what is kept is reused
