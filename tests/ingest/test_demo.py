"""`iiif-server serve` alone installs a generated demo collection, with a deep-zoomable scan."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
import pytest
import pyvips
import tifffile
from support import presentation_schema, start_server, stop_server


@pytest.mark.libvips
def test_bare_serve_installs_and_serves_the_demo_collection(tmp_path: Path) -> None:
    proc, url = start_server(["--data-dir", str(tmp_path)], env={"IIIF_SERVER_DEMO": "", "IIIF_SERVER_IMAGES": ""})
    try:
        assert "/iiif/presentation/demo/manifest" in httpx.get(url + "/").text
        info = httpx.get(url + "/iiif/3/demo%2Fletter%2Fp1/info.json").json()
        assert (info["width"], info["height"]) == (6000, 8000)
        assert info["tiles"][0]["width"] == 256
        assert info["tiles"][0]["scaleFactors"][:6] == [1, 2, 4, 8, 16, 32]
        tile = httpx.get(url + "/iiif/3/demo%2Fletter%2Fp1/0,0,1024,1024/256,256/0/default.jpg")
        assert tile.status_code == 200
        img = pyvips.Image.new_from_buffer(tile.content, "")
        assert (img.width, img.height) == (256, 256)
        manifest = httpx.get(url + "/iiif/presentation/demo/manifest").json()
        jsonschema.validate(manifest, presentation_schema())
        assert len(manifest["items"]) == 5
        assert [r["label"]["en"][0] for r in manifest["structures"]][1] == "A typed letter (generated)"
        for canvas in manifest["items"]:
            service = canvas["items"][0]["items"][0]["body"]["service"][0]["id"]
            info = httpx.get(service + "/info.json").json()
            assert (info["width"], info["height"]) == (canvas["width"], canvas["height"])
    finally:
        stop_server(proc)
    with tifffile.TiffFile(tmp_path / "images" / "demo" / "letter" / "p1.tif") as tif:
        assert len(tif.pages) >= 6 and tif.pages[0].is_tiled and tif.pages[0].compression == 7
    assert not list(tmp_path.rglob(".ingest-*")), "a temporary file was left behind"
    assert not list(tmp_path.glob(".demo-*")), "the demo masters were left behind"


def test_no_demo_when_the_image_root_already_has_images(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    pyvips.Image.black(10, 10).pngsave(str(images / "own.png"))
    proc, url = start_server(["--data-dir", str(tmp_path)], env={"IIIF_SERVER_DEMO": "", "IIIF_SERVER_IMAGES": ""})
    try:
        assert httpx.get(url + "/iiif/3/own/info.json").status_code == 200
        assert json.loads(httpx.get(url + "/iiif/presentation/collections").text)["items"] == []
    finally:
        stop_server(proc)
