"""The world of the access tests (not a test module): a catalogue of restricted collections with their
image files, settings around it, apps and clients from chosen addresses; and what the tests of access, the
staff console and the landing page say about it (addresses, identifiers, tokens, the console's sign-in).

The fixtures `world`, `hidden_world`, `console_world` and `tiff_bytes` (tests/conftest.py) make it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from html import unescape
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyvips
from starlette.applications import Starlette
from starlette.routing import Route
from support import quadrants

from iiif_server import config
from iiif_server.auth.snapshot import MAX_AGE
from iiif_server.auth.tokens import TokenStore
from iiif_server.console.session import COOKIE
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.web.app import create_app

SECRET = "a-test-signing-key-that-is-long-enough-0123456789"
OTHER_SECRET = "another-signing-key-that-no-replica-uses-9876543210"
OUTSIDE = "203.0.113.7"  # no network rule holds it
READING_ROOM_V4 = "192.0.2.5"
READING_ROOM_V6 = "2001:db8:1::5"
MAPPED_V4 = "::ffff:192.0.2.5"
PROXY = "10.0.0.1"
NETWORKS = ("reading-room=192.0.2.0/24", "reading-room=2001:db8:1::/48")
PROXIES = (PROXY, "10.9.9.9")  # each proxy by its own address
WIDTH, HEIGHT = 400, 300  # landscape

PUBLIC = "maps/d1/p1"  # public collection
ROOM = "letters/d1/p1"  # reading-room collection
ROOM_OTHER = "diaries/d1/p1"  # another reading-room collection
STAFF = "personnel/d1/p1"  # staff collection
ROOM_DOC = "maps/d2/p1"  # reading-room document in the public collection
STAFF_PAGE = "maps/d1/p2"  # staff page in a public document
VAULT = "vault/plan"  # plain folder, restricted by path_tiers
SMALL = "full/100,/0/default.jpg"

COLLECTIONS = {
    "maps": ("public", {"d1": (None, {"p1": None, "p2": "staff"}), "d2": ("reading-room", {"p1": None})}),
    "letters": ("reading-room", {"d1": (None, {"p1": None})}),
    "diaries": ("reading-room", {"d1": (None, {"p1": None})}),
    "personnel": ("staff", {"d1": (None, {"p1": None})}),
}


async def settle() -> None:
    """Wait out the bound within which a change through another replica reaches this one."""
    await asyncio.sleep(MAX_AGE + 0.05)


def image_url(identifier: str, rest: str = SMALL, version: int = 3) -> str:
    return f"/iiif/{version}/{quote(identifier, safe='')}/{rest}"


def info_url(identifier: str, version: int = 3) -> str:
    return f"/iiif/{version}/{quote(identifier, safe='')}/info.json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"iiif_access={token}"}


def set_cookies(r: httpx.Response) -> dict[str, Any]:
    """The response's Set-Cookie headers, parsed (name -> morsel)."""
    jar: SimpleCookie = SimpleCookie()
    for header in r.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def assert_private(r: httpx.Response) -> None:
    assert "private" in r.headers["cache-control"], r.headers
    assert "public" not in r.headers["cache-control"], r.headers
    vary = {v.strip().lower() for v in r.headers.get("vary", "").split(",")}
    assert {"authorization", "cookie"} <= vary, r.headers


def jpeg_size(body: bytes) -> tuple[int, int]:
    img = pyvips.Image.new_from_buffer(body, "")
    return img.width, img.height


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "script":
            self._inside = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.scripts[-1] += data


def posted_message(page: str) -> tuple[dict[str, Any], str]:
    """The (message, target origin) of the page's one `postMessage` call, read as JSON from its script."""
    parser = _Scripts()
    parser.feed(page)
    parser.close()
    assert len(parser.scripts) == 1, parser.scripts
    script = parser.scripts[0]
    start = script.index("postMessage(") + len("postMessage(")
    decoder = json.JSONDecoder()
    message, end = decoder.raw_decode(script, start)
    rest = script[end:]
    comma = re.match(r"\s*,\s*", rest)
    assert comma, script
    target, end2 = decoder.raw_decode(rest, comma.end())
    assert re.fullmatch(r"\s*\);?\s*", rest[end2:]), script
    assert isinstance(message, dict) and isinstance(target, str)
    return message, target


# -- the world: a catalogue with restricted images, an app, clients from chosen addresses --------


def make_tiff(folder: Path) -> bytes:
    path = folder / "page.tif"
    quadrants(WIDTH, HEIGHT).tiffsave(str(path), compression="jpeg", Q=90)
    return path.read_bytes()


