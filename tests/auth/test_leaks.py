"""The leaks of issue 8 ("Fail closed"), each reproduced as an attacker found it; every test failed
before its fix. Collections: `maps` public, `letters` reading-room, `personnel` staff (hidden).

The shared-cache leak is shown with a real nginx in tests/deploy/test_nginx_cache.py; here the headers
that decide it are checked on every route.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pyvips
from support import raw_request, start_server, stop_server
from worlds import (
    PUBLIC,
    READING_ROOM_V4,
    ROOM,
    STAFF,
    World,
    bearer,
    cookie,
    image_url,
    make_tiff,
    make_world,
    posted_message,
)

from iiif_server.db.catalogue import Catalogue

VIEWER = "https://viewer.example.org"  # configured in the world's settings
ELSEWHERE = "http://127.0.0.1:9999"  # "a page on another port of the same host"
UNKNOWN = "maps/d1/p9"


@pytest.fixture(scope="module")
def tiff_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tiff(tmp_path_factory.mktemp("leak-image"))


@pytest.fixture
async def world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    async for w in make_world(catalogue, tmp_path, tiff_bytes):
        yield w


def private(r: httpx.Response) -> bool:
    control = r.headers.get("cache-control", "")
    return "private" in control or "no-store" in control


def depends_on_clearance() -> list[str]:
    return ["/iiif/presentation/collections", "/iiif/presentation/letters/collection",
            "/iiif/presentation/letters/d1/manifest", "/iiif/presentation/personnel/collection",
            "/iiif/presentation/nothing/collection", f"/iiif/auth/probe/{quote(ROOM, safe='')}",
            f"/iiif/auth/probe/{quote(STAFF, safe='')}", f"/iiif/auth/probe/{quote(UNKNOWN, safe='')}",
            f"/iiif/3/{quote(ROOM, safe='')}/info.json", image_url(ROOM), image_url(STAFF)]


# -- 2. a clearance-dependent document cached as public ------------------------------------------


async def test_2_every_answer_that_depends_on_clearance_is_private(world: World) -> None:
    c = world.client()
    staff = bearer(world.token("staff"))
    for url in depends_on_clearance():
        for headers in ({}, staff):
            r = await c.get(url, headers=headers)
            assert private(r), (url, headers, r.status_code, r.headers)
            assert "public" not in r.headers.get("cache-control", ""), (url, r.headers)
    listing = await c.get("/iiif/presentation/collections", headers=staff)
    assert "personnel" in listing.text  # the staff listing differs from the anonymous one ...
    assert "personnel" not in (await c.get("/iiif/presentation/collections")).text
    # ... while what is the same for everybody stays public
    assert "public" in (await c.get(image_url(PUBLIC))).headers["cache-control"]


# -- 3. the token services hand a bearer token to any origin ---------------------------------------


@pytest.mark.parametrize("service", ["token", "token1"])
async def test_3_a_page_of_another_origin_gets_no_token(world: World, service: str) -> None:
    c = world.client()
    signed_in = cookie(world.token("reading-room"))
    for origin in (ELSEWHERE, "http://testserver.evil.example", "null"):
        r = await c.get(f"/iiif/auth/{service}", params={"messageId": "1", "origin": origin}, headers=signed_in)
        message, _ = posted_message(r.text)
        assert "accessToken" not in message, (origin, message)
        assert message.get("profile") == "invalidOrigin" or message.get("error") == "invalidOrigin"
    # fetched as JSON from another origin's page (the browser names it in Origin): no token either
    r = await c.get(f"/iiif/auth/{service}", headers={**signed_in, "Origin": ELSEWHERE})
    assert r.status_code == 401 and "accessToken" not in r.json()
    # the server's own pages and the configured viewer get one, and only they may frame it
    for origin in ("http://testserver", VIEWER):
        r = await c.get(f"/iiif/auth/{service}", params={"messageId": "2", "origin": origin}, headers=signed_in)
        message, target = posted_message(r.text)
        assert target == origin and message["accessToken"]
        assert r.headers["content-security-policy"] == f"frame-ancestors 'self' {VIEWER}"
        assert (await c.get(image_url(ROOM), headers=bearer(message["accessToken"]))).status_code == 200


# -- 4. / lists staff collections and every image to anyone ----------------------------------------


async def test_4_home_is_the_same_for_everyone_and_shows_nothing_hidden(world: World) -> None:
    """`/` is the overview of every collection that is not hidden (issue 22): one page for all, so it may be
    shared, and it holds nothing that a hidden tier keeps, whoever asks (staff included)."""
    c = world.client()
    r = await c.get("/")
    assert r.status_code == 200 and r.headers["cache-control"].startswith("public")
    for secret in ("personnel", "staff", "vault"):
        assert secret not in r.text, secret
    staff = await c.get("/", headers=bearer(world.token("staff")))
    assert staff.content == r.content and staff.headers["cache-control"] == r.headers["cache-control"]


# -- 5. no limit on request header size ---------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    from support import quadrants

    root = tmp_path_factory.mktemp("leak-images")
    quadrants(64, 48).pngsave(str(root / "tiny.png"))
    proc, url = start_server(["--images", str(root), "--data-dir", str(tmp_path_factory.mktemp("leak-data")),
                              "--no-demo", "--cache-mb", "0"])
    yield proc.pid, url
    stop_server(proc)


def test_5_a_64_mib_header_is_refused_without_growing_the_worker(small_server: tuple[int, str]) -> None:
    pid, url = small_server
    assert httpx.get(url + "/iiif/3/tiny/info.json").status_code == 200  # warm
    before = rss_kib(pid)
    head = b"GET /iiif/3/tiny/info.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    status, _ = raw_request(url, head + b"a" * (64 << 20) + b"\r\n\r\n")
    assert status == 431
    grown = rss_kib(pid) - before
    assert grown < 8 * 1024, f"the worker grew by {grown} KiB"
    assert httpx.get(url + "/healthz").status_code == 200  # and it still serves


def test_5_many_headers_a_long_url_and_a_slow_head_are_refused(small_server: tuple[int, str]) -> None:
    _, url = small_server
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    assert raw_request(url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")[0] == 431
    long_url = b"/iiif/3/" + b"a" * 20_000 + b"/info.json"
    assert raw_request(url, b"GET " + long_url + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0] == 414
    # a client trickling its head is cut off (slowloris)
    started = time.monotonic()
    status, _ = raw_request(url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", pause=0)
    assert status == 408 and time.monotonic() - started < 15
    # ordinary requests, kept alive, are untouched
    with httpx.Client() as c:
        for _ in range(3):
            assert c.get(url + "/iiif/3/tiny/full/32,/0/default.jpg", headers={"X-Pad": "p" * 8000}).status_code == 200


def test_5_a_huge_sign_in_form_is_refused(small_server: tuple[int, str]) -> None:
    _, url = small_server
    r = httpx.post(url + "/iiif/auth/login", content=b"token=" + b"A" * (4 << 20),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


# -- 6. framing, logout from anywhere, Host, existence oracles, labels -----------------------------------


async def test_6_sign_in_kiosk_and_logout_refuse_framing(world: World) -> None:
    c = world.client(peer=READING_ROOM_V4)
    for url in ("/iiif/auth/login", "/iiif/auth/kiosk", "/iiif/auth/logout"):
        r = await c.get(url, headers={"Sec-Fetch-Site": "same-origin"})
        assert r.headers["content-security-policy"] == "frame-ancestors 'self'", url
        assert r.headers["x-frame-options"] == "SAMEORIGIN", url


async def test_6_logout_cannot_be_triggered_from_another_site(world: World) -> None:
    c = world.client()
    signed_in = cookie(world.token())
    cross = {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/page"}
    r = await c.get("/iiif/auth/logout", headers={**signed_in, **cross})
    assert r.status_code == 200 and "set-cookie" not in r.headers and '<form method="post">' in r.text
    r = await c.post("/iiif/auth/logout", headers={**signed_in, **cross, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    # the confirmation form on our own page, the configured viewer (Mirador opens the service in a window)
    for allowed in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "cross-site", "Referer": VIEWER + "/"}):
        for method in ("GET", "POST"):
            r = await c.request(method, "/iiif/auth/logout", headers={**signed_in, **allowed})
            assert r.status_code == 200 and "iiif_access=" in r.headers["set-cookie"], (allowed, method)


async def test_6_a_forged_host_never_reaches_a_document(world: World) -> None:
    c = world.client()
    for url in ("/iiif/3/maps%2Fd1%2Fp1/info.json", "/iiif/3/maps%2Fd1%2Fp1", "/iiif/presentation/maps/collection",
                f"/iiif/auth/probe/{quote(ROOM, safe='')}"):
        r = await c.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 400 and "evil" not in r.text, url
        assert "evil" not in r.headers.get("location", "")
    assert (await c.get("/iiif/3/maps%2Fd1%2Fp1/info.json")).json()["id"].startswith("http://testserver/")
    named = world.client(world.app(allowed_hosts=("images.example.org",)))
    r = await named.get("/iiif/3/maps%2Fd1%2Fp1/info.json", headers={"Host": "images.example.org"})
    assert r.json()["id"].startswith("http://images.example.org/")
    assert (await named.get("/")).status_code == 400  # testserver is not in the list
    assert (await named.get("/healthz")).status_code == 200  # it names no host: a probe to any address works


async def test_6_hidden_and_unknown_answer_alike(world: World) -> None:
    c = world.client()
    for kind in ("collection", "manifest"):
        hidden = await c.get(f"/iiif/presentation/personnel/{kind}")
        unknown = await c.get(f"/iiif/presentation/nothing/{kind}")
        assert (hidden.status_code, hidden.text) == (unknown.status_code, unknown.text) == (404, "not found\n")
    hidden = await c.get("/iiif/presentation/personnel/d1/manifest")
    unknown = await c.get("/iiif/presentation/nothing/d1/manifest")
    assert (hidden.status_code, hidden.text) == (unknown.status_code, unknown.text)
    # the probe: a hidden identifier answers as an unknown one does, to whoever lacks that clearance
    for headers in ({}, bearer(world.token("reading-room"))):
        hidden = (await c.get(f"/iiif/auth/probe/{quote(STAFF, safe='')}", headers=headers)).json()
        for unknown_id in (UNKNOWN, "nothing/d1/p1", "nowhere"):
            unknown = (await c.get(f"/iiif/auth/probe/{quote(unknown_id, safe='')}", headers=headers)).json()
            assert unknown == hidden, (unknown_id, headers)
        assert hidden["status"] == 404 and "heading" not in hidden
    # staff see everything hidden: to them unknown is plainly unknown
    staff = bearer(world.token("staff"))
    assert (await c.get(f"/iiif/auth/probe/{quote(UNKNOWN, safe='')}", headers=staff)).json()["status"] == 404
    assert (await c.get(f"/iiif/auth/probe/{quote(STAFF, safe='')}", headers=staff)).json()["status"] == 200


def image_routes(identifier: str) -> list[str]:
    quoted = quote(identifier, safe="")
    return [f"/iiif/3/{quoted}", f"/iiif/3/{quoted}/info.json", f"/iiif/2/{quoted}/info.json", image_url(identifier),
            f"/iiif/3/{quoted}/full/max/0/default.jpg", f"/iiif/2/{quoted}/0,0,10,10/full/0/default.png"]


def same_answer(hidden: httpx.Response, unknown: httpx.Response, hidden_id: str, unknown_id: str) -> bool:
    """Status, headers (but the length) and body alike once the identifier is swapped."""
    def shape(r: httpx.Response, identifier: str) -> tuple[int, str, dict[str, str]]:
        headers = {k: v for k, v in r.headers.items() if k not in ("content-length", "date")}
        return r.status_code, r.text.replace(identifier, "ID"), headers
    return shape(hidden, hidden_id) == shape(unknown, unknown_id)


async def test_6_hidden_images_answer_exactly_as_unknown_ones_on_the_image_api(world: World) -> None:
    """Before: info.json and images answered 401 (with a sign-in) for a staff image, 404 for an unknown one."""
    room_network = world.client(peer=READING_ROOM_V4)
    askers = [(world.client(), {}), (world.client(), bearer(world.token("reading-room"))),
              (room_network, {}), (world.client(), bearer(world.token("staff", collections=("letters",))))]
    # a staff collection, a staff page in a public document, a staff folder by path rule
    pairs = ((STAFF, "nothing/d1/p1"), ("maps/d1/p2", "maps/d1/p9"), ("vault/plan", "vault/none"))
    for hidden_id, unknown_id in pairs:
        for client, headers in askers:
            for hidden_url, unknown_url in zip(image_routes(hidden_id), image_routes(unknown_id), strict=True):
                hidden = await client.get(hidden_url, headers=headers)
                unknown = await client.get(unknown_url, headers=headers)
                assert hidden.status_code == 404, (hidden_url, headers, hidden.status_code)
                assert same_answer(hidden, unknown, hidden_id, unknown_id), (hidden_url, hidden.headers,
                                                                             unknown.headers, hidden.text)
                assert private(hidden) and "www-authenticate" not in hidden.headers
    # staff see them; reading-room material keeps its sign-in (401 with the services) for everybody
    staff = world.client()
    for url in image_routes(STAFF)[1:]:
        assert (await staff.get(url, headers=bearer(world.token("staff")))).status_code == 200, url
    info = await world.client().get(f"/iiif/3/{quote(ROOM, safe='')}/info.json")
    assert info.status_code == 401
    assert any(s.get("type") == "AuthProbeService2" for s in info.json()["service"])
    assert (await world.client().get(image_url(ROOM))).status_code == 401


async def test_6_auth_1_services_carry_every_label_in_the_configured_languages(world: World) -> None:
    app = world.app(language="nl", auth_heading="en=Restricted|nl=Beperkt", auth_note="nl=Leeszaal|en=Reading room")
    info = (await world.client(app).get(f"/iiif/2/{quote(ROOM, safe='')}/info.json")).json()
    login = next(s for s in info["service"] if s.get("profile") == "http://iiif.io/api/auth/1/login")
    for name in ("label", "header", "description", "confirmLabel", "failureHeader", "failureDescription"):
        assert isinstance(login[name], str) and login[name].strip(), name  # UV 4 shows plain strings only
    assert (login["header"], login["description"]) == ("Beperkt", "Leeszaal")  # the configured language
    logout = next(s for s in login["service"] if s["profile"].endswith("logout"))
    assert logout["label"]
    token = next(s for s in login["service"] if s["profile"].endswith("token"))
    assert token.get("label") is None or token["label"]  # not shown by viewers; if given, not empty



def size(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


async def test_1_restricted_pages_get_a_thumbnail_a_viewer_can_show(world: World) -> None:
    """Before: the strip showed broken slivers (the page's own thumbnail, 401 without credentials)."""
    c = world.client()
    canvas = (await c.get("/iiif/presentation/letters/d1/manifest")).json()["items"][0]
    thumb = canvas["thumbnail"][0]
    shown = await c.get(thumb["id"])  # as a viewer fetches it: no credentials
    assert (shown.status_code, shown.headers["content-type"]) == (200, "image/png")
    assert "public" in shown.headers["cache-control"]
    assert (thumb["width"], thumb["height"]) == size(shown.content)
    # the collection lists its documents only to those cleared for them, with their own thumbnails
    assert (await c.get("/iiif/presentation/letters/collection")).json()["items"] == []
    token = bearer(world.token())
    entry = (await c.get("/iiif/presentation/letters/collection", headers=token)).json()["items"][0]
    assert (await c.get(entry["thumbnail"][0]["id"], headers=token)).status_code == 200
    # cleared: the page's own thumbnail
    own = (await c.get("/iiif/presentation/letters/d1/manifest", headers=bearer(world.token()))).json()
    assert "/iiif/3/" in own["items"][0]["thumbnail"][0]["id"]
    # degraded access configured: the degraded image itself, served without credentials
    degraded = world.client(world.app(degraded=("reading-room=100",)))
    thumb = (await degraded.get("/iiif/presentation/letters/d1/manifest")).json()["items"][0]["thumbnail"][0]
    shown = await degraded.get(thumb["id"])
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert max(thumb["width"], thumb["height"]) <= 100
    assert (thumb["width"], thumb["height"]) == size(shown.content)
