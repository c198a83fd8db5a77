"""Every object the activity stream names answers as announced: what it last created, updated or added answers 200
with that type, what was withdrawn 404; a whole-collection manifest over WHOLE_MANIFEST_PAGES pages (which answers 404)
is never announced, and each change to one that exists is (issue 17, finding 8)."""

from __future__ import annotations

from pathlib import Path

import httpx
from bulk import fill
from click.testing import CliRunner
from support import quadrants

from iiif_server import cli as cli_module
from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import WHOLE_MANIFEST_PAGES
from iiif_server.ingest.run import Ingest
from iiif_server.web.app import create_app

BASE = "http://testserver"
STREAM = "/iiif/discovery/activity/all-changes"


def remove(catalogue: Catalogue, root: Path, tmp_path: Path, target: str) -> None:
    result = CliRunner().invoke(cli_module.main, ["remove", target, "--yes", "--database", catalogue.url,
                                                  "--images", str(root), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output


async def walk(client: httpx.AsyncClient) -> list[dict]:  # type: ignore[type-arg]
    url = (await client.get(STREAM)).json()["first"]["id"]
    items = []
    while url:
        page = (await client.get(url.removeprefix(BASE))).json()
        items += page["orderedItems"]
        url = page.get("next", {}).get("id")
    return items


async def test_every_object_the_stream_names_answers_as_announced(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    for doc, pages in (("a", 2), ("b", 1), ("c", 3)):
        (src / doc).mkdir(parents=True)
        for n in range(pages):
            quadrants(80, 60).pngsave(str(src / doc / f"p{n + 1}.png"))
    assert Ingest(catalogue, root, "letters", workers=1).run(src).failed == []
    # a collection too large for a whole-collection manifest, moved out of public and back
    fill(catalogue, "big", documents=30, pages=WHOLE_MANIFEST_PAGES // 25)
    catalogue.set_tier("big", "reading-room")
    catalogue.set_tier("big", "public")
    catalogue.set_tier("letters/c", "staff")
    catalogue.set_tier("letters/c", "public")
    settings = config.Settings(database=catalogue.url, data_dir=tmp_path / "data", images=root, demo=False)
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        before = len(await walk(client))
        remove(catalogue, root, tmp_path, "letters/b")
        after_document = len(await walk(client))
        remove(catalogue, root, tmp_path, "letters/a/p1")
        items = await walk(client)
        latest: dict[str, dict] = {}  # type: ignore[type-arg]
        for item in items:
            latest[item["object"]["id"]] = item
        assert f"{BASE}/iiif/presentation/big/manifest" not in latest
        assert f"{BASE}/iiif/presentation/big/collection" in latest
        for ident, item in latest.items():
            r = await client.get(ident.removeprefix(BASE))
            if item["type"] in ("Create", "Update", "Add"):
                assert r.status_code == 200, (item, r.status_code)
                assert r.json()["type"] == item["object"]["type"]
            else:
                assert item["type"] == "Delete"
                assert r.status_code == 404, (item, r.status_code)
        # each withdrawal changed the whole-collection manifest of letters, and each says so after it
        whole = [i for i in items if i["object"]["id"] == f"{BASE}/iiif/presentation/letters/manifest"]
        numbers = [n for n, i in enumerate(items) if i["object"]["id"] == whole[0]["object"]["id"]]
        assert whole[-1]["type"] == "Update"
        assert any(before <= n < after_document for n in numbers) and numbers[-1] > after_document
        canvases = (await client.get("/iiif/presentation/letters/manifest")).json()["items"]
        services = [c["items"][0]["items"][0]["body"]["service"][0]["id"].rsplit("/", 1)[1] for c in canvases]
        assert services == ["letters%2Fa%2Fp2", "letters%2Fc%2Fp1", "letters%2Fc%2Fp2", "letters%2Fc%2Fp3"]
    app.state.catalogue.engine.dispose()
