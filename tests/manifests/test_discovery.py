"""Change Discovery pages by activity id range, and set-tier by set-based SQL, on SQLite and PostgreSQL.

Activities are inserted by bulk SQL (thousands, not the archive's 1.5 M: bench/ measures that size).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import WHOLE_MANIFEST_PAGES, Activity, Collection, Document, now
from iiif_server.manifests import discovery
from iiif_server.web.app import create_app

BASE = "http://testserver"
STREAM = "/iiif/discovery/activity/all-changes"


def page_path(n: int) -> str:
    return f"/iiif/discovery/activity/page/{n}"


def tier_of(i: int) -> str:
    """Mostly public; every fourth restricted, and ids 2001-3500 all restricted (an empty page)."""
    if 2000 < i <= 3500:
        return "staff"
    return "reading-room" if i % 4 == 3 else "public"


def add_activities(cat: Catalogue, start: int, count: int) -> None:
    """Activities numbered start..start+count-1 (their number in the document ident), by bulk SQL."""
    rows = [{"type": "Update", "object_type": "Manifest", "collection_id": "big", "document_ident": f"d{i}",
             "tier": tier_of(i), "end_time": now()} for i in range(start, start + count)]
    with cat.session() as session:
        cat.lock_activities(session)
        session.execute(insert(Activity), rows)
        cat.count_public(session, sum(1 for r in rows if r["tier"] == "public"))


def public_numbers(cat: Catalogue) -> list[int]:
    with cat.sessions() as session:
        idents = session.scalars(select(Activity.document_ident).where(Activity.tier == "public")
                                 .order_by(Activity.id)).all()
    return [int(d[1:]) for d in idents]


def number(item: dict) -> int:  # type: ignore[type-arg]
    return int(item["object"]["id"].removesuffix("/manifest").rsplit("/d", 1)[1])


def make_client(cat: Catalogue, tmp_path: Path) -> httpx.AsyncClient:
    settings = config.Settings(database=cat.url, data_dir=tmp_path / "data", images=tmp_path / "images", demo=False)
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture
async def client(catalogue: Catalogue, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    add_activities(catalogue, 1, 12_345)
    async with make_client(catalogue, tmp_path) as c:
        yield c


async def walk(client: httpx.AsyncClient, between: object = None) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    """Every page from first to the end by `next`; `between(page_number)` runs before each step to the next."""
    stream = (await client.get(STREAM)).json()
    pages, url = [], stream["first"]["id"]
    while url:
        response = await client.get(url.removeprefix(BASE))
        assert response.status_code == 200, url
        pages.append(response.json())
        url = pages[-1].get("next", {}).get("id")
        if url and callable(between):
            between(len(pages) - 1)
    return pages, [item for page in pages for item in page["orderedItems"]]


async def test_pages_hold_every_public_activity_once_oldest_first(catalogue: Catalogue,
                                                                  client: httpx.AsyncClient) -> None:
    stream = (await client.get(STREAM)).json()
    expected = public_numbers(catalogue)
    assert stream["totalItems"] == len(expected)  # the kept counter is the real count
    assert stream["last"]["id"] == f"{BASE}{page_path(12)}"  # ids 12001-12345
    pages, items = await walk(client)
    assert [number(i) for i in items] == expected
    assert all(tier_of(number(i)) == "public" for i in items)
    assert [p["id"] for p in pages] == [f"{BASE}{page_path(n)}" for n in range(13)]
    assert [p.get("prev", {}).get("id") for p in pages] == [None] + [p["id"] for p in pages[:-1]]
    assert all(len(p["orderedItems"]) <= discovery.PAGE_SIZE for p in pages)
    # page 2 (ids 2001-3000) went wholly to restricted activities: empty, but in the chain
    assert pages[2]["orderedItems"] == [] and pages[2]["next"]["id"] == pages[3]["id"]
    assert all("startIndex" not in p for p in pages)
    times = [i["endTime"] for i in items]
    assert times == sorted(times)


async def test_every_public_activity_is_seen_once_while_others_arrive_during_the_walk(
    catalogue: Catalogue, client: httpx.AsyncClient
) -> None:
    writer = Catalogue(catalogue.url)  # another process records while the harvester walks
    arrived = [12_346]

    def more(page: int) -> None:
        if page % 3 == 0:
            add_activities(writer, arrived[0], 700)
            arrived[0] += 700

    try:
        _, items = await walk(client, more)
    finally:
        writer.engine.dispose()
    assert arrived[0] > 12_346 + 700
    seen = [number(i) for i in items]
    assert seen == public_numbers(catalogue)  # all of them, those added while walking included
    assert len(seen) == len(set(seen))


async def test_a_complete_page_never_changes_and_is_cached_for_long(
    catalogue: Catalogue, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    complete = await client.get(page_path(11))
    assert "immutable" in complete.headers["cache-control"]
    assert "public" in complete.headers["cache-control"]
    open_page = await client.get(page_path(12))
    assert open_page.headers["cache-control"] == f"public, max-age={discovery.OPEN_MAX_AGE}"
    assert (await client.get(STREAM)).headers["cache-control"] == f"public, max-age={discovery.OPEN_MAX_AGE}"
    add_activities(catalogue, 12_346, 1000)  # page 12 fills up, page 13 opens
    again = await client.get(page_path(11))
    assert again.content == complete.content and again.headers["etag"] == complete.headers["etag"]
    assert (await client.get(page_path(11), headers={"If-None-Match": complete.headers["etag"]})).status_code == 304
    closed = await client.get(page_path(12))
    assert closed.content != open_page.content and "immutable" in closed.headers["cache-control"]
    assert closed.json()["next"]["id"] == f"{BASE}{page_path(13)}"
    opened = open_page.json()["orderedItems"]
    assert closed.json()["orderedItems"][:len(opened)] == opened  # it only grew at its end
    async with make_client(catalogue, tmp_path) as fresh:  # another replica, nothing cached: same bytes
        for n, earlier in ((11, complete), (12, closed)):
            response = await fresh.get(page_path(n))
            assert response.content == earlier.content and response.headers["etag"] == earlier.headers["etag"]


async def test_pages_beyond_the_last_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get(page_path(12))).status_code == 200
    for n in (13, 14, 10**9):
        assert (await client.get(page_path(n))).status_code == 404


async def test_an_empty_catalogue_has_one_empty_page(catalogue: Catalogue, tmp_path: Path) -> None:
    async with make_client(catalogue, tmp_path) as c:
        stream = (await c.get(STREAM)).json()
        assert stream["totalItems"] == 0 and stream["first"] == stream["last"]
        page = (await c.get(page_path(0))).json()
        assert page["orderedItems"] == [] and "next" not in page and "prev" not in page
        assert (await c.get(page_path(1))).status_code == 404


# -- set-tier of a whole collection -------------------------------------------------------------


def add_documents(cat: Catalogue, cid: str, tier: str, count: int) -> None:
    """`count` documents by bulk SQL, every seventh with a tier of its own, positions out of ident order."""
    with cat.session() as session:
        session.add(Collection(id=cid, label=cid, tier=tier, metadata_pairs=[]))
        session.flush()
        session.execute(insert(Document), [
            {"collection_id": cid, "ident": f"doc{i}", "label": f"doc{i}", "position": (i * 7919) % count,
             "tier": "staff" if i % 7 == 0 else None, "metadata_pairs": []} for i in range(count)])


def old_rule(cat: Catalogue, cid: str, tier: str) -> None:
    """The per-document ORM behaviour set-tier had before: the reference to compare with."""
    with cat.session() as session:
        coll = session.get(Collection, cid)
        old = coll.tier
        coll.tier = tier
        cat.record_tier_change(session, "Collection", cid, None, old, tier)
        if 0 < coll.image_count <= WHOLE_MANIFEST_PAGES:  # a whole-collection manifest only where one exists
            cat.record_tier_change(session, "Manifest", cid, None, old, tier)
        for doc in coll.documents:
            if doc.tier is None:
                cat.record_tier_change(session, "Manifest", cid, doc.ident, old, tier)
        cat.touch(session, cid)


def recorded(cat: Catalogue, cid: str) -> list[tuple[str, str, str | None, str]]:
    with cat.sessions() as session:
        rows = session.execute(select(Activity.type, Activity.object_type, Activity.document_ident, Activity.tier)
                               .where(Activity.collection_id == cid).order_by(Activity.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def public_counter_is_the_count(cat: Catalogue) -> bool:
    total, _ = cat.activity_bounds()
    with cat.sessions() as session:
        return total == session.scalar(select(func.count()).where(Activity.tier == "public"))


@pytest.mark.parametrize("start, moves", [
    ("public", ["reading-room", "staff", "public", "public"]),
    ("staff", ["reading-room", "reading-room", "public"]),
])
def test_set_tier_records_what_the_per_document_rule_records(catalogue: Catalogue, start: str,
                                                              moves: list[str]) -> None:
    add_documents(catalogue, "new", start, 40)
    add_documents(catalogue, "old", start, 40)
    for tier in moves:
        catalogue.set_tier("new", tier)
        old_rule(catalogue, "old", tier)
        assert recorded(catalogue, "new") == recorded(catalogue, "old")
        assert public_counter_is_the_count(catalogue)
    assert len(recorded(catalogue, "new")) > 2 * 40


def test_set_tier_of_thousands_of_documents_follows_the_rule_in_document_order(catalogue: Catalogue) -> None:
    count = 5000
    add_documents(catalogue, "big", "public", count)
    rev = catalogue.revision("big")
    catalogue.set_tier("big", "reading-room")
    inheriting = sorted((i for i in range(count) if i % 7), key=lambda i: (i * 7919) % count)
    # (documents without pages: no whole-collection manifest exists, so none is announced)
    expected = [("Remove", "Collection", None, "public"), ("Update", "Collection", None, "reading-room")]
    for i in inheriting:
        expected += [("Remove", "Manifest", f"doc{i}", "public"), ("Update", "Manifest", f"doc{i}", "reading-room")]
    assert recorded(catalogue, "big") == expected
    assert public_counter_is_the_count(catalogue)
    assert catalogue.revision("big") == rev + 1
    assert catalogue.collection("big").tier == "reading-room"
    assert catalogue.document("big", "doc0").tier == "staff"  # its own tier stays
