"""The harvester's view of the change stream: a harvester that follows Change Discovery 1.0's processing
algorithm (3.5.1-3.5.2: from the last page backwards, stopping at its previous crawl; Delete, or a Remove from
this stream, drops an object; Create, Update, or an Add to this stream, takes it) holds, after every crawl,
exactly the public material: through ingest, tier changes of collections and documents both ways, a tier
hidden from the public, and a withdrawal. Crawls follow the changes at once, within the same second."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from support import quadrants

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import WHOLE_MANIFEST_PAGES, effective_tier
from iiif_server.ingest.run import Ingest
from iiif_server.ingest.withdraw import withdraw
from iiif_server.manifests.presentation import Urls
from iiif_server.web.app import create_app

BASE = "http://testserver"
STREAM = f"{BASE}/iiif/discovery/activity/all-changes"
KNOWN = ("Manifest", "Collection")


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Harvester:
    """Change Discovery 1.0, 3.5: the collection algorithm and the page algorithm, as a harvester runs them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.index: set[str] = set()
        self.last_crawl: dt.datetime | None = None
        self.seen: list[dict[str, Any]] = []  # the activities processed, newest first

    async def get(self, url: str) -> dict[str, Any]:
        r = await self.client.get(url.removeprefix(BASE))
        assert r.status_code == 200, (url, r.status_code)
        return r.json()  # type: ignore[no-any-return]

    async def crawl(self) -> None:
        started = dt.datetime.now(dt.UTC)
        processed: set[str] = set()
        only_delete = False
        page_url: str | None = (await self.get(STREAM))["last"]["id"]
        while page_url:
            page = await self.get(page_url)
            for activity in reversed(page["orderedItems"]):
                if self.last_crawl is not None and when(activity["endTime"]) < self.last_crawl:
                    self.last_crawl = started
                    return
                if activity["type"] == "Refresh":
                    if self.last_crawl is None:
                        break
                    only_delete = True
                    continue
                target = activity["object"]
                if target["id"] in processed or target["type"] not in KNOWN:
                    continue
                kind = activity["type"]
                if kind == "Delete" or (kind == "Remove" and activity.get("origin", {}).get("id") == STREAM):
                    self.index.discard(target["id"])
                elif only_delete:
                    continue
                elif kind in ("Update", "Create") or (kind == "Add" and activity.get("target", {}).get("id") == STREAM):
                    self.index.add(target["id"])
                processed.add(target["id"])
                self.seen.append(activity)
            page_url = page.get("prev", {}).get("id")
        self.last_crawl = started


def public_now(catalogue: Catalogue) -> set[str]:
    """What the public may open now, from the catalogue: public collections, their whole manifests where one
    exists, and every document whose tier is public."""
    urls, out = Urls(BASE), set()
    for coll in catalogue.collections():
        if coll.tier == "public":
            out.add(urls.collection(coll.id))
            if 0 < coll.image_count <= WHOLE_MANIFEST_PAGES:
                out.add(urls.collection_manifest(coll.id))
        last = catalogue.last_position(coll.id)
        for entry in catalogue.entries(coll.id, 0, (last or 0) + 1):
            if effective_tier(entry.tier, coll.tier) == "public":
                out.add(urls.manifest(coll.id, entry.ident))
    return out


def masters(folder: Path, documents: dict[str, int]) -> Path:
    for doc, pages in documents.items():
        (folder / doc).mkdir(parents=True)
        for n in range(pages):
            quadrants(64, 48).pngsave(str(folder / doc / f"p{n + 1}.png"))
    return folder


async def test_a_harvester_holds_exactly_the_public_material_after_every_change(catalogue: Catalogue,
                                                                              tmp_path: Path) -> None:
    root = tmp_path / "images"
    opened = masters(tmp_path / "m1", {"a": 1, "b": 2, "c": 1})
    assert Ingest(catalogue, root, "open", workers=1).run(opened).failed == []
    assert Ingest(catalogue, root, "closed", workers=1, tier="reading-room").run(
        masters(tmp_path / "m2", {"x": 1, "y": 1})).failed == []
    settings = config.Settings(database=catalogue.url, data_dir=tmp_path / "data", images=root, demo=False)
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        harvester = Harvester(client)

        async def crawled() -> set[str]:
            await harvester.crawl()
            expected = public_now(catalogue)
            assert harvester.index == expected
            for url in expected:  # each answers to anyone
                assert (await client.get(url.removeprefix(BASE))).status_code == 200, url
            return expected

        first = await crawled()
        assert f"{BASE}/iiif/presentation/closed/x/manifest" not in first
        # a collection made public, a document made reading-room: at once, no pause
        catalogue.set_tier("closed", "public")
        catalogue.set_tier("open/b", "reading-room")
        harvester.seen.clear()
        second = await crawled()
        assert {f"{BASE}/iiif/presentation/closed/x/manifest", f"{BASE}/iiif/presentation/closed/collection"} <= second
        assert f"{BASE}/iiif/presentation/open/b/manifest" not in second
        kinds = {a["object"]["id"]: a for a in harvester.seen}
        added = kinds[f"{BASE}/iiif/presentation/closed/x/manifest"]
        assert (added["type"], added["target"]) == ("Add", {"id": STREAM, "type": "OrderedCollection"})
        removed = kinds[f"{BASE}/iiif/presentation/open/b/manifest"]
        assert (removed["type"], removed["origin"]) == ("Remove", {"id": STREAM, "type": "OrderedCollection"})
        # the removed document still answers, to the reading room (it was not deleted): a Remove, not a Delete
        assert (await client.get("/iiif/presentation/open/b/manifest")).status_code == 200
        # a collection moved into a hidden tier, and back for one of its documents
        catalogue.set_tier("open", "staff")
        catalogue.set_tier("open/c", "public")
        third = await crawled()
        assert third & {u for u in first if "/open/" in u} == {f"{BASE}/iiif/presentation/open/c/manifest"}
        # a withdrawal is a Delete
        withdraw(catalogue, root, "closed/y")
        harvester.seen.clear()
        await crawled()
        assert [a["type"] for a in harvester.seen if a["object"]["id"].endswith("/closed/y/manifest")] == ["Delete"]
        # a harvester new to the stream reads it whole and arrives at the same
        newcomer = Harvester(client)
        await newcomer.crawl()
        assert newcomer.index == public_now(catalogue)
        # every activity's end time is at or after its commit: the stream's order is its times' order
        items = []
        url: str | None = (await client.get(STREAM.removeprefix(BASE))).json()["first"]["id"]
        while url:
            page = (await client.get(url.removeprefix(BASE))).json()
            items += page["orderedItems"]
            url = page.get("next", {}).get("id")
        times = [when(i["endTime"]) for i in items]
        assert times == sorted(times)
    app.state.catalogue.engine.dispose()
