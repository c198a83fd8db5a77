"""`iiif-server serve` alone serves generated demo images, including a deep-zoomable scan."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyvips
import tifffile
from conftest import start_server, stop_server


def test_serve_without_images_generates_and_serves_the_demo_set(tmp_path: Path) -> None:
    proc, url = start_server(["--data-dir", str(tmp_path)], env={"IIIF_SERVER_DEMO": ""})
    try:
        home = httpx.get(url + "/").text
        assert "/iiif/3/scan/info.json" in home
        info = httpx.get(url + "/iiif/3/scan/info.json").json()
        assert (info["width"], info["height"]) == (6000, 8000)
        assert info["tiles"][0]["width"] == 256
        assert info["tiles"][0]["scaleFactors"][:6] == [1, 2, 4, 8, 16, 32]
        tile = httpx.get(url + "/iiif/3/scan/0,0,1024,1024/256,256/0/default.jpg")
        assert tile.status_code == 200
        img = pyvips.Image.new_from_buffer(tile.content, "")
        assert (img.width, img.height) == (256, 256)
        for name in ("squares", "gradient", "portrait-grey"):
            assert httpx.get(f"{url}/iiif/3/{name}/full/max/0/default.jpg").status_code == 200
    finally:
        stop_server(proc)
    scan = tmp_path / "demo" / "scan.tif"
    with tifffile.TiffFile(scan) as tif:
        assert len(tif.pages) >= 6 and tif.pages[0].is_tiled and tif.pages[0].compression == 7
    assert not list((tmp_path / "demo").glob(".tmp-*")), "a temporary file was left behind"


def test_demo_steps_aside_once_the_image_root_has_images(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    pyvips.Image.black(10, 10).pngsave(str(images / "own.png"))
    proc, url = start_server(["--data-dir", str(tmp_path)])
    try:
        assert httpx.get(url + "/iiif/3/own/info.json").status_code == 200
        assert httpx.get(url + "/iiif/3/scan/info.json").status_code == 404
    finally:
        stop_server(proc)
