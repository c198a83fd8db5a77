"""A shared cache in front of the server keeps only what is the same for everybody.

Debian's nginx with `proxy_cache` (honouring Cache-Control and Vary, as deployed) in front of a
real server. For every route, one requester's answer is cached (or not) first, then another
requester asks through nginx: the answer must be what the server itself gives that requester.
Pairs: anonymous after staff, staff after anonymous, public network after reading-room network and
the reverse. Clients choose their address on the loopback network (127.0.0.2 is the reading room).
Content Search and autocomplete (1.0 and 2.0) are among the routes: each collection's document has
a name index (`iiif-server text import`); the "open" document's second page is reading-room, so one
search URL answers differently by clearance, while the "list" document is public throughout (its
search is shared, and must be served from the cache). The public face is among them too: the overview, the
collection and viewer pages, robots.txt, the sitemaps, the Dublin Core records and the catalogue search; the
restricted collections' document has a label and summary of its own, which must never reach a visitor.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from support import free_port, need_nginx, quadrants, start_nginx, start_server, stop_nginx, stop_server

ROOM_ADDRESS, PUBLIC_ADDRESS = "127.0.0.2", "127.0.0.3"
PAGE = {"open": "open/d1/p1", "room": "room/d1/p1", "staff": "staff/d1/p1"}
RESTRICTED_WORD = "Zylberberg"  # in the label and summary of the reading-room and staff collections' document
RESTRICTED_LABEL = f"Letter of Abram {RESTRICTED_WORD}"
RESTRICTED_SUMMARY = f"Written by Chaja {RESTRICTED_WORD} from the barracks"


@dataclass(frozen=True)
class Setup:
    nginx: str
    server: str
    staff: str  # a staff token


def routes() -> list[str]:
    out = ["/", "/iiif/presentation/collections", "/iiif/discovery/activity/all-changes",
           "/iiif/discovery/activity/page/0", "/iiif/presentation/nothing/collection",
           # the public face: robots.txt, the sitemaps, the catalogue search by label and across texts
           "/robots.txt", "/sitemap.xml", "/sitemaps/collections-0.xml", "/iiif/search?q=levy",
           "/iiif/search?q=abram", "/iiif/search?q=chaja+barracks&format=json",  # words of restricted documents
           "/iiif/search/collections?q=levy", "/collections/nothing", "/view/nothing/d1"]
    for coll in ("open", "room", "staff"):
        out += [f"/iiif/presentation/{coll}/collection", f"/iiif/presentation/{coll}/manifest",
                f"/iiif/presentation/{coll}/d1/manifest", f"/iiif/presentation/{coll}/dc.xml",
                f"/iiif/presentation/{coll}/d1/dc.xml", f"/collections/{coll}", f"/collections/{coll}?from=0",
                f"/view/{coll}", f"/view/{coll}/d1", f"/iiif/view/{coll}/d1", f"/iiif/view/{coll}/d1?q=levy",
                f"/sitemaps/documents/{coll}/0.xml", f"/iiif/search/collections/{coll}?q=levy"]
    for coll in ("list", "open", "room", "staff", "nothing"):
        for version in (1, 2):
            search = f"/iiif/search/{version}/{coll}/d1"
            out += [f"{search}/search?q=levy", f"{search}/search?q=rywka", f"{search}/autocomplete?q=ry"]
    for ident in [*PAGE.values(), "open/d1/p9", "nothing/here"]:
        q = quote(ident, safe="")
        out += [f"/iiif/3/{q}/info.json", f"/iiif/2/{q}/info.json", f"/iiif/3/{q}/full/64,/0/default.jpg",
                f"/iiif/auth/probe/{q}"]
    return out


def cli(*args: str) -> str:
    import sys

    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    need_nginx()
    data = tmp_path_factory.mktemp("nginx-data")
    masters = tmp_path_factory.mktemp("nginx-masters")
    (masters / "d1").mkdir()
    for page in ("p1", "p2"):
        quadrants(120, 90).pngsave(str(masters / "d1" / f"{page}.png"))
    names = tmp_path_factory.mktemp("nginx-text") / "names.csv"
    names.write_text("document,page,text,x,y,w,h\nd1,p1,\"Lévy, Abraham\",10,10,50,20\n"
                     "d1,p2,\"Lévy, Rywka\",10,40,50,20\n", encoding="utf-8")
    described = tmp_path_factory.mktemp("nginx-metadata") / "documents.csv"
    described.write_text(f"id,label,summary\nd1,{RESTRICTED_LABEL},{RESTRICTED_SUMMARY}\n", encoding="utf-8")
    for coll, tier in (("open", "public"), ("room", "reading-room"), ("staff", "staff"), ("list", "public")):
        own = ["--metadata", str(described)] if tier != "public" else []  # restricted documents' own words
        cli("ingest", str(masters), "--collection", coll, "--tier", tier, "--processes", "1", "--data-dir", str(data),
            *own)
        cli("text", "import", str(names), "--collection", coll, "--data-dir", str(data))
    cli("set-tier", "open/d1/p2", "reading-room", "--data-dir", str(data))  # a restricted page of a public document
    staff = cli("token", "issue", "--tier", "staff", "--holder", "nginx test", "--data-dir", str(data)).split()[-1]
    port = free_port()
    nginx_url = f"http://127.0.0.1:{port}"
    proc, server = start_server(["--data-dir", str(data), "--no-demo", "--base-url", nginx_url,
                                 "--networks", f"reading-room={ROOM_ADDRESS}/32",
                                 "--trusted-proxies", "127.0.0.1/32"])
    tmp = tmp_path_factory.mktemp("nginx")
    try:
        nginx = start_nginx(tmp, port, server, "proxy_cache_valid 200 301 302 303 404 10m;  # what comes without "
                                               "Cache-Control")
    except BaseException:
        stop_server(proc)
        raise
    try:
        yield Setup(nginx_url, server, staff)
    finally:
        stop_nginx(nginx)
        stop_server(proc)
        shutil.rmtree(tmp / "cache", ignore_errors=True)


REQUESTERS = {
    "anonymous": (PUBLIC_ADDRESS, {}),
    "staff": (PUBLIC_ADDRESS, "staff"),
    "reading-room": (ROOM_ADDRESS, {}),
    "public-network": (PUBLIC_ADDRESS, {}),
}


def ask(setup: Setup, base: str, who: str, path: str) -> httpx.Response:
    address, headers = REQUESTERS[who]
    if headers == "staff":
        headers = {"Authorization": f"Bearer {setup.staff}"}
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=30) as c:
        return c.get(base + path, headers={**headers, "Accept-Encoding": "identity"})


@pytest.mark.parametrize(("first", "then"), [("staff", "anonymous"), ("anonymous", "staff"),
                                              ("reading-room", "public-network"), ("public-network", "reading-room")])
def test_what_one_requester_left_in_the_cache_never_reaches_another(setup: Setup, first: str, then: str) -> None:
    hits, search_hits = 0, set()
    for route in routes():
        path = f"{route}{'&' if '?' in route else '?'}pair={first}-{then}"  # a cache key of this pair's own
        ask(setup, setup.nginx, first, path)
        seen = ask(setup, setup.nginx, then, path)
        direct = ask(setup, setup.server, then, path)
        assert (seen.status_code, seen.content) == (direct.status_code, direct.content), (
            f"{then} after {first}: {route} came {seen.status_code} ({seen.headers.get('x-cache-status')}) "
            f"where the server answers {direct.status_code}")
        hits += seen.headers.get("x-cache-status") == "HIT"
        if seen.headers.get("x-cache-status") == "HIT" and route.startswith("/iiif/search/"):
            search_hits.add(route.split("?")[0].split("/")[4])
    assert hits, "nothing was ever served from the cache: the test shows nothing"
    assert search_hits == {"list"}, f"searches served from the shared cache: {search_hits}"


def test_a_visitor_reaches_nothing_of_a_restricted_document_through_the_cache(setup: Setup) -> None:
    """Staff and the reading room fill the cache first; a visitor then asks every route through it and
    directly: no restricted document's words and no restricted image reach them, while the reading room's
    own answers do hold those words (so the check can fail)."""
    held = 0
    for route in routes():
        path = f"{route}{'&' if '?' in route else '?'}pair=visitor"
        for first in ("staff", "reading-room"):
            r = ask(setup, setup.nginx, first, path)
            held += RESTRICTED_WORD in r.text
        for base in (setup.nginx, setup.server):
            r = ask(setup, base, "anonymous", path)
            assert RESTRICTED_WORD not in r.text, f"{route}: a restricted document's words reach a visitor"
            restricted_image = route.startswith(("/iiif/3/", "/iiif/2/")) and "%2F" in route and \
                route.split("/")[3].split("%2F")[0] in ("room", "staff") and not route.endswith("info.json")
            assert not (restricted_image and r.status_code == 200), f"{route}: a restricted image to a visitor"
            if r.headers.get("content-type", "").startswith("image/"):
                assert not route.split("?")[0].endswith(("room%2Fd1%2Fp1/full/64,/0/default.jpg",
                                                         "staff%2Fd1%2Fp1/full/64,/0/default.jpg"))
    assert held, "the restricted words are never shown even to the reading room: the test shows nothing"


def test_search_answers_differ_by_clearance(setup: Setup) -> None:
    """The search routes above are worth caching-testing: one URL, different answers by clearance."""
    def total(who: str, path: str) -> int:
        r = ask(setup, setup.server, who, path)
        assert r.status_code == 200, (who, path, r.status_code)
        return int(r.json()["within"]["total"])

    assert total("anonymous", "/iiif/search/1/open/d1/search?q=levy") == 1
    assert total("reading-room", "/iiif/search/1/open/d1/search?q=levy") == 2
    assert total("anonymous", "/iiif/search/1/open/d1/search?q=rywka") == 0
    assert total("anonymous", "/iiif/search/1/room/d1/search?q=levy") == 0
    assert total("staff", "/iiif/search/1/room/d1/search?q=levy") == 2
    assert ask(setup, setup.server, "anonymous", "/iiif/search/1/staff/d1/search?q=levy").status_code == 404
    assert total("staff", "/iiif/search/1/staff/d1/search?q=levy") == 2
    assert total("anonymous", "/iiif/search/1/list/d1/search?q=levy") == 2
