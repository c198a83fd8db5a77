"""The `/` overview and the viewer pages: every collection that is not hidden, the same for every requester
(public, shareable), thumbnails of public collections only, sizes, IIIF links, the search box, paging, and
Mirador from the configured URL.

Through the ASGI app on SQLite and PostgreSQL, with the staff console's world (tests/worlds.py; staff tier hidden).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from bulk import fill
from sqlalchemy import event, select
from worlds import READING_ROOM_V4, World, bearer

from iiif_server import config
from iiif_server.db.models import Collection


@pytest.fixture
def world(console_world: World) -> World:
    """The staff console's world (tests/worlds.py): staff hidden, a staff network, an audit log."""
    return console_world


def counted(world: World) -> None:
    """The kept counts, as ingest keeps them (the shared fixture adds rows without them)."""
    with world.catalogue.session() as session:
        for coll in session.scalars(select(Collection)):
            coll.document_count = len(coll.documents)
            coll.image_count = sum(len(d.images) for d in coll.documents)


def shown(html: str) -> list[str]:
    return re.findall(r'<li class="card [a-z]+" id="collection-([^"]+)">', html)


def card_of(html: str, cid: str) -> str:
    found = re.search(rf'<li class="card [a-z]+" id="collection-{cid}">.*?</li>', html, re.S)
    assert found, html
    return found.group(0)


async def test_a_visitor_sees_every_collection_that_is_not_hidden_with_thumbnail_size_and_links(
        world: World) -> None:
    counted(world)
    c = world.client()
    r = await c.get("/")
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"
    assert shown(r.text) == ["diaries", "letters", "maps"]
    for hidden in ("personnel", "staff", "vault"):
        assert hidden not in r.text, hidden
    card = card_of(r.text, "maps")
    assert "2 documents, 3 pages" in card
    assert 'href="/view/maps"' in card and 'href="/iiif/presentation/maps/collection"' in card
    assert 'href="/iiif/presentation/maps/manifest"' in card
    thumb = re.search(r'<img src="([^"]+)"', card).group(1)
    assert thumb == "/iiif/3/maps%2Fd1%2Fp1/full/!240,240/0/default.jpg"
    image = await c.get(thumb)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    # the search box submits to the Content Search over the collections
    assert re.search(r'<form method="get" action="/iiif/search"[^>]*><input type="search" name="q"', r.text)
    # documents are never listed here
    assert "maps/d2" not in r.text and "maps%2Fd2" not in r.text
    # a reading-room collection: described, where to consult it, nothing of what it holds
    letters = card_of(r.text, "letters")
    assert "<img" not in letters and "/view/letters" not in letters and "letters%2F" not in letters
    assert "Can be consulted in the reading room" in letters and 'href="/collections/letters"' in letters


async def test_every_requester_gets_the_same_overview(world: World) -> None:
    """What differs by clearance is on the collection pages: `/` is public, the same for all."""
    visitor = (await world.client().get("/")).text
    reader = await world.client().get("/", headers=bearer(world.token("reading-room", collections=("letters",))))
    room = await world.client(peer=READING_ROOM_V4).get("/")
    staff = await world.client().get("/", headers=bearer(world.token("staff")))
    for r in (reader, room, staff):
        assert r.text == visitor and r.headers["cache-control"] == "public, max-age=60"


async def test_no_thumbnail_where_the_first_page_is_more_restricted(world: World) -> None:
    world.catalogue.set_tier("maps/d1/p1", "reading-room")
    r = await world.client().get("/")
    card = card_of(r.text, "maps")
    assert "<img" not in card and "maps%2Fd1%2Fp1" not in card


async def test_collections_are_paged_and_a_huge_one_costs_index_look_ups(world: World) -> None:
    with world.catalogue.session() as session:
        for n in range(100):
            session.add(Collection(id=f"z{n:03d}", label=f"Z {n}", tier="public"))
    fill(world.catalogue, "big", 200_000, 1)
    c = world.client()
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lower())

    app = world.apps[0]
    event.listen(app.state.catalogue.engine, "before_cursor_execute", seen)
    try:
        first = await c.get("/")
    finally:
        event.remove(app.state.catalogue.engine, "before_cursor_execute", seen)
    ids = shown(first.text)
    assert ids[:4] == ["big", "diaries", "letters", "maps"] and len(ids) == 48
    big = card_of(first.text, "big")
    assert "200000 documents, 200000 pages" in big and "big%2Fdoc0%2F" in big
    assert 'href="/iiif/presentation/big/manifest"' not in big  # too large for one manifest
    assert not [s for s in statements if "count(" in s], statements
    more = re.search(r'rel="next" href="(/\?after=[^"]+)"', first.text).group(1)
    second = await c.get(more)
    assert shown(second.text) == [f"z{n:03d}" for n in range(44, 92)]
    third = await c.get(re.search(r'rel="next" href="(/\?after=[^"]+)"', second.text).group(1))
    assert shown(third.text) == [f"z{n:03d}" for n in range(92, 100)] and 'rel="next"' not in third.text


async def test_the_viewer_page_loads_mirador_from_the_configured_url(world: World) -> None:
    c = world.client()
    page = await c.get("/view/maps")
    assert page.status_code == 200 and page.headers["cache-control"].startswith("private")  # d2 is reading-room
    assert f'<script src="{config.DEFAULT_VIEWER_URL}"></script>' in page.text
    assert 'data-manifest="http://testserver/iiif/presentation/maps/d1/manifest"' in page.text
    assert 'data-collection="http://testserver/iiif/presentation/maps/collection"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' https://cdn.jsdelivr.net;" in csp
    script = await c.get("/view.js")
    assert script.status_code == 200 and "Mirador.viewer" in script.text
    own = world.client(world.app(viewer_url="/node_modules/mirador/dist/mirador.min.js"))
    local = await own.get("/view/maps")
    assert '<script src="/node_modules/mirador/dist/mirador.min.js"></script>' in local.text
    assert "script-src 'self' ;" in local.headers["content-security-policy"]
    # a hidden collection is unknown to those without clearance; a collection that is not there, too
    assert (await c.get("/view/personnel")).status_code == 404
    assert (await c.get("/view/nowhere")).status_code == 404
    assert (await c.get("/view/personnel", headers=bearer(world.token("staff")))).status_code == 200
    # a reading-room collection: its page, which says where to consult it
    closed = await c.get("/view/letters")
    assert (closed.status_code, closed.headers["location"]) == (303, "http://testserver/collections/letters")
    assert (await world.client(peer=READING_ROOM_V4).get("/view/letters")).status_code == 200


def test_viewer_url_is_a_setting_with_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load().viewer_url == config.DEFAULT_VIEWER_URL
    monkeypatch.setenv("IIIF_SERVER_VIEWER_URL", "https://viewer.example.org/mirador.min.js")
    assert config.load().viewer_url == "https://viewer.example.org/mirador.min.js"
    assert config.load({"viewer_url": "/mirador.js"}).viewer_url == "/mirador.js"
