"""The Image API over HTTP: status codes, headers, info.json, concurrency, / and /healthz."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from support import VALIDATOR_ID, quadrants

from iiif_server import config
from iiif_server.tiles import service as service_module
from iiif_server.tiles.pipeline import writable_formats
from iiif_server.tiles.sources import Source
from iiif_server.web.app import create_app

PROFILE_3 = "http://iiif.io/api/image/3/level2.json"
PROFILE_2 = "http://iiif.io/api/image/2/level2.json"
CONTEXT_3 = "http://iiif.io/api/image/3/context.json"
CONTEXT_2 = "http://iiif.io/api/image/2/context.json"
MAX_ERROR_BODY = 300


@asynccontextmanager
async def app_client(
    settings: config.Settings, peer: tuple[str, int] = ("127.0.0.1", 1234), **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client over an app built from `settings` with `overrides`, seen as coming from `peer`."""
    app = create_app(dataclasses.replace(settings, **overrides))
    transport = httpx.ASGITransport(app=app, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def assert_plain_error(r: httpx.Response, status: int, *words: str) -> None:
    """An error with a short plain-text body that says what was wrong."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    body = r.text.strip()
    assert body, "empty error body"
    assert len(body) <= MAX_ERROR_BODY, body
    for word in words:
        assert word.lower() in body.lower(), body


def fail_if_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("pixels were decoded for a request that should have been refused first")


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel work starts."""
    monkeypatch.setattr(service_module, "process", fail_if_called)
    monkeypatch.setattr("iiif_server.tiles.pipeline.process", fail_if_called)
    monkeypatch.setattr("iiif_server.tiles.pipeline.render", fail_if_called)
    monkeypatch.setattr(Source, "image", fail_if_called)


# --- status codes -------------------------------------------------------------------------------

VALID_3 = [
    "full/max/0/default.jpg",
    "square/100,/90/gray.png",
    "pct:10,10,50,50/pct:50/!45/color.webp",
    "0,0,100,100/50,50/0/bitonal.png",
    "10,20,300,200/!100,100/180/default.gif",
    "full/,150/270/default.tif",
    "full/^800,/0/default.jpg",
    "full/pct:50/0/default.jpg",
    "390,290,100,100/max/0/default.jpg",  # region partly outside: cropped to the image
]
VALID_2 = [
    "full/full/0/default.jpg",
    "full/max/0/default.png",
    "full/800,/0/default.jpg",  # 2.1 upscales without '^'
    "full/pct:150/0/default.jpg",
    "square/100,100/!90/gray.jpg",
    "pct:0,0,50,50/!50,50/0/bitonal.png",
]


@pytest.mark.parametrize("params", VALID_3)
@pytest.mark.storages
@pytest.mark.libvips
async def test_valid_3_image_requests_are_200(client: httpx.AsyncClient, params: str) -> None:
    r = await client.get(f"/iiif/3/quadrants/{params}")
    assert r.status_code == 200, r.text
    fmt = params.rsplit(".", 1)[1]
    expected = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif", "tif": "image/tiff"}
    assert r.headers["content-type"] == expected[fmt]
    img = pyvips.Image.new_from_buffer(r.content, "")
    assert img.width > 0 and img.height > 0


@pytest.mark.parametrize("params", VALID_2)
@pytest.mark.storages
@pytest.mark.libvips
async def test_valid_2_image_requests_are_200(client: httpx.AsyncClient, params: str) -> None:
    r = await client.get(f"/iiif/2/quadrants/{params}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/")


@pytest.mark.storages
@pytest.mark.libvips
async def test_output_size_follows_the_request(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/0,0,200,150/100,/0/default.png")
    img = pyvips.Image.new_from_buffer(r.content, "")
    assert (img.width, img.height) == (100, 75)
    r = await client.get("/iiif/3/quadrants/full/^800,/0/default.png")
    img = pyvips.Image.new_from_buffer(r.content, "")
    assert (img.width, img.height) == (800, 600)


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.storages
async def test_info_json_of_known_identifiers_is_200(client: httpx.AsyncClient, version: int) -> None:
    for ident in ("quadrants", "pyramid", "nested%2Fdeeper%2Fpage", VALIDATOR_ID):
        r = await client.get(f"/iiif/{version}/{ident}/info.json")
        assert r.status_code == 200, (ident, r.text)


MALFORMED = [
    # region
    ("foo/max/0/default.jpg", "region"),
    ("0,0,10/max/0/default.jpg", "region"),
    ("-1,0,10,10/max/0/default.jpg", "region"),
    ("pct:/max/0/default.jpg", "region"),
    ("pct:10,10,10/max/0/default.jpg", "region"),
    ("full,/max/0/default.jpg", "region"),
    ("0,0,0,10/max/0/default.jpg", "region"),
    ("0,0,10,0/max/0/default.jpg", "region"),
    ("5000,5000,10,10/max/0/default.jpg", "region"),
    ("1,1,1,1,1/max/0/default.jpg", "region"),
    ("0,0,9999999999,10/max/0/default.jpg", "large"),
    # size
    ("full/abc/0/default.jpg", "size"),
    ("full/0,/0/default.jpg", "size"),
    ("full/,0/0/default.jpg", "size"),
    ("full/!100,/0/default.jpg", "width"),
    ("full/pct:0/0/default.jpg", "size"),
    ("full/-5,/0/default.jpg", "size"),
    ("full/,/0/default.jpg", "size"),
    ("full/1,2,3/0/default.jpg", "size"),
    ("full/^^max/0/default.jpg", "size"),
    # rotation
    ("full/max/361/default.jpg", "rotation"),
    ("full/max/-90/default.jpg", "rotation"),
    ("full/max/abc/default.jpg", "rotation"),
    ("full/max/!/default.jpg", "rotation"),
    ("full/max/90deg/default.jpg", "rotation"),
    ("full/max/!!90/default.jpg", "rotation"),
    # quality
    ("full/max/0/fancy.jpg", "quality"),
    ("full/max/0/native.jpg", "quality"),
    ("full/max/0/default", "format"),
    ("full/max/0/.jpg", "quality"),
]


@pytest.mark.parametrize(("params", "word"), MALFORMED)
@pytest.mark.parametrize("version", [3, 2])
async def test_malformed_parameters_are_400_with_a_plain_reason(
    client: httpx.AsyncClient, version: int, params: str, word: str
) -> None:
    r = await client.get(f"/iiif/{version}/quadrants/{params}")
    assert_plain_error(r, 400, word)


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("fmt", ["bmp", "exe", "jpeg", "JPG", "json", ""])
async def test_unknown_format_is_400(client: httpx.AsyncClient, version: int, fmt: str) -> None:
    r = await client.get(f"/iiif/{version}/quadrants/full/max/0/default.{fmt}")
    assert_plain_error(r, 400, "format")


async def test_size_full_is_400_in_3_but_200_in_2(client: httpx.AsyncClient) -> None:
    assert_plain_error(await client.get("/iiif/3/quadrants/full/full/0/default.jpg"), 400, "max")
    assert (await client.get("/iiif/2/quadrants/full/full/0/default.jpg")).status_code == 200


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("fmt", ["jp2", "pdf"])
@pytest.mark.libvips
async def test_formats_libvips_cannot_write_are_501(client: httpx.AsyncClient, version: int, fmt: str) -> None:
    r = await client.get(f"/iiif/{version}/quadrants/full/max/0/default.{fmt}")
    if fmt in writable_formats():
        assert r.status_code == 200
    else:
        assert_plain_error(r, 501, fmt)


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("tail", ["/info.json", "/full/max/0/default.jpg", ""])
@pytest.mark.storages
async def test_unknown_identifier_is_404(client: httpx.AsyncClient, version: int, tail: str) -> None:
    r = await client.get(f"/iiif/{version}/no-such-image{tail}")
    assert_plain_error(r, 404, "no-such-image")


@pytest.mark.storages
async def test_404_for_a_very_long_unknown_identifier_has_a_short_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/" + "x" * 1000 + "/info.json")
    assert r.status_code == 404
    assert_plain_error(r, 404)


@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.parametrize("ident", ["quadrants", "nested%2Fdeeper%2Fpage"])
@pytest.mark.storages
async def test_base_uri_redirects_303_to_info_json(client: httpx.AsyncClient, version: int, ident: str) -> None:
    r = await client.get(f"/iiif/{version}/{ident}")
    assert r.status_code == 303
    assert r.headers["location"] == f"http://testserver/iiif/{version}/{ident}/info.json"
    assert r.headers["access-control-allow-origin"] == "*"
    followed = await client.get(r.headers["location"])
    assert followed.status_code == 200


async def test_base_uri_redirect_uses_base_url(settings: config.Settings) -> None:
    async with app_client(settings, base_url="https://images.example.org/") as c:
        r = await c.get("/iiif/3/quadrants")
    assert r.status_code == 303
    assert r.headers["location"] == "https://images.example.org/iiif/3/quadrants/info.json"


async def test_unencoded_slash_in_identifier_is_404_with_a_hint(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/nested/deeper/page/info.json")
    assert_plain_error(r, 404, "%2F")


# --- limits and hostile sizes -------------------------------------------------------------------

LIMITS = {"max_width": 1000, "max_height": 800, "max_area": 500_000}


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ("full/1001,/0/default.jpg", "maxWidth"),
        ("full/500,801/0/default.jpg", "maxHeight"),
        ("full/900,700/0/default.jpg", "maxArea"),
        ("full/^1200,900/0/default.jpg", "maxWidth"),
        ("full/pct:40/0/default.jpg", "maxArea"),  # 819x614
    ],
)
async def test_sizes_above_the_limits_are_400(
    settings: config.Settings, no_decoding: None, params: str, word: str
) -> None:
    async with app_client(settings, **LIMITS) as c:
        r = await c.get(f"/iiif/3/pyramid/{params}")
        assert_plain_error(r, 400, word)
        r2 = await c.get(f"/iiif/2/pyramid/{params.replace('^', '')}")
        assert_plain_error(r2, 400, word)


async def test_sizes_within_the_limits_are_200(settings: config.Settings) -> None:
    async with app_client(settings, **LIMITS) as c:
        assert (await c.get("/iiif/3/pyramid/full/800,/0/default.jpg")).status_code == 200  # 800x600
        r = await c.get("/iiif/3/pyramid/full/max/0/default.jpg")
        assert r.status_code == 200
        img = pyvips.Image.new_from_buffer(r.content, "")
        assert img.width <= 1000 and img.height <= 800 and img.width * img.height <= 500_000
        r = await c.get("/iiif/3/quadrants/full/^max/0/default.jpg")
        assert r.status_code == 200
        img = pyvips.Image.new_from_buffer(r.content, "")
        assert img.width <= 1000 and img.height <= 800 and img.width * img.height <= 500_000
        assert img.width > 400
        info = (await c.get("/iiif/3/pyramid/info.json")).json()
        assert (info["maxWidth"], info["maxHeight"], info["maxArea"]) == (1000, 800, 500_000)


@pytest.mark.parametrize(
    "params",
    ["full/800,/0/default.jpg", "full/,301/0/default.jpg", "full/pct:101/0/default.jpg", "full/!800,800/0/default.jpg"],
)
async def test_3_upscaling_without_caret_is_400(client: httpx.AsyncClient, no_decoding: None, params: str) -> None:
    r = await client.get(f"/iiif/3/quadrants/{params}")
    assert_plain_error(r, 400, "^")


@pytest.mark.parametrize(
    "params",
    [
        "full/^100000,100000/0/default.jpg",
        "full/^pct:100000/0/default.png",
        "0,0,0,10/max/0/default.jpg",
        "0,0,10,0/max/0/default.jpg",
        "pct:0,0,0,50/max/0/default.jpg",
        "full/^999999999,/0/default.jpg",
    ],
)
async def test_hostile_sizes_are_refused_before_decoding(
    client: httpx.AsyncClient, no_decoding: None, params: str
) -> None:
    # no_decoding fails the test if any pixel work starts; the timeout only guards against a hang (a speed bound
    # here failed on a loaded CI machine and is the benchmarks' job)
    r = await asyncio.wait_for(client.get(f"/iiif/3/pyramid/{params}"), timeout=30)
    assert_plain_error(r, 400)


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/healthz", 200),
        ("GET", "/iiif/3/quadrants/info.json", 200),
        ("GET", "/iiif/2/quadrants/info.json", 200),
        ("GET", "/iiif/3/quadrants/full/max/0/default.jpg", 200),
        ("HEAD", "/iiif/3/quadrants/full/max/0/default.jpg", 200),
        ("GET", "/iiif/3/quadrants", 303),
        ("GET", "/iiif/3/quadrants/nonsense/max/0/default.jpg", 400),
        ("GET", "/iiif/3/quadrants/full/max/0/default.bmp", 400),
        ("GET", "/iiif/3/%FF/info.json", 400),
        ("GET", "/iiif/3/nothing-here/info.json", 404),
        ("GET", "/iiif/3/quadrants/full/max/0/default.pdf", 501),
        ("GET", "/no/such/route", 404),  # Starlette's own 404
        ("POST", "/iiif/3/quadrants/info.json", 405),  # Starlette's own 405
        ("DELETE", "/healthz", 405),
    ],
)
async def test_cors_header_on_every_response(client: httpx.AsyncClient, method: str, path: str, status: int) -> None:
    r = await client.request(method, path)
    assert r.status_code == status, r.text
    assert r.headers["access-control-allow-origin"] == "*"


