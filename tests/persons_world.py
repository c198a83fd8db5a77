"""The world of the people tests (not a test module): transport lists with name indexes, portraits, at several
tiers, the archive's list of people imported from a CSV; an app and clients from outside, the reading room
and the staff network. `make_people` makes it; tests/web, tests/manifests and tests/console use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.ingest.persons import import_persons
from iiif_server.search.importer import import_text
from iiif_server.search.store import TextStore
from iiif_server.web.app import create_app

SECRET = "a-people-test-signing-key-long-enough-0123456789"
OUTSIDE = "203.0.113.7"
READING_ROOM = "192.0.2.5"
STAFF_NET = "198.51.100.7"
NETWORKS = ("reading-room=192.0.2.0/24", "staff=198.51.100.0/24")
SIZE = (1600, 1200)  # every page
# collection: (tier, {document: {page: tier}}, metadata of its documents)
COLLECTIONS: dict[str, tuple[str, dict[str, dict[str, str | None]], list[list[str]]]] = {
    "lists": ("public", {"list-20": {"p1": None, "p2": None, "p3": "reading-room"}}, [["Transport", "XX"]]),
    "lists-rr": ("reading-room", {"list-9": {"p1": None}}, [["Transport", "IX"]]),
    "portraits": ("public", {"levy-abraham": {"p1": None}, "goldsztajn-chaja": {"p1": None},
                             "cohen-sara": {"p1": None}}, []),
    "portraits-rr": ("reading-room", {"lewin-moszek": {"p1": None}}, []),
    "personnel": ("staff", {"kahn-ruth": {"p1": None}}, []),
    "letters": ("public", {"letter-1": {"p1": None}}, []),
}
LABELS = {"levy-abraham": "Portrait of Abraham Lévy", "goldsztajn-chaja": "Chaja Goldsztajn, born 1930",
          "cohen-sara": "Sara Cohen", "lewin-moszek": "Moszek Lewin", "kahn-ruth": "Ruth Kahn",
          "list-20": "List of transport XX", "list-9": "List of transport IX", "letter-1": "A letter"}
# the name index of the lists: document, page, text, x, y, w, h
NAMES = [
    ("list-20", "p1", "LEVY Abraham 12.03.1921", 200, 300, 420, 60),
    ("list-20", "p1", "Goldsztain Chaja", 200, 420, 480, 60),
    ("list-20", "p1", "Cohen Sara", 200, 540, 460, 60),
    ("list-20", "p2", "Lewin Moszek", 200, 300, 420, 60),
    ("list-20", "p3", "Kahn Ruth", 200, 300, 420, 60),  # a reading-room page of the public list
]
LETTER = ("letter-1", "p1", "Abraham Lévy est parti", 100, 100, 600, 50)
PEOPLE_CSV = """id;Surname;Given names;Birth date;Birth place;Nationality;Transport;Number;Portrait;List page;Line box
1;Lévy;Abraham;12.03.1921;Warszawa;polonaise;XX;12;portraits/levy-abraham;lists/list-20/p1;200,300,420,60
2;Goldsztajn;Chaja;1930;Łódź;;XX;13;;;
3;Lewin;Moszek;1899-05;Kraków;;XX;14;portraits-rr/lewin-moszek/p1;lists/list-20/p2;200,300,420,60
4;Cohen;Sara;1925;Antwerpen;belge;XX;15;;;
5;Cohen;Sara;1901;Anvers;;XXI;3;;;
6;Kahn;Ruth;1911-07-02;Berlin;;XX;16;personnel/kahn-ruth;lists/list-20/p3;200,300,420,60
"""


@dataclasses.dataclass
class People:
    settings: config.Settings
    catalogue: Catalogue
    store: TokenStore
    root: Path
    apps: list[Starlette] = dataclasses.field(default_factory=list)
    clients: list[httpx.AsyncClient] = dataclasses.field(default_factory=list)

    def app(self, **overrides: Any) -> Starlette:
        app = create_app(dataclasses.replace(self.settings, **overrides), migrate=False)
        self.apps.append(app)
        return app

    def client(self, peer: str = OUTSIDE, app: Starlette | None = None,
               base_url: str = "http://testserver") -> httpx.AsyncClient:
        app = app or (self.apps[0] if self.apps else self.app())
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 5000)), base_url=base_url)
        self.clients.append(c)
        return c

    def token(self, tier: str) -> str:
        return self.store.issue(tier, "people tests", 1, ())[0]

    def import_people(self, text: str, name: str = "people.csv") -> Any:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return import_persons(self.catalogue, path)


def add_collections(catalogue: Catalogue) -> None:
    with catalogue.session() as session:
        for cid, (tier, documents, metadata) in COLLECTIONS.items():
            coll = Collection(id=cid, label=cid.replace("-", " ").title(), tier=tier, metadata_pairs=[])
            for pos, (did, pages) in enumerate(documents.items()):
                doc = Document(ident=did, label=LABELS[did], position=pos, metadata_pairs=metadata)
                for n, (page, page_tier) in enumerate(pages.items()):
                    doc.images.append(Image(ident=page, position=n, label=f"page {n + 1}", width=SIZE[0],
                                            height=SIZE[1], checksum="0" * 64, source_path="-", source_size=1,
                                            source_mtime=0, tier=page_tier))
                coll.documents.append(doc)
            session.add(coll)


def add_text(catalogue: Catalogue, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for cid, rows in (("lists", NAMES), ("letters", [LETTER])):
        path = folder / f"{cid}.csv"
        path.write_text("document,page,text,x,y,w,h,kind\n" + "".join(
            f'{d},{p},"{t}",{x},{y},{w},{h},name\n' for d, p, t, x, y, w, h in rows), encoding="utf-8")
        report = import_text(TextStore(catalogue), path, cid)
        assert report.errors == [], report.errors


async def make_people(catalogue: Catalogue, tmp_path: Path, people: bool = True) -> AsyncIterator[People]:
    """The world; `people`: with PEOPLE_CSV imported (its three confirmed list lines and portraits)."""
    add_collections(catalogue)
    add_text(catalogue, tmp_path / "text")
    settings = config.Settings(data_dir=tmp_path / "data", images=tmp_path / "images", demo=False,
                               database=catalogue.url, secret_key=SECRET, networks=NETWORKS,
                               audit_log=str(tmp_path / "audit.jsonl"), provider="Kazerne Dossin")
    world = People(settings, catalogue, TokenStore(catalogue, SECRET), tmp_path)
    if people:
        report = world.import_people(PEOPLE_CSV)
        assert report.errors == [] and report.imported is not None and report.imported.warnings == [], report
    yield world
    for c in world.clients:
        await c.aclose()
    for app in world.apps:
        app.state.runtime.shutdown()
        app.state.catalogue.engine.dispose()


STAFF_BASE = "https://testserver"  # the console's session cookie is Secure: sent over https only


async def staff_client(world: People) -> tuple[httpx.AsyncClient, str]:
    """A client with a staff console session (a staff token) and its CSRF value."""
    import re
    from html import unescape

    client = world.client(base_url=STAFF_BASE)
    form = await client.get("/staff/login")
    csrf = unescape(re.search(r'name="csrf" value="([^"]*)"', form.text).group(1))  # type: ignore[union-attr]
    r = await client.post("/staff/login", data={"csrf": csrf, "token": world.token("staff")})
    assert r.status_code == 303, r.text
    home = await client.get("/staff/")
    return client, unescape(re.search(r'name="csrf" value="([^"]*)"', home.text).group(1))  # type: ignore[union-attr]


def audit_lines(world: People) -> list[dict[str, Any]]:
    import json

    path = Path(world.settings.audit_log or "")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
