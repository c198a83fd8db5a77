"""A part of a large collection that holds only documents hidden from the requester is neither listed nor served:
a staff-only document alone at the end makes no empty part that visitors see (issue 17, finding 14)."""

from __future__ import annotations

from pathlib import Path

import httpx
from bulk import fill
from sqlalchemy import update

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Document
from iiif_server.web.app import create_app

BASE = "http://testserver"
SECRET = "s" * 40


async def test_a_part_of_hidden_documents_only_is_not_there_for_visitors(catalogue: Catalogue, tmp_path: Path) -> None:
    fill(catalogue, "registers", 1001, 1)  # part 2 holds one document: doc1000
    fill(catalogue, "all-hidden", 2001, 1)  # parts 2 and 3 hidden, part 1 not
    catalogue.set_tier("registers/doc1000", "staff")
    with catalogue.session() as session:  # as 1001 set-tier runs would leave it, in one statement
        session.execute(update(Document).where(Document.collection_id == "all-hidden", Document.position >= 1000)
                        .values(tier="staff"))
    (tmp_path / "images").mkdir()
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", database=catalogue.url, demo=False,
                               secret_key=SECRET)
    app = create_app(settings, migrate=False)
    staff = {"Authorization": f"Bearer {TokenStore(catalogue, SECRET).issue('staff', 'archivist', 1)[0]}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for cid, parts in (("registers", 2), ("all-hidden", 3)):
            url = f"/iiif/presentation/{cid}/collection"
            seen = (await client.get(url)).json()
            assert [i["id"].removeprefix(BASE) for i in seen["items"]] == [f"{url}/1"]
            assert "doc1000" not in (await client.get(url)).text
            for n in range(2, parts + 1):
                r = await client.get(f"{url}/{n}")
                assert r.status_code == 404 and "doc1000" not in r.text, (cid, n)
            listed = (await client.get(url, headers=staff)).json()
            assert [i["id"].removeprefix(BASE) for i in listed["items"]] == [f"{url}/{n}" for n in range(1, parts + 1)]
            last = (await client.get(f"{url}/{parts}", headers=staff)).json()
            last_doc = 1000 if cid == "registers" else 2000
            assert last["items"][-1]["id"].endswith(f"/{cid}/doc{last_doc}/manifest")
    app.state.catalogue.engine.dispose()
