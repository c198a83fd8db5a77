"""The viewer pages that open a content state: Mirador set from it by this server, UV reading it itself."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest

from iiif_server import config
from iiif_server.manifests import contentstate
from iiif_server.web.app import create_app

MANIFEST = "http://testserver/iiif/presentation/lists/list-20/manifest"
CANVAS = "http://testserver/iiif/presentation/lists/list-20/canvas/p1"


@pytest.fixture
async def client(tmp_path: Path) -> httpx.AsyncClient:
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", demo=False,
                               viewer_url="https://viewers.example/mirador.min.js",
                               uv_url="https://viewers.example/uv/dist/")
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c  # type: ignore[misc]
    app.state.catalogue.engine.dispose()


def attribute(page: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', page)
    assert found, page
    return unescape(found.group(1))


async def test_the_mirador_page_opens_the_canvas_at_the_region(client: httpx.AsyncClient) -> None:
    state = contentstate.encode(contentstate.annotation("x", MANIFEST, CANVAS, (200, 300, 420, 60)))
    r = await client.get("/view", params={"iiif-content": state})
    assert r.status_code == 200
    assert attribute(r.text, "data-manifest") == MANIFEST and attribute(r.text, "data-canvas") == CANVAS
    assert attribute(r.text, "data-region") == "200,300,420,60"
    assert '<script src="https://viewers.example/mirador.min.js"></script>' in r.text
    assert '<script src="/open.js"></script>' in r.text
    assert "script-src 'self' https://viewers.example;" in r.headers["content-security-policy"]
    script = await client.get("/open.js")
    # the window starts at the region (Mirador's own setting) and selects its annotation; the browser test
    # (tests/browser/test_persons.py) shows both on screen
    assert script.status_code == 200 and "initialViewerConfig" in script.text and "selectAnnotation" in script.text


async def test_the_mirador_page_refuses_what_opens_nothing_and_escapes_what_it_opens(
        client: httpx.AsyncClient) -> None:
    for value in ("", "%%%", contentstate.encode('{"id":"' + CANVAS + '","type":"Canvas"}')):
        r = await client.get("/view", params={"iiif-content": value})
        assert r.status_code == 400, value
    odd = 'http://testserver/manifest?a="><script>alert(1)</script>'
    r = await client.get("/view", params={"iiif-content": contentstate.encode(odd)})
    assert r.status_code == 400  # not a plain URL: quotes and angle brackets
    quoted = "http://testserver/m?x=1&y=%22"
    r = await client.get("/view", params={"iiif-content": quoted})
    assert r.status_code == 200 and attribute(r.text, "data-manifest") == quoted


async def test_the_uv_page_loads_uv_from_its_folder(client: httpx.AsyncClient) -> None:
    r = await client.get("/uv")
    assert r.status_code == 200
    assert '<script src="https://viewers.example/uv/dist/umd/UV.js"></script>' in r.text
    assert '<link rel="stylesheet" href="https://viewers.example/uv/dist/uv.css">' in r.text
    assert "script-src 'self' https://viewers.example;" in r.headers["content-security-policy"]
    script = await client.get("/uv.js")
    assert "IIIFURLAdapter" in script.text and "identifying" in script.text