async def test_cors_header_on_304(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/info.json")
    r2 = await client.get("/iiif/3/quadrants/info.json", headers={"If-None-Match": r.headers["etag"]})
    assert r2.status_code == 304
    assert r2.headers["access-control-allow-origin"] == "*"


async def test_cors_header_on_an_unexpected_500(settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(service_module, "process", boom)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/iiif/3/quadrants/full/77,/0/default.jpg")
    assert r.status_code == 500
    assert r.headers["access-control-allow-origin"] == "*"


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/iiif/3/quadrants/info.json",
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Accept, If-None-Match",
        },
    )
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "accept" in allowed and "if-none-match" in allowed


async def test_cors_exposes_link_and_etag(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/full/max/0/default.jpg")
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "link" in exposed and "etag" in exposed


def parse_links(header: str) -> dict[str, str]:
    """rel -> URL of a Link header (URLs may hold commas)."""
    return {rel: url for url, rel in re.findall(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?', header)}


@pytest.mark.parametrize(
    ("version", "params", "canonical"),
    [
        (3, "full/max/0/default.jpg", "full/max/0/default.jpg"),
        (3, "0,0,200,150/100,/0/default.jpg", "0,0,200,150/100,75/0/default.jpg"),
        (3, "pct:50,50,50,50/max/!90/color.png", "200,150,200,150/max/!90/color.png"),
        (3, "square/!50,50/0/gray.jpg", "50,0,300,300/50,50/0/gray.jpg"),
        (3, "full/^800,/0/default.jpg", "full/^800,600/0/default.jpg"),
        (2, "full/full/0/default.jpg", "full/full/0/default.jpg"),
        (2, "full/max/0/default.jpg", "full/full/0/default.jpg"),
        (2, "full/100,/0/default.jpg", "full/100,/0/default.jpg"),
        (2, "0,0,200,150/,75/0/default.jpg", "0,0,200,150/100,/0/default.jpg"),
    ],
)
async def test_image_link_header_has_profile_and_canonical(
    client: httpx.AsyncClient, version: int, params: str, canonical: str
) -> None:
    r = await client.get(f"/iiif/{version}/quadrants/{params}")
    assert r.status_code == 200
    links = parse_links(r.headers["link"])
    assert links["profile"] == (PROFILE_3 if version == 3 else PROFILE_2)
    assert links["canonical"] == f"http://testserver/iiif/{version}/quadrants/{canonical}"
    again = await client.get(links["canonical"])
    assert again.status_code == 200
    assert again.content == r.content


async def test_canonical_link_keeps_the_identifier_encoded(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/nested%2Fdeeper%2Fpage/full/max/0/default.jpg")
    links = parse_links(r.headers["link"])
    assert links["canonical"] == "http://testserver/iiif/3/nested%2Fdeeper%2Fpage/full/max/0/default.jpg"


@pytest.mark.parametrize(("version", "context"), [(3, CONTEXT_3), (2, CONTEXT_2)])
async def test_info_json_media_type_follows_accept(client: httpx.AsyncClient, version: int, context: str) -> None:
    url = f"/iiif/{version}/quadrants/info.json"
    ld = await client.get(url, headers={"Accept": "application/ld+json"})
    assert ld.headers["content-type"] == f'application/ld+json;profile="{context}"'
    plain = await client.get(url, headers={"Accept": "application/json"})
    assert plain.headers["content-type"] == "application/json"
    default = await client.get(url)
    assert default.headers["content-type"] == "application/json"
    assert "accept" in ld.headers["vary"].lower()
    assert ld.json() == plain.json()
    links = parse_links(plain.headers["link"])
    assert links["profile"] == (PROFILE_3 if version == 3 else PROFILE_2)


async def test_info_json_etags_differ_between_media_types(client: httpx.AsyncClient) -> None:
    url = "/iiif/3/quadrants/info.json"
    ld = await client.get(url, headers={"Accept": "application/ld+json"})
    plain = await client.get(url)
    assert ld.headers["etag"] != plain.headers["etag"]
    # a cached ld+json copy is not revalidated as the plain JSON one
    r = await client.get(url, headers={"If-None-Match": ld.headers["etag"]})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/iiif/3/quadrants/info.json", "/iiif/3/quadrants/full/120,/0/default.jpg"])
@pytest.mark.storages
async def test_etag_with_if_none_match_gives_304(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        r2 = await client.get(path, headers={"If-None-Match": header})
        assert r2.status_code == 304, header
        assert r2.content == b""
        assert r2.headers["etag"] == etag
    r3 = await client.get(path, headers={"If-None-Match": '"something-else"'})
    assert r3.status_code == 200
    assert r3.content == r.content


@pytest.mark.parametrize(
    "path", ["/iiif/3/quadrants/info.json", "/iiif/3/quadrants/full/max/0/default.png", "/iiif/2/quadrants/info.json"]
)
@pytest.mark.storages
async def test_head_gives_the_get_headers_without_a_body(client: httpx.AsyncClient, path: str) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    for name in ("content-type", "etag", "link", "access-control-allow-origin"):
        assert head.headers[name] == get.headers[name]


def test_head_on_the_live_server(live_server: str) -> None:
    get = httpx.get(live_server + "/iiif/3/quadrants/full/max/0/default.jpg")
    head = httpx.head(live_server + "/iiif/3/quadrants/full/max/0/default.jpg")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]


async def test_query_string_is_ignored(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/info.json?cache-bust=1")
    assert r.status_code == 200
    assert r.json()["id"] == "http://testserver/iiif/3/quadrants"


async def test_encoded_route_prefix_is_not_an_image_api_url(client: httpx.AsyncClient) -> None:
    # routing sees the decoded path; identifiers come from the raw one: both must agree
    r = await client.get("/iiif%2F3%2Fx/iiif/3/quadrants/info.json")
    assert r.status_code == 404
    r = await client.get("/iiif/%33/quadrants/info.json")
    assert r.status_code == 404


# --- info.json content --------------------------------------------------------------------------


@pytest.mark.storages
async def test_info_3_content(client: httpx.AsyncClient) -> None:
    info = (await client.get("/iiif/3/quadrants/info.json")).json()
    assert info["@context"] == CONTEXT_3
    assert info["id"] == "http://testserver/iiif/3/quadrants"
    assert info["type"] == "ImageService3"
    assert info["protocol"] == "http://iiif.io/api/image"
    assert info["profile"] == "level2"
    assert (info["width"], info["height"]) == (400, 300)
    assert info["tiles"] and info["tiles"][0]["scaleFactors"][0] == 1


async def test_info_id_uses_the_request_host(settings: config.Settings) -> None:
    async with app_client(settings, allowed_hosts=("images.example.org:8080", "example.net")) as client:
        r = await client.get("/iiif/3/quadrants/info.json", headers={"Host": "images.example.org:8080"})
        assert r.json()["id"] == "http://images.example.org:8080/iiif/3/quadrants"
        r = await client.get("/iiif/2/nested%2Fdeeper%2Fpage/info.json", headers={"Host": "example.net"})
        assert r.json()["@id"] == "http://example.net/iiif/2/nested%2Fdeeper%2Fpage"


@pytest.mark.parametrize("base", ["https://images.example.org", "https://images.example.org/"])
async def test_info_id_uses_base_url_setting(settings: config.Settings, base: str) -> None:
    async with app_client(settings, base_url=base, trusted_proxies=("10.0.0.5",), peer=("10.0.0.5", 1)) as c:
        r = await c.get(
            "/iiif/3/quadrants/info.json",
            headers={"Host": "internal:8000", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        )
    assert r.json()["id"] == "https://images.example.org/iiif/3/quadrants"


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"}


@pytest.mark.parametrize(
    ("peer", "trusted", "hops"),
    [
        ("10.0.0.5", ("10.0.0.0/8",), 1),
        ("10.0.0.5", ("10.0.0.5",), 0),
        ("::ffff:10.0.0.5", ("10.0.0.5",), 0),  # IPv4-mapped IPv6 counts as IPv4
        ("fd00::7", ("fd00::/8",), 2),
        ("127.0.0.1", ("127.0.0.1/32", "10.0.0.5"), 0),
    ],
)
async def test_forwarded_headers_are_honoured_from_trusted_proxies(
    settings: config.Settings, peer: str, trusted: tuple[str, ...], hops: int
) -> None:
    # the forwarded host is used only because it is listed (a proxy may pass a client's own header on)
    async with app_client(settings, trusted_proxies=trusted, proxy_hops=hops,
                          allowed_hosts=("public.example.org", "testserver"), peer=(peer, 4321)) as c:
        r3 = await c.get("/iiif/3/quadrants/info.json", headers=FORWARDED)
        r2 = await c.get("/iiif/2/quadrants/info.json", headers=FORWARDED)
        redirect = await c.get("/iiif/3/quadrants", headers=FORWARDED)
        image = await c.get("/iiif/3/quadrants/full/max/0/default.jpg", headers=FORWARDED)
    assert r3.json()["id"] == "https://public.example.org/iiif/3/quadrants"
    assert r2.json()["@id"] == "https://public.example.org/iiif/2/quadrants"
    assert redirect.headers["location"] == "https://public.example.org/iiif/3/quadrants/info.json"
    canonical = parse_links(image.headers["link"])["canonical"]
    assert canonical.startswith("https://public.example.org/iiif/3/quadrants/")


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("192.0.2.1", ()),
        ("192.0.2.1", ("10.0.0.0/8",)),
        ("10.0.0.5", ()),
        ("::ffff:192.0.2.1", ("10.0.0.0/8",)),
        ("fe80::1", ("10.0.0.0/8",)),
        ("0.0.0.1", ("::1/128",)),  # an IPv4 peer never matches an IPv6 network
        ("not-an-ip", ("10.0.0.0/8",)),
    ],
)
async def test_forwarded_headers_are_ignored_from_other_peers(
    settings: config.Settings, peer: str, trusted: tuple[str, ...]
) -> None:
    async with app_client(settings, trusted_proxies=trusted, proxy_hops=1, peer=(peer, 4321)) as c:
        r = await c.get("/iiif/3/quadrants/info.json", headers=FORWARDED)
        redirect = await c.get("/iiif/3/quadrants", headers=FORWARDED)
    assert r.json()["id"] == "http://testserver/iiif/3/quadrants"
    assert redirect.headers["location"] == "http://testserver/iiif/3/quadrants/info.json"


async def test_forwarded_headers_take_the_first_value_and_fall_back_when_empty(settings: config.Settings) -> None:
    async with app_client(settings, trusted_proxies=("10.0.0.5",), allowed_hosts=("a.example", "testserver"),
                          peer=("10.0.0.5", 1)) as c:
        r = await c.get(
            "/iiif/3/quadrants/info.json",
            headers={"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.example, b.example"},
        )
        assert r.json()["id"] == "https://a.example/iiif/3/quadrants"
        r = await c.get("/iiif/3/quadrants/info.json", headers={"X-Forwarded-Proto": "", "X-Forwarded-Host": ""})
        assert r.json()["id"] == "http://testserver/iiif/3/quadrants"
        r = await c.get("/iiif/3/quadrants/info.json", headers={"X-Forwarded-Proto": "https"})
        assert r.json()["id"] == "https://testserver/iiif/3/quadrants"


@pytest.mark.storages
async def test_info_2_content(client: httpx.AsyncClient) -> None:
    info = (await client.get("/iiif/2/quadrants/info.json")).json()
    assert info["@context"] == CONTEXT_2
    assert info["@id"] == "http://testserver/iiif/2/quadrants"
    assert "id" not in info
    assert info["protocol"] == "http://iiif.io/api/image"
    assert (info["width"], info["height"]) == (400, 300)
    profile = info["profile"]
    assert profile[0] == PROFILE_2
    extra = profile[1]
    assert {"formats", "qualities", "supports"} <= set(extra)
    assert set(extra["qualities"]) >= {"default", "color", "gray", "bitonal"}
    assert {"baseUriRedirect", "cors", "jsonldMediaType", "canonicalLinkHeader", "profileLinkHeader"} <= set(
        extra["supports"]
    )
    for fmt in extra["formats"]:
        assert fmt in writable_formats()
    assert "pdf" not in extra["formats"]


@pytest.mark.libvips
async def test_info_advertises_only_writable_formats(client: httpx.AsyncClient) -> None:
    info = (await client.get("/iiif/3/quadrants/info.json")).json()
    for fmt in info["extraFormats"]:
        assert fmt in writable_formats()
        r = await client.get(f"/iiif/3/quadrants/full/50,/0/default.{fmt}")
        assert r.status_code == 200, fmt


# --- concurrency --------------------------------------------------------------------------------


@pytest.fixture
def slow_pyramid(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make rendering of `pyramid` take 2 s; returns the start times of slow renders."""
    real = service_module.process
    starts: list[float] = []

    def slow(source: Source, *args: Any) -> bytes:
        if source.path.stem == "pyramid":
            starts.append(time.monotonic())
            time.sleep(2)
        return real(source, *args)

    monkeypatch.setattr(service_module, "process", slow)
    return starts


async def wait_for(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("threads", [1, 2, 8])
async def test_a_slow_image_does_not_stall_info_json(
    settings: config.Settings, slow_pyramid: list[float], threads: int
) -> None:
    async with app_client(settings, threads=threads) as c:
        start = time.monotonic()
        slow = asyncio.create_task(c.get("/iiif/3/pyramid/full/301,/0/default.jpg"))
        await wait_for(lambda: slow_pyramid)
        quick_start = time.monotonic()
        info = await c.get("/iiif/3/quadrants/info.json")
        info2 = await c.get("/iiif/2/nested%2Fdeeper%2Fpage/info.json")
        health = await c.get("/healthz")
        home = await c.get("/")
        quick = time.monotonic() - quick_start
        assert not slow.done()
        r = await slow
        total = time.monotonic() - start
    assert info.status_code == info2.status_code == health.status_code == home.status_code == 200
    assert r.status_code == 200
    assert quick < 1.0, quick
    assert total >= 2.0


async def test_a_slow_image_does_not_stall_other_images(settings: config.Settings, slow_pyramid: list[float]) -> None:
    async with app_client(settings, threads=4) as c:
        slow = asyncio.create_task(c.get("/iiif/3/pyramid/full/302,/0/default.jpg"))
        await wait_for(lambda: slow_pyramid)
        t = time.monotonic()
        other = await c.get("/iiif/3/quadrants/full/123,/0/default.png")
        assert time.monotonic() - t < 1.0
        assert not slow.done()
        assert other.status_code == 200
        assert (await slow).status_code == 200


async def test_concurrent_identical_requests_render_once(settings: config.Settings, slow_pyramid: list[float]) -> None:
    async with app_client(settings, threads=4) as c:
        url = "/iiif/3/pyramid/full/303,/0/default.jpg"
        results = await asyncio.gather(*(c.get(url) for _ in range(5)))
    assert [r.status_code for r in results] == [200] * 5
    assert len({r.content for r in results}) == 1
    assert len(slow_pyramid) == 1


async def test_a_cancelled_request_does_not_fail_others_waiting_for_the_same_image(
    settings: config.Settings, slow_pyramid: list[float]
) -> None:
    async with app_client(settings, threads=4) as c:
        url = "/iiif/3/pyramid/full/304,/0/default.jpg"
        first = asyncio.create_task(c.get(url))
        await wait_for(lambda: slow_pyramid)
        second = asyncio.create_task(c.get(url))
        await asyncio.sleep(0.1)
        first.cancel()  # the first client disconnects
        r = await asyncio.wait_for(second, 10)
        assert r.status_code == 200
        assert pyvips.Image.new_from_buffer(r.content, "").width == 304
        assert len(slow_pyramid) == 1
        with pytest.raises(asyncio.CancelledError):
            await first


def test_a_slow_image_does_not_stall_the_live_server(live_server: str) -> None:
    """A large upscaled, rotated PNG (within the limits) runs while small requests still answer."""
    # 5600x4200 turned by 33 degrees: a 6983x6572 box, within maxArea (the turned box is what counts); ~2 s
    slow_url = live_server + "/iiif/3/pyramid/full/^5600,/33/default.png"
    result: dict[str, Any] = {}

    def fetch_slow() -> None:
        t = time.monotonic()
        result["response"] = httpx.get(slow_url, timeout=120)
        result["elapsed"] = time.monotonic() - t

    thread = threading.Thread(target=fetch_slow)
    thread.start()
    time.sleep(0.3)
    quick = []
    with httpx.Client(base_url=live_server, timeout=30) as c:
        for path in ("/iiif/3/quadrants/info.json", "/iiif/2/pyramid/info.json", "/healthz"):
            t = time.monotonic()
            assert c.get(path).status_code == 200
            quick.append(time.monotonic() - t)
    still_running = thread.is_alive()
    thread.join(120)
    assert result["response"].status_code == 200
    if not still_running:
        pytest.skip(f"the slow request took only {result['elapsed']:.2f} s here; nothing to show")
    assert max(quick) < 1.0, quick


# --- / and /healthz -----------------------------------------------------------------------------


@pytest.mark.storages
async def test_home_lists_images_with_info_json_links(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for ident in ("quadrants", "pyramid", "nested%2Fdeeper%2Fpage", VALIDATOR_ID):
        for version in (3, 2):
            link = f"/iiif/{version}/{ident}/info.json"
            assert f'href="{link}"' in r.text
            assert (await client.get(link)).status_code == 200
    assert "nested/deeper/page" in r.text


async def test_home_escapes_identifiers(tmp_path: Path, settings: config.Settings) -> None:
    root = tmp_path / "root"
    root.mkdir()
    quadrants(20, 20).pngsave(str(root / "<b>&x.png"))
    async with app_client(settings, images=root) as c:
        r = await c.get("/")
        assert "<b>&x" not in r.text
        assert "&lt;b&gt;&amp;x" in r.text
        assert 'href="/iiif/3/%3Cb%3E%26x/info.json"' in r.text
        assert (await c.get("/iiif/3/%3Cb%3E%26x/info.json")).status_code == 200


@pytest.mark.storages
async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.text.strip() == "ok"
    assert (await client.head("/healthz")).status_code == 200


async def test_healthz_is_503_when_the_image_root_is_gone(tmp_path: Path, settings: config.Settings) -> None:
    root = tmp_path / "root"
    root.mkdir()
    quadrants(20, 20).pngsave(str(root / "a.png"))
    async with app_client(settings, images=root) as c:
        assert (await c.get("/healthz")).status_code == 200
        shutil.rmtree(root)
        r = await c.get("/healthz")
        assert_plain_error(r, 503, "image root")
        assert r.headers["access-control-allow-origin"] == "*"
        root.write_text("not a folder")
        assert (await c.get("/healthz")).status_code == 503
        root.unlink()
        root.mkdir()
        assert (await c.get("/healthz")).status_code == 200


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder whatever its mode")
async def test_healthz_is_503_when_the_image_root_is_unreadable(tmp_path: Path, settings: config.Settings) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with app_client(settings, images=root) as c:
        root.chmod(0)
        try:
            assert (await c.get("/healthz")).status_code == 503
        finally:
            root.chmod(0o755)
        assert (await c.get("/healthz")).status_code == 200


@pytest.mark.libvips
async def test_healthz_is_503_when_libvips_cannot_encode_jpeg(
    settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a libvips that refuses an option every saver passes (as 8.14 refused `keep`) fails at start
    real = pyvips.Image.jpegsave_buffer

    def refuses(self: pyvips.Image, **kwargs: object) -> bytes:
        if "Q" in kwargs:
            raise pyvips.Error("jpegsave_buffer does not support optional argument")
        return real(self, **kwargs)

    monkeypatch.setattr(pyvips.Image, "jpegsave_buffer", refuses)
    async with app_client(settings) as c:
        r = await c.get("/healthz")
        assert_plain_error(r, 503, "cannot encode JPEG")
        # and no request reaches the broken saver: a clear 501 instead of a 500 per image
        assert_plain_error(await c.get("/iiif/3/quadrants/full/max/0/default.jpg"), 501, "jpg")
        assert (await c.get("/iiif/3/quadrants/full/max/0/default.png")).status_code == 200


async def test_healthz_is_503_when_the_catalogue_is_unreachable(tmp_path: Path, settings: config.Settings) -> None:
    async with app_client(settings) as c:
        assert (await c.get("/healthz")).status_code == 200
        c._transport.app.state.catalogue.engine.dispose()  # type: ignore[attr-defined]
        db = Path(c._transport.app.state.catalogue.url.removeprefix("sqlite:///"))  # type: ignore[attr-defined]
        db.rename(db.with_suffix(".gone"))
        db.mkdir()  # a folder where the file was: nothing can open it
        try:
            assert_plain_error(await c.get("/healthz"), 503, "catalogue unreachable")
        finally:
            db.rmdir()
            db.with_suffix(".gone").rename(db)
        assert (await c.get("/healthz")).status_code == 200


# --- the cache-hit path ------------------------------------------------------------------------------


def count_full_path(service: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parameters of each request the full path (`ImageService.image`) answers, as it answers them."""
    full_path = service.image
    calls: list[str] = []

    async def counted(request: Any, version: int, identifier: str, params: list[str]) -> Any:
        calls.append("/".join(params))
        return await full_path(request, version, identifier, params)

    monkeypatch.setattr(service, "image", counted)
    return calls


@pytest.mark.libvips
async def test_a_repeated_request_is_answered_from_the_cache_as_the_full_path_answers_it(
        settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second GET of a public image comes from `answer_hit` (no request object, no pool), with the full
    path's body and headers; the Link header follows each request's Host; conditional and HEAD requests
    and errors take the full path."""
    app = create_app(dataclasses.replace(settings, cache_mb=64, allowed_hosts=("testserver", "images.example.org")))
    service = app.state.service
    calls = count_full_path(service, monkeypatch)
    url = "/iiif/3/pyramid/256,256,256,256/256,256/0/default.jpg"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        first = await c.get(url)
        second = await c.get(url)
        assert len(calls) == 1, calls
        assert first.status_code == second.status_code == 200
        assert second.content == first.content
        same = ("content-type", "content-length", "etag", "link", "cache-control", "access-control-allow-origin")
        assert {h: second.headers[h] for h in same} == {h: first.headers[h] for h in same}
        assert "<http://testserver/iiif/3/pyramid/" in second.headers["link"]

        other = await c.get(url, headers={"Host": "images.example.org"})
        assert other.status_code == 200 and len(calls) == 1
        assert "<http://images.example.org/iiif/3/pyramid/256,256,256,256/max/0/default.jpg>" in other.headers["link"]

        r = await c.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert r.status_code == 304 and len(calls) == 2
        r = await c.head(url)
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", first.headers["content-length"])
        assert len(calls) == 3
        for _ in range(2):  # another spelling: found under the canonical form, then under its own URL
            r = await c.get("/iiif/3/pyramid/256,256,256,256/max/0/default.jpg")
            assert r.content == first.content and r.headers["etag"] == first.headers["etag"]
        assert len(calls) == 3
        r = await c.get("/iiif/3/pyramid/256,256,256,256/max/0/default.jpg?x=1")  # a query changes nothing
        assert r.content == first.content and len(calls) == 3
        r = await c.get("/iiif/3/pyramid/0,0,0,0/max/0/default.jpg")  # errors: the full path's
        assert r.status_code == 400 and len(calls) == 4
    app.state.catalogue.engine.dispose()


async def test_a_cached_image_is_refused_to_a_host_not_allowed(settings: config.Settings) -> None:
    """The hit path answers ahead of the host check and does it itself: a forged Host gets the 400 the
    full path gives, never the cached image with that host in its Link header."""
    app = create_app(dataclasses.replace(settings, cache_mb=64, allowed_hosts=("testserver",)))
    url = "/iiif/3/pyramid/256,256,256,256/256,256/0/default.jpg"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        for _ in range(2):
            r = await c.get(url)
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        forged = await c.get(url, headers={"Host": "evil.example"})
        assert forged.status_code == 400 and "evil.example" not in forged.headers.get("link", "")
    app.state.catalogue.engine.dispose()


@pytest.mark.libvips
async def test_requests_through_a_trusted_proxy_take_the_hit_path_with_the_forwarded_host(
        settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """nginx sends X-Forwarded-* with every request: from a trusted proxy, a cached image is answered on the
    hit path with the forwarded scheme and host in its Link header, as the full path answered it; a forwarded
    host not listed is still the host check's 400, and from any other peer those headers count for nothing."""
    app = create_app(dataclasses.replace(settings, cache_mb=64, trusted_proxies=("10.0.0.5",),
                                         allowed_hosts=("testserver", "public.example.org")))
    calls = count_full_path(app.state.service, monkeypatch)
    url = "/iiif/3/pyramid/256,256,256,256/256,256/0/default.jpg"
    headers = {**FORWARDED, "X-Forwarded-For": "198.51.100.7"}
    proxy = httpx.ASGITransport(app=app, client=("10.0.0.5", 1))
    other = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))
    async with httpx.AsyncClient(transport=proxy, base_url="http://testserver") as c, \
            httpx.AsyncClient(transport=other, base_url="http://testserver") as elsewhere:
        first = await c.get(url, headers=headers)
        second = await c.get(url, headers=headers)
        assert len(calls) == 1, calls
        assert second.status_code == 200 and second.content == first.content
        assert second.headers["link"] == first.headers["link"]
        assert "<https://public.example.org/iiif/3/pyramid/256,256,256,256/" in second.headers["link"]
        forged = await c.get(url, headers={**headers, "X-Forwarded-Host": "evil.example"})
        assert forged.status_code == 400 and "evil.example" not in forged.headers.get("link", "")
        direct = await elsewhere.get(url, headers=headers)
        assert direct.status_code == 200 and len(calls) == 1
        assert "<http://testserver/iiif/3/pyramid/256,256,256,256/" in direct.headers["link"]
    app.state.catalogue.engine.dispose()


async def test_the_cache_hit_path_notices_a_replaced_file(settings: config.Settings, tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    quadrants(300, 200).pngsave(str(root / "swap.png"))
    app = create_app(dataclasses.replace(settings, images=root, cache_mb=64))
    url = "/iiif/3/swap/full/max/0/default.png"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        before = (await c.get(url)).content
        assert (await c.get(url)).content == before
        blue = pyvips.Image.black(300, 200, bands=3).new_from_image([0, 0, 255]).cast("uchar")
        blue.copy(interpretation="srgb").pngsave(str(root / ".swap.png"))
        os.replace(root / ".swap.png", root / "swap.png")
        after = await c.get(url)
        assert after.status_code == 200 and after.content != before
        assert pyvips.Image.new_from_buffer(after.content, "")(150, 100) == [0, 0, 255]
    app.state.catalogue.engine.dispose()


async def test_stored_tiles_read_on_the_loop_follow_a_replaced_or_withdrawn_file(
        settings: config.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the response cache off, a stored tile is read on the loop through a kept descriptor: a file
    replaced by another (an atomic rename, as ingest writes) is served from the new file at once, a
    withdrawn one is not served, and only OPEN_FILES descriptors are kept."""
    from iiif_server.ingest.convert import write_access_copy
    from iiif_server.tiles import hot

    root = tmp_path / "images"
    root.mkdir()

    def write(name: str, rgb: list[int]) -> None:
        master = tmp_path / f"{name}-{rgb[0]}.png"
        pyvips.Image.black(512, 512, bands=3).new_from_image(rgb).cast("uchar").copy(
            interpretation="srgb").pngsave(str(master))
        write_access_copy(master, 0, root / f".{name}.tif", thumbnail_quality=None)
        os.replace(root / f".{name}.tif", root / f"{name}.tif")

    for name in ("a", "b", "c"):
        write(name, [200, 0, 0])
    monkeypatch.setattr(hot, "OPEN_FILES", 2)
    app = create_app(dataclasses.replace(settings, images=root, cache_mb=0))
    service = app.state.service
    tile = "/iiif/3/{}/256,0,256,256/256,256/0/default.jpg"

    def red(body: bytes) -> float:
        return pyvips.Image.new_from_buffer(body, "")(128, 128)[0]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        for name in ("a", "b", "c"):
            for _ in range(2):  # the second one on the loop, when non-blocking reads are there
                r = await c.get(tile.format(name))
                assert r.status_code == 200 and red(r.content) > 150
        assert len(service.hot._fds) <= 2
        write("c", [0, 0, 200])
        r = await c.get(tile.format("c"))
        assert r.status_code == 200 and red(r.content) < 50
        os.unlink(root / "c.tif")
        assert (await c.get(tile.format("c"))).status_code == 404
        assert str(root / "c.tif") not in service.hot._fds
    app.state.catalogue.engine.dispose()


@pytest.mark.libvips
async def test_an_edge_tile_without_the_cache_is_the_full_paths_image(settings: config.Settings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With the response cache off, an edge tile (inside one stored tile, unscaled) is decoded from that
    tile on the hit path when its bytes are in the page cache: the same bytes as the full path's render."""
    app = create_app(dataclasses.replace(settings, cache_mb=0))
    service = app.state.service
    calls = count_full_path(service, monkeypatch)
    edge = "/iiif/3/pyramid/full/256,/0/default.jpg"  # the 256x192 level: the top of one padded stored tile
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        first = await c.get(edge)  # the full path (and the source's first lookup)
        second = await c.get(edge)
        small = await c.get("/iiif/3/pyramid/full/256,/0/default.png")
    app.state.catalogue.engine.dispose()
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    if service.hot.nowait:  # a file system with non-blocking reads: answered before the full path
        assert calls == ["full/256,/0/default.jpg"]  # the PNG is rendered there too, the source being open
    png = pyvips.Image.new_from_buffer(small.content, "")
    jpg = pyvips.Image.new_from_buffer(second.content, "")
    assert (jpg.width, jpg.height) == (png.width, png.height) == (256, 192)
    assert (jpg - png[:3]).abs().avg() < 3  # the same region (JPEG against lossless)


@pytest.mark.libvips
async def test_a_thumbnail_without_the_cache_is_rendered_on_the_hit_path_as_the_full_path_renders_it(
        settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its source is open, a public image that is neither cached nor stored (a thumbnail of any size) is
    rendered without Starlette's routing: the full path's bytes and headers, the full path asked nothing."""
    app = create_app(dataclasses.replace(settings, cache_mb=0))
    calls = count_full_path(app.state.service, monkeypatch)
    thumb = "/iiif/3/pyramid/full/!150,150/0/default.jpg"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        first = await c.get(thumb)  # the full path (and the source's first lookup)
        second = await c.get(thumb)
        turned = await c.get("/iiif/3/pyramid/full/!150,150/90/default.png")
        bad = await c.get("/iiif/3/pyramid/full/!150,150/0/default.bmp")
    app.state.catalogue.engine.dispose()
    assert calls == ["full/!150,150/0/default.jpg", "full/!150,150/0/default.bmp"]
    assert first.status_code == second.status_code == turned.status_code == 200
    assert second.content == first.content
    for name in ("etag", "link", "cache-control", "content-type", "access-control-allow-origin"):
        assert second.headers[name] == first.headers[name]
    assert pyvips.Image.new_from_buffer(turned.content, "").height == 150
    assert bad.status_code in (400, 501)
