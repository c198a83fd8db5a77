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
        # a typed transport list with names to find, portraits linked to its people, their pages
        found = httpx.get(url + "/persons", params={"q": "Levy", "format": "json"}).json()["items"]
        assert [(p["id"], p["surname"]) for p in found] == [("demo-1", "Lévy")]
        person = httpx.get(url + "/persons/demo-1")
        assert person.status_code == 200
        assert "/iiif/3/demo-portraits%2Fportrait-1%2Fportrait-1/full/" in person.text
        assert "/iiif/3/demo-lists%2Ftransport-list%2Fp1/" in person.text and "/view?iiif-content=" in person.text
        lists = httpx.get(url + "/iiif/presentation/demo-lists/transport-list/manifest").json()
        jsonschema.validate(lists, presentation_schema())
        named = [a["body"][1]["label"]["none"][0] for a in lists["items"][0]["annotations"][0]["items"]]
        assert "Lévy, Abraham" in named and "Goldsztajn, Chaja" not in named  # hers waits for review
        hits = httpx.get(url + "/iiif/search/2/demo-lists/transport-list/search", params={"q": "Goldsztajn"}).json()
        assert hits["items"], "the typed list's names can be searched"
        assert "D-1" in httpx.get(url + "/transports").text
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
