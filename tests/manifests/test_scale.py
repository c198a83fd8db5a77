"""Presentation at the archive's size: large collections are trees of bounded Collections, built once
per change for all who ask at the same time, cached by bytes, compressed; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import httpx
import jsonschema
import pytest
from bulk import fill
from support import presentation_schema

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue, DocumentEntry, PageRow
from iiif_server.db.models import Collection, Image
from iiif_server.db.models import Document as DocumentRow
from iiif_server.manifests import routes
from iiif_server.manifests.cache import Document, DocumentCache
from iiif_server.manifests.presentation import Urls, manifest_ref, manifest_ref_model
from iiif_server.web.app import create_app

BASE = "http://testserver"
SECRET = "s" * 40
DOCUMENTS = 12_345  # 13 parts of 1000, the last one short
PAGES = 2


@pytest.fixture
async def big(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Catalogue, object]]:
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", database=database_url, demo=False,
                               secret_key=SECRET)
    (tmp_path / "images").mkdir()
    app = create_app(settings)
    cat = Catalogue(database_url)
    fill(cat, "registers", DOCUMENTS, PAGES, staff_every=1000)
    fill(cat, "small", 3, 1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client, cat, app
    cat.engine.dispose()
    app.state.catalogue.engine.dispose()


async def get_json(client: httpx.AsyncClient, url: str, **headers: str) -> dict:  # type: ignore[type-arg]
    r = await client.get(url, headers=headers)
    assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return r.json()


def path(url: str) -> str:
    return url.removeprefix(BASE)


async def test_a_large_collection_is_a_tree_of_parts_every_document_once_in_order_all_valid(big) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = big
    schema = presentation_schema()
    top = await get_json(client, "/iiif/presentation/collections")
    coll_url = next(i["id"] for i in top["items"] if i["id"].endswith("/registers/collection"))
    coll = await get_json(client, path(coll_url))
    jsonschema.validate(coll, schema)
    parts = coll["items"]
    assert [p["type"] for p in parts] == ["Collection"] * 13
    assert parts[0]["label"]["en"] == ["1–1000"]  # its last document, doc999, is staff-only: not named
    assert parts[-1]["label"]["en"] == ["12001–12345: Dossier 12000 … Dossier 12344"]
    seen: list[str] = []
    for part in parts:
        doc = await get_json(client, path(part["id"]))
        jsonschema.validate(doc, schema)
        assert doc["partOf"] == [{"id": coll_url, "type": "Collection"}]
        assert len(doc["items"]) <= routes.PART_SIZE
        assert all(item["type"] == "Manifest" and item["thumbnail"][0]["width"] > 0 for item in doc["items"])
        seen += [item["id"].split("/")[-2] for item in doc["items"]]
    public = [f"doc{d}" for d in range(DOCUMENTS) if d % 1000 != 999]
    assert seen == public  # each public document exactly once, in the collection's order
    assert len(json.dumps(coll)) < 100_000


async def test_parts_beyond_the_last_and_parts_of_small_collections_are_404(big) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = big
    for url in ("/iiif/presentation/registers/collection/0", "/iiif/presentation/registers/collection/14",
                "/iiif/presentation/small/collection/1", "/iiif/presentation/nowhere/collection/1"):
        assert (await client.get(url)).status_code == 404, url
    small = await get_json(client, "/iiif/presentation/small/collection")
    assert [i["type"] for i in small["items"]] == ["Manifest"] * 3


async def test_staff_documents_appear_in_parts_only_with_staff_clearance(big) -> None:  # type: ignore[no-untyped-def]
    client, cat, _ = big
    token = TokenStore(cat, SECRET).issue("staff", "archivist", 1)[0]
    anonymous = await client.get("/iiif/presentation/registers/collection/1")
    assert "doc999" not in anonymous.text
    # what it leaves out depends on who asks: never in a shared cache; a part with nothing hidden is public
    assert anonymous.headers["cache-control"].startswith("private")
    last = await client.get("/iiif/presentation/registers/collection/13")
    assert last.headers["cache-control"].startswith("public")
    staff = await get_json(client, "/iiif/presentation/registers/collection/1", authorization=f"Bearer {token}")
    assert staff["items"][-1]["id"].endswith("/doc999/manifest")
    assert staff["label"]["en"] == ["Collection registers (1–1000: Dossier 0 … Dossier 999)"]
    r = await client.get("/iiif/presentation/registers/collection", headers={"authorization": f"Bearer {token}"})
    assert r.headers["cache-control"].startswith("private")  # what is named depends on clearance


async def test_the_whole_collection_manifest_of_a_large_collection_is_a_clear_404(big) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = big
    r = await client.get("/iiif/presentation/registers/manifest")
    assert r.status_code == 404
    assert "24690 pages" in r.text and f"{BASE}/iiif/presentation/registers/collection" in r.text
    small = await get_json(client, "/iiif/presentation/small/manifest")
    assert len(small["items"]) == 3 and len(small["structures"]) == 3


async def test_concurrent_cold_requests_share_one_build(big, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    client, cat, app = big
    calls = []
    real = Catalogue.entries

    def counted(self: Catalogue, *args: object) -> list[DocumentEntry]:
        calls.append(args)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Catalogue, "entries", counted)
    responses = await asyncio.gather(*(client.get("/iiif/presentation/registers/collection/7") for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(calls) == 1
    await client.get("/iiif/presentation/registers/collection/7")
    assert len(calls) == 1  # cached


async def test_documents_are_compressed_when_asked_and_images_never(big) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = big
    url = "/iiif/presentation/registers/collection/2"
    plain = await client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        r = await client.get(url, headers={"accept-encoding": encoding})
        assert r.headers["content-encoding"] == encoding
        assert "Accept-Encoding" in r.headers["vary"]
        assert len(r.headers["content-length"]) and int(r.headers["content-length"]) < len(plain.content) / 4
        assert r.headers["etag"] != plain.headers["etag"]
        # httpx decodes for us; check the raw bytes too
        raw = await client.send(client.build_request("GET", url, headers={"accept-encoding": encoding}), stream=True)
        body = b"".join([chunk async for chunk in raw.aiter_raw()])
        assert decode(body) == plain.content
    refused = await client.get(url, headers={"accept-encoding": "gzip;q=0, br;q=0"})
    assert "content-encoding" not in refused.headers


def test_the_document_cache_is_bounded_by_bytes_and_drops_superseded_revisions() -> None:
    cache = DocumentCache(400_000)
    body = json.dumps({"items": [{"id": f"http://x/{n}"} for n in range(2000)]}).encode()
    for n in range(50):
        cache.put(("doc", n), 1, Document.build(body, False))
        assert cache.size <= cache.max_bytes
    assert 0 < len(cache) < 50
    cache.put(("doc", 49), 2, Document.build(body + b" ", False))
    assert cache.get(("doc", 49), 1) is None  # the old revision is gone, not kept beside the new one
    assert cache.get(("doc", 49), 2) is not None
    assert sum(1 for key in cache._items if key == ("doc", 49)) == 1
    huge = Document.build(bytes(range(256)) * 600, False)  # over a quarter of the bound
    cache.put(("huge",), 1, huge)
    assert cache.get(("huge",), 1) is None and cache.size <= cache.max_bytes


def test_hand_built_manifest_entries_equal_the_prezi3_models() -> None:
    urls = Urls(BASE)
    page = PageRow("Dossier Lévy", "p1", "1", 2400, 3000, None)
    for entry in (DocumentEntry("Dossier Lévy", "Dossier Lévy 1942", None, 0, page),
                  DocumentEntry("d2", "", "staff", 1, None)):
        assert manifest_ref(urls, "family", entry, "nl") == manifest_ref_model(urls, "family", entry, "nl")


def test_ingest_into_a_large_collection_reads_only_its_own_documents_and_keeps_natural_order(
    database_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import event, select
    from support import quadrants

    from iiif_server.ingest.run import Ingest

    cat = Catalogue(database_url)
    cat.upgrade()
    fill(cat, "registers", 5000, 2)
    src = tmp_path / "src"
    for name in ("doc2500a", "doc9999", "zz-last"):  # between two others, and twice at the end
        (src / name).mkdir(parents=True)
        quadrants(64, 48).pngsave(str(src / name / "p1.png"))
    loaded = {"documents": 0, "images": 0}

    def count_document(*args: object) -> None:
        loaded["documents"] += 1

    def count_image(*args: object) -> None:
        loaded["images"] += 1

    event.listen(DocumentRow, "load", count_document)
    event.listen(Image, "load", count_image)
    try:
        report = Ingest(cat, tmp_path / "images", "registers", workers=1).run(src)
    finally:
        event.remove(DocumentRow, "load", count_document)
        event.remove(Image, "load", count_image)
    assert report.failed == [] and report.converted == 3
    assert loaded["documents"] <= 10 and loaded["images"] <= 10, loaded  # not the 5000 documents
    with cat.sessions() as s:
        order = s.execute(select(DocumentRow.ident, DocumentRow.position).where(
            DocumentRow.collection_id == "registers").order_by(DocumentRow.position)).all()
        coll = s.get(Collection, "registers")
    assert [p for _, p in order] == list(range(5003))  # dense
    idents = [i for i, _ in order]
    assert idents[2500:2503] == ["doc2500", "doc2500a", "doc2501"]
    assert idents[-3:] == ["doc4999", "doc9999", "zz-last"]
    assert (coll.document_count, coll.image_count) == (5003, 10003)
    cat.engine.dispose()
