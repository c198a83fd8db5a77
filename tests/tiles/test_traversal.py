"""Hostile identifiers: nothing outside the image root is ever served.

An image outside the root (`outside/secret.png`, 321x123) is the bait: a leak
would show as a 200, an image body, its size in an info.json or its bytes.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest
from hostile import SECRET_SIZE, Layout
from support import quadrants, start_server, stop_server

from iiif_server import config
from iiif_server.web.app import create_app


@pytest.fixture
async def hc(layout: Layout, storage: str, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over the hostile layout: its root as the image folder, or (`[s3]`) uploaded to S3
    with the bait below another prefix (tests/tiles/conftest.py)."""
    if storage == "s3":
        app = create_app(request.getfixturevalue("hostile_s3_settings"))
    else:
        settings: config.Settings = request.getfixturevalue("settings")
        app = create_app(dataclasses.replace(settings, images=layout.root))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    if storage == "s3":
        app.state.catalogue.engine.dispose()


@pytest.fixture(scope="module")
def hostile_server(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server over the hostile root."""
    data = tmp_path_factory.mktemp("hostile-data")
    proc, url = start_server(["--images", str(layout.root), "--data-dir", str(data), "--no-demo"])
    yield url
    stop_server(proc)


def assert_refused(status: int, headers: dict[str, str], body: bytes, layout: Layout) -> None:
    assert status in (400, 404), (status, body[:200])
    assert not headers.get("content-type", "").startswith("image/")
    assert layout.secret not in body
    assert b"321" not in body  # the bait's width, as an info.json would show it
    assert b"root:" not in body  # /etc/passwd


# --- in-process: encoded hostile identifiers ----------------------------------------------------

HOSTILE = [
    "%2E%2E",
    "%2e%2e",
    ".%2E",
    "%2E",
    "%2E%2E%2F",
    "..%2F",
    "..%2Foutside%2Fsecret",
    "%2E%2E%2Foutside%2Fsecret",
    "..%2F..%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "sub%2F..%2F..%2Foutside%2Fsecret",
    "sub%2F..%2Finside",  # lands inside, but '..' is refused outright
    ".%2Finside",
    "sub%2F.%2Fdeep",
    "sub%2F%2Fdeep",
    "sub%2Fdeep%2F",
    "%2Fetc%2Fpasswd",
    "%2F%2Fetc%2Fpasswd",
    "%2Finside",
    "inside%00",
    "inside%00.png",
    "%00",
    "..%00",
    "%2E%2E%00%2Foutside%2Fsecret",
    "..%5Coutside%5Csecret",
    "inside%5C",
    "%5Cetc%5Cpasswd",
    "C:%5Cwindows%5Cwin",
    "inside%0A",
    "inside%0D%0AX-Injected:%201",
    "%1B%5B31m",
    "inside%09",
    "inside%7F",
    "inside%C2%85",
    "%FF%FE",
    "%C0%AE%C0%AE%2Foutside%2Fsecret",  # overlong UTF-8 dots
    "%E0%80%AE%E0%80%AE%2Foutside%2Fsecret",
    "%252E%252E%252Foutside%252Fsecret",  # decoded once only: a literal '%2E%2E%2F...'
    "%EF%BC%8E%EF%BC%8E%2Foutside%2Fsecret",  # fullwidth dots are not dots
    "link",
    "rellink",
    "linkdir%2Fsecret",
    "sub%2Fup%2Foutside%2Fsecret",
    "loop",
    "sub",
    "linkdir",
    "inside.png",
    "~%2F..%2Fsecret",
    "x" * 1025,
    "a%2F" * 300 + "b",
]
TAILS = ["/info.json", "/full/max/0/default.png", "/full/max/0/default.jpg", ""]


def test_the_bait_is_a_real_image_outside_the_root(layout: Layout) -> None:
    assert layout.secret.startswith(b"\x89PNG")
    assert not (layout.outside / "secret.png").resolve().is_relative_to(layout.root.resolve())


@pytest.mark.parametrize("ident", HOSTILE)
@pytest.mark.parametrize("version", [3, 2])
@pytest.mark.storages
async def test_hostile_identifiers_are_400_or_404(
    hc: httpx.AsyncClient, layout: Layout, version: int, ident: str
) -> None:
    for tail in TAILS:
        r = await hc.get(f"/iiif/{version}/{ident}{tail}")
        assert_refused(r.status_code, dict(r.headers), r.content, layout)
        assert "x-injected" not in r.headers
        assert "location" not in r.headers


@pytest.mark.storages
async def test_controls_inside_the_root_are_served(hc: httpx.AsyncClient) -> None:
    """The layout works: real images are 200."""
    for ident, width in (("inside", 64), ("sub%2Fdeep", 32)):
        r = await hc.get(f"/iiif/3/{ident}/info.json")
        assert r.status_code == 200, ident
        assert r.json()["width"] == width
        assert (await hc.get(f"/iiif/3/{ident}/full/max/0/default.png")).status_code == 200


async def test_symlink_that_stays_inside_the_root_is_404(hc: httpx.AsyncClient) -> None:
    """An alias link would give its own name's tier to another name's file: it is an unknown identifier."""
    for tail in TAILS:
        assert (await hc.get(f"/iiif/3/alias{tail}")).status_code == 404, tail


@pytest.mark.storages
async def test_symlink_to_an_image_outside_the_root_is_404(hc: httpx.AsyncClient, layout: Layout) -> None:
    for ident in ("link", "rellink", "linkdir%2Fsecret", "sub%2Fup%2Foutside%2Fsecret"):
        for tail in TAILS:
            r = await hc.get(f"/iiif/3/{ident}{tail}")
            assert r.status_code == 404, (ident, tail, r.status_code)
            assert_refused(r.status_code, dict(r.headers), r.content, layout)


@pytest.mark.storages
async def test_traversal_reasons_are_400(hc: httpx.AsyncClient) -> None:
    # ('%0A' is 404: Starlette's `path` convertor does not match a newline, so no route does)
    for ident in ("%2E%2E", "..%2Foutside%2Fsecret", "%2Fetc%2Fpasswd", "inside%00", "inside%5C", "inside%01", "%FF"):
        r = await hc.get(f"/iiif/3/{ident}/info.json")
        assert r.status_code == 400, ident
        assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.storages
async def test_identifier_length_limit(hc: httpx.AsyncClient) -> None:
    assert (await hc.get("/iiif/3/" + "x" * 1025 + "/info.json")).status_code == 400
    # within the limit but too long for the file system: simply not there
    assert (await hc.get("/iiif/3/" + "x" * 1024 + "/info.json")).status_code == 404
    assert (await hc.get("/iiif/3/" + "x" * 300 + "/info.json")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/iiif/3/sub/deep/info.json",
        "/iiif/3/sub/deep/full/max/0/default.png",
        "/iiif/3/linkdir/secret/info.json",
        "/iiif/3/linkdir/secret/full/max/0/default.png",
        "/iiif/3/linkdir/secret",
        "/iiif/2/linkdir/secret/info.json",
        "/iiif/3/sub/up/outside/secret/info.json",
    ],
)
@pytest.mark.storages
async def test_unencoded_slash_identifiers_are_refused(hc: httpx.AsyncClient, layout: Layout, path: str) -> None:
    r = await hc.get(path)
    assert_refused(r.status_code, dict(r.headers), r.content, layout)


async def test_home_does_not_list_what_lies_behind_a_symlinked_folder(hc: httpx.AsyncClient) -> None:
    r = await hc.get("/")
    assert "secret" not in r.text.replace("link", "")  # 'link' itself may be listed; it answers 404
    assert "linkdir/secret" not in r.text and "linkdir%2Fsecret" not in r.text


# --- the real server: raw request targets, sent byte for byte -----------------------------------


def raw_request(base_url: str, target: bytes, method: bytes = b"GET") -> tuple[int, dict[str, str], bytes]:
    """Send `target` unchanged on a fresh connection; (0, {}, b'') if the server just hangs up."""
    u = urlparse(base_url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(
            method + b" " + target + b" HTTP/1.1\r\nHost: " + u.netloc.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


RAW_TARGETS = [
    b"/iiif/3/../../../../../../../../etc/passwd",
    b"/iiif/3/../outside/secret/info.json",
    b"/iiif/3/../../outside/secret/full/max/0/default.png",
    b"/iiif/3/x/../../../outside/secret/full/max/0/default.png",
    b"/iiif/3/..%2Foutside%2Fsecret/info.json",
    b"/iiif/3/..%2Foutside%2Fsecret/full/max/0/default.png",
    b"/iiif/3/%2E%2E%2Foutside%2Fsecret/full/max/0/default.png",
    b"/iiif/3/%2e%2e/%2e%2e/outside/secret/full/max/0/default.png",
    b"/iiif/3/..%2F..%2F..%2F..%2Fetc%2Fpasswd/info.json",
    b"/iiif/3/%2Fetc%2Fpasswd/info.json",
    b"/iiif/3/link/full/max/0/default.png",
    b"/iiif/3/link/info.json",
    b"/iiif/3/linkdir%2Fsecret/full/max/0/default.png",
    b"/iiif/3/linkdir/secret/full/max/0/default.png",
    b"/iiif/3/sub%2Fup%2Foutside%2Fsecret/info.json",
    b"/iiif/3/inside%00/info.json",
    b"/iiif/3/..\\outside\\secret/info.json",
    b"/iiif/3/..%5Coutside%5Csecret/info.json",
    b"/iiif/3/inside%0D%0AX-Injected:%201/info.json",
    b"/iiif/3/..;/..;/outside/secret/info.json",
    b"/iiif/3/%C0%AE%C0%AE%2Foutside%2Fsecret/info.json",
    b"/iiif/3/\xc3\xa9/info.json",
    b"/iiif/3/" + b"x" * 1100 + b"/info.json",
    b"/../../outside/secret.png",
    b"//outside/secret.png",
    b"/iiif/2/../outside/secret/full/full/0/default.png",
    b"/iiif/2/%2E%2E%2Foutside%2Fsecret/info.json",
]


@pytest.mark.parametrize("target", RAW_TARGETS)
def test_raw_hostile_targets_on_the_real_server(hostile_server: str, layout: Layout, target: bytes) -> None:
    status, headers, body = raw_request(hostile_server, target)
    assert_refused(status, headers, body, layout)
    assert "x-injected" not in headers


@pytest.mark.parametrize("target", [b"/iiif/3/inside\x00/info.json", b"/iiif/3/inside\x01/info.json", b"/iiif/3/a b"])
def test_raw_control_bytes_in_the_request_line_are_refused(hostile_server: str, layout: Layout, target: bytes) -> None:
    status, headers, body = raw_request(hostile_server, target)
    if status == 0:
        return  # the HTTP parser hung up on it: nothing leaked
    assert_refused(status, headers, body, layout)


def test_raw_controls_are_served_on_the_real_server(hostile_server: str) -> None:
    status, headers, _ = raw_request(hostile_server, b"/iiif/3/inside/full/max/0/default.png")
    assert status == 200 and headers["content-type"] == "image/png"
    status, _, _ = raw_request(hostile_server, b"/iiif/3/sub%2Fdeep/info.json")
    assert status == 200


def test_http_client_dot_segments_on_the_real_server(hostile_server: str, layout: Layout) -> None:
    """http.client sends the path as given (no dot-segment removal)."""
    u = urlparse(hostile_server)
    for path in ("/iiif/3/../outside/secret/info.json", "/iiif/3/%2E%2E%2Foutside%2Fsecret/full/max/0/default.png"):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert_refused(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, layout)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def bait_next_to_live_root(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, bytes]:
    """An image next to the shared live server's root: its stem relative to that root, absolute, and bytes."""
    outside = tmp_path_factory.mktemp("outside-live")
    quadrants(*SECRET_SIZE).pngsave(str(outside / "secret.png"))
    rel = os.path.relpath(outside / "secret", image_root)
    assert rel.startswith("..")
    return rel, str(outside / "secret"), (outside / "secret.png").read_bytes()


def test_traversal_on_the_shared_live_server(live_server: str, bait_next_to_live_root: tuple[str, str, bytes]) -> None:
    rel, absolute, secret = bait_next_to_live_root
    layout = Layout(Path("/nonexistent"), Path("/nonexistent"), secret)
    targets = [
        f"/iiif/3/{rel}/info.json".encode(),
        f"/iiif/3/{quote(rel, safe='')}/info.json".encode(),
        f"/iiif/3/{quote(rel, safe='')}/full/max/0/default.png".encode(),
        f"/iiif/2/{quote(rel, safe='')}/full/full/0/default.png".encode(),
        f"/iiif/3/{quote(rel, safe='').replace('.', '%2E')}/info.json".encode(),
        f"/iiif/3/{quote(absolute, safe='')}/info.json".encode(),
        f"/iiif/3/{quote(absolute, safe='')}/full/max/0/default.png".encode(),
        b"/iiif/3/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd/info.json",
    ]
    for target in targets:
        status, headers, body = raw_request(live_server, target)
        assert_refused(status, headers, body, layout)
