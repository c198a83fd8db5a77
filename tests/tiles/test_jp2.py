"""JPEG 2000 served without ingest: levels from the codestream, pixels from libvips or Pillow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips
from PIL import Image as PILImage
from support import BLUE, GREEN, RED, WHITE, quadrants

from iiif_server import config
from iiif_server.tiles import jp2
from iiif_server.tiles.files import FileSystemSource
from iiif_server.web.app import create_app

pytestmark = pytest.mark.libvips  # the JPEG 2000 codec


def write_jp2(img: pyvips.Image, path: Path, resolutions: int = 6) -> None:
    """Written by Pillow (OpenJPEG), lossless, as archives' JP2 masters often are; `.j2k` a bare codestream."""
    pixels = np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))
    PILImage.fromarray(pixels).save(
        path, "JPEG2000", num_resolutions=resolutions, irreversible=False, no_jp2=path.suffix == ".j2k"
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("jp2")
    write_jp2(quadrants(2048, 1536), folder / "even.jp2")
    write_jp2(quadrants(2001, 1500), folder / "odd.jp2")
    write_jp2(quadrants(640, 480), folder / "raw.j2k", resolutions=4)
    (folder / "junk.jp2").write_bytes(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"not a codestream" * 10)
    return folder


@pytest.fixture
async def client(root: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = config.Settings(
        database=f"sqlite:///{tmp_path / 'c.db'}", data_dir=tmp_path / "data", images=root, demo=False
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


def colour_at(body: bytes, x: float, y: float) -> list[float]:
    img = pyvips.Image.new_from_buffer(body, "")
    return img(int(x * (img.width - 1)), int(y * (img.height - 1)))[:3]


def close(found: list[float], wanted: list[int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(found, wanted, strict=True))


def test_the_codestream_header_gives_size_and_levels(root: Path) -> None:
    with open(root / "even.jp2", "rb") as fh:
        assert jp2.header(fh) == (2048, 1536, 5)
    with open(root / "raw.j2k", "rb") as fh:
        assert jp2.header(fh) == (640, 480, 3)
    with open(root / "junk.jp2", "rb") as fh, pytest.raises(ValueError):
        jp2.header(fh)


def test_every_declared_level_decodes_at_its_declared_size(root: Path) -> None:
    store = FileSystemSource(root)
    for name in ("even", "odd", "raw"):
        source = store.open(name)
        assert source.untiled
        for index, level in enumerate(source.levels):
            img = source.image(index)
            assert (img.width, img.height) == (level.width, level.height), (name, index)
    assert [lv.factor for lv in store.open("even").levels] == [1, 2, 4, 8, 16, 32]  # a small size reads a small level


async def test_a_jp2_is_served_without_ingest(client: httpx.AsyncClient) -> None:
    info = await client.get("/iiif/3/odd/info.json")
    assert info.status_code == 200
    assert (info.json()["width"], info.json()["height"]) == (2001, 1500)
    full = await client.get("/iiif/3/odd/full/max/0/default.png")
    assert full.status_code == 200
    assert pyvips.Image.new_from_buffer(full.content, "").width == 2001
    for (x, y), colour in {(0.1, 0.1): RED, (0.9, 0.1): GREEN, (0.1, 0.9): BLUE, (0.9, 0.9): WHITE}.items():
        assert close(colour_at(full.content, x, y), colour), (x, y)
    thumb = await client.get("/iiif/3/even/full/!100,100/0/default.jpg")
    assert thumb.status_code == 200
    assert pyvips.Image.new_from_buffer(thumb.content, "").width == 100
    assert close(colour_at(thumb.content, 0.9, 0.9), WHITE) and close(colour_at(thumb.content, 0.1, 0.9), BLUE)
    region = await client.get("/iiif/3/raw/320,0,320,240/160,/0/default.png")
    assert region.status_code == 200
    assert close(colour_at(region.content, 0.5, 0.5), GREEN)


async def test_a_damaged_jp2_is_a_clear_500(client: httpx.AsyncClient) -> None:
    answer = await client.get("/iiif/3/junk/info.json")
    assert answer.status_code == 500 and "cannot be read" in answer.text
    assert "/" not in answer.text.split("cannot be read", 1)[1]  # no server path in the message


def test_pillow_is_the_decoder_only_where_libvips_has_none(root: Path) -> None:
    reader = FileSystemSource(root).open("even").reader
    assert isinstance(reader, jp2.PillowReader) is (not jp2.LIBVIPS_DECODES)