@dataclasses.dataclass
class World:
    settings: config.Settings
    catalogue: Catalogue
    store: TokenStore
    apps: list[Starlette] = dataclasses.field(default_factory=list)
    clients: list[httpx.AsyncClient] = dataclasses.field(default_factory=list)
    catalogues: list[Catalogue] = dataclasses.field(default_factory=list)

    def app(self, **overrides: Any) -> Starlette:
        app = create_app(dataclasses.replace(self.settings, **overrides), migrate=False)  # the fixture migrated
        self.apps.append(app)
        return app

    def client(self, app: Starlette | None = None, peer: str = OUTSIDE,
               base_url: str = "http://testserver") -> httpx.AsyncClient:
        app = app or (self.apps[0] if self.apps else self.app())
        transport = httpx.ASGITransport(app=app, client=(peer, 5000))
        c = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.clients.append(c)
        return c

    def token(self, tier: str = "reading-room", collections: tuple[str, ...] = (), days: float = 1,
              holder: str = "Partner archive") -> str:
        return self.store.issue(tier, holder, days, collections)[0]

    def replica(self) -> Catalogue:
        """Another Catalogue on the same database: another replica, or an admin's process."""
        other = Catalogue(self.settings.database_url)
        self.catalogues.append(other)
        return other


async def make_world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes,
                     hidden: tuple[str, ...] = ("staff",)) -> AsyncIterator[World]:
    """The catalogue of COLLECTIONS with its files, the settings around it; apps and clients closed after."""
    images = tmp_path / "images"
    with catalogue.session() as session:
        for coll_id, (coll_tier, docs) in COLLECTIONS.items():
            coll = Collection(id=coll_id, label=coll_id, tier=coll_tier)
            for pos, (doc_id, (doc_tier, pages)) in enumerate(docs.items()):
                doc = Document(ident=doc_id, label=doc_id, position=pos, tier=doc_tier)
                for page_pos, (page, page_tier) in enumerate(pages.items()):
                    path = images / coll_id / doc_id / f"{page}.tif"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(tiff_bytes)
                    doc.images.append(Image(ident=page, position=page_pos, label=page, width=WIDTH, height=HEIGHT,
                                            checksum="0" * 64, source_path=str(path), source_size=len(tiff_bytes),
                                            source_mtime=path.stat().st_mtime, tier=page_tier))
                coll.documents.append(doc)
            session.add(coll)
    (images / "vault").mkdir()
    (images / "vault" / "plan.tif").write_bytes(tiff_bytes)
    settings = config.Settings(
        data_dir=tmp_path / "data", images=images, demo=False, database=catalogue.url, secret_key=SECRET,
        networks=NETWORKS, trusted_proxies=PROXIES, path_tiers=("vault=staff",),
        viewer_origins=("https://viewer.example.org",), hidden_tiers=hidden,
    )
    w = World(settings, catalogue, TokenStore(catalogue, SECRET))
    yield w
    for c in w.clients:
        await c.aclose()
    for app in w.apps:
        app.state.runtime.shutdown()
        app.state.catalogue.engine.dispose()
    for other in w.catalogues:
        other.engine.dispose()


# -- the staff console's world: the staff network and an audit log besides ------------------------

BASE = "https://testserver"  # the session cookie is Secure: the test client sends it over https only
STAFF_NET = "198.51.100.7"


async def make_console_world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    """The world with staff material hidden, a staff network (198.51.100.0/24) and an audit log."""
    async for w in make_world(catalogue, tmp_path, tiff_bytes):
        w.settings = dataclasses.replace(w.settings, networks=(*w.settings.networks, "staff=198.51.100.0/24"),
                                         audit_log=str(tmp_path / "audit.jsonl"))
        yield w


def audit_lines(world: World) -> list[dict[str, Any]]:
    path = Path(world.settings.audit_log or "")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page
    return unescape(found.group(1))


async def sign_in(world: World, peer: str = OUTSIDE) -> tuple[httpx.AsyncClient, str]:
    """A client with a staff session (signed in with a staff token) and its CSRF value."""
    client = world.client(peer=peer, base_url=BASE)
    form = await client.get("/staff/login")
    assert form.status_code == 200
    r = await client.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "token": world.token("staff")})
    assert r.status_code == 303 and r.headers["location"] == "/staff/", r.text
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")][0].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie and "path=/staff" in cookie
    home = await client.get("/staff/")
    assert home.status_code == 200
    return client, hidden(home.text, "csrf")


def console_routes(world: World) -> list[tuple[str, str]]:
    app = world.apps[0] if world.apps else world.app()
    out = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/staff"):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    out.append((method, route.path))
    return out


async def with_roles(world: World, held: tuple[str, ...], app: Starlette | None = None,
                     name: str = "Staff member") -> tuple[httpx.AsyncClient, str]:
    """A client with a console session holding `held` (made as a sign-in makes it: a session row and its
    signed cookie, on the app's own console), and its CSRF value."""
    import time

    from iiif_server.console.session import OIDC

    app = app or (world.apps[0] if world.apps else world.app())
    console = app.state.console
    session = console.open_session(OIDC, None, name, int(time.time()) + 3600, held, name.lower().replace(" ", "."))
    client = world.client(app, base_url=BASE)
    client.headers["Cookie"] = f"{COOKIE}={console.sessions.serializer.dumps(session.payload())}"
    return client, session.csrf
