"""Untiled sources: bounded decodes in memory, shared by concurrent requests, never a hidden temporary file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import pytest
import pyvips

from iiif_server import config
from iiif_server.errors import TooLarge
from iiif_server.tiles import untiled
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.untiled import Decodes
from iiif_server.web.app import create_app

pytestmark = pytest.mark.libvips  # decoding


def write_jpeg(path: Path, width: int, height: int) -> None:
    x = pyvips.Image.xyz(width, height)
    img = (x[0] % 256).bandjoin([x[1] % 256, (x[0] + x[1]) % 256]).cast("uchar").copy(interpretation="srgb")
    img.jpegsave(str(path), Q=90)


def deleted_files() -> list[str]:
    """Files this process holds open that are no longer on disc (libvips' temporary decodes)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith("(deleted)"):
            found.append(target)
    return found


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> Decodes:
    fresh = Decodes(budget=8 << 20)  # 8 MiB: a 2000x1500 RGB level (9 MB) does not fit, its halves do
    monkeypatch.setattr(untiled, "decodes", fresh)
    return fresh


def test_concurrent_first_requests_share_one_decode(decodes: Decodes, tmp_path: Path) -> None:
    write_jpeg(tmp_path / "scan.jpg", 1200, 900)
    source = FileSystemSource(tmp_path).open("scan")
    assert source.untiled
    results: list[list[float]] = []
    barrier = threading.Barrier(8)

    def render() -> None:
        barrier.wait()
        results.append(list(source.image(0)(1000, 800)))

    threads = [threading.Thread(target=render) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert max(abs(a - b) for a, b in zip(results[0], [1000 % 256, 800 % 256, 1800 % 256], strict=True)) <= 8
    assert decodes.decodes == 1
    assert decodes.used == 1200 * 900 * 3


def test_a_level_beyond_the_budget_is_refused_and_a_reduced_one_served(decodes: Decodes, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    write_jpeg(tmp_path / "big.jpg", 2000, 1500)
    source = FileSystemSource(tmp_path).open("big")
    with pytest.raises(TooLarge) as refused:
        source.image(0)
    assert refused.value.status == 501 and "ingest" in refused.value.message
    assert "untiled image" in caplog.text and "ingest it" in caplog.text
    half = source.image(1)  # JPEG shrink-on-load: 1000x750
    assert (half.width, half.height) == (1000, 750)
    assert decodes.used <= decodes.budget


def test_cache_stays_within_the_budget(decodes: Decodes, tmp_path: Path) -> None:
    for n in range(4):
        write_jpeg(tmp_path / f"p{n}.jpg", 1000, 800)  # 2.4 MB each decoded: three fit in 8 MiB
    store = FileSystemSource(tmp_path)
    for n in range(4):
        store.open(f"p{n}").image(0)
        assert decodes.used <= decodes.budget
    assert decodes.used == 3 * 1000 * 800 * 3


def test_a_large_untiled_jpeg_leaves_no_hidden_temporary_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(untiled, "decodes", Decodes(budget=128 << 20))
    write_jpeg(tmp_path / "scan.jpg", 6000, 6000)  # 108 MB decoded: above libvips' 100 MiB disc threshold
    source = FileSystemSource(tmp_path).open("scan")
    before = deleted_files()
    img = source.image(0)
    assert img.avg() > 0
    assert deleted_files() == before


async def test_full_resolution_of_an_oversized_untiled_image_is_a_501_naming_ingest(decodes: Decodes,
                                                                                   tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    write_jpeg(root / "big.jpg", 2000, 1500)
    settings = config.Settings(database=f"sqlite:///{tmp_path / 'c.db'}", data_dir=tmp_path / "data", images=root,
                               demo=False, untiled_memory_mb=8)
    app = create_app(settings)
    assert decodes.budget == 8 << 20  # the setting (--untiled-memory-mb) reached the worker's decodes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        info = (await client.get("/iiif/3/big/info.json")).json()
        assert (info["width"], info["height"]) == (2000, 1500)
        assert 1 not in info["tiles"][0]["scaleFactors"] and 2 in info["tiles"][0]["scaleFactors"]
        assert max(size["width"] for size in info["sizes"]) == 1000  # what a viewer may ask for
        tile = await client.get("/iiif/3/big/0,0,512,512/512,/0/default.jpg")
        assert tile.status_code == 501 and "ingest" in tile.text
        small = await client.get("/iiif/3/big/full/500,/0/default.jpg")
        assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
        assert pyvips.Image.new_from_buffer(small.content, "").width == 500
