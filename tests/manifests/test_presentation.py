"""Presentation 3.0 and Change Discovery 1.0 over HTTP, from an ingested catalogue, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import iiif_prezi3
import jsonschema
import pytest
import pyvips
from sqlalchemy import select
from support import presentation_schema, quadrants

from iiif_server import config
from iiif_server.db.catalogue import Catalogue, PageRow
from iiif_server.db.models import Collection, Document
from iiif_server.ingest.run import Ingest
from iiif_server.manifests import discovery
from iiif_server.manifests.presentation import Urls, canvas_dict, canvas_model
from iiif_server.web.app import create_app

BASE = "http://testserver"
LANGUAGE = "nl"
ATTRIBUTION = "Courtesy of the Example Archive"
PROVIDER = "Example Archive"
PROVIDER_HOMEPAGE = "https://archive.example.org/"
HOMEPAGE = "https://archive.example.org/browse/{collection}/{document}"
RIGHTS = "http://rightsstatements.org/vocab/InC/1.0/"
LETTER_SIZES = [(300, 200), (200, 300), (64, 48)]  # p1, p2, p10: natural order


def write_masters(src: Path) -> None:
    letter = src / "letter"
    letter.mkdir(parents=True)
    for name, (w, h) in zip(("p1", "p2", "p10"), LETTER_SIZES, strict=True):
        quadrants(w, h).pngsave(str(letter / f"{name}.png"))
    quadrants(500, 400).jpegsave(str(src / "photo.jpg"), Q=95)
    (src / "metadata.csv").write_text(
        "id,label,date,tier,summary,rights,Type\n"
        f"letter,A typed letter,1943-05-12,,Two pages and a postscript,{RIGHTS},Correspondence\n"
        "photo,A photograph,1938,,,,Photograph\n"
    )


def ingest(catalogue: Catalogue, root: Path, src: Path, collection: str = "family", **kwargs: object) -> None:
    csv = src / "metadata.csv"
    job = Ingest(catalogue, root, collection, label="Family archive", workers=2, **kwargs)  # type: ignore[arg-type]
    report = job.run(src, csv if csv.exists() else None)
    assert report.failed == []


@pytest.fixture
def archive(catalogue: Catalogue, tmp_path: Path) -> Path:
    """An ingested collection `family`: `letter` (3 pages) and `photo` (1 page); returns the image root."""
    src, root = tmp_path / "masters", tmp_path / "images"
    write_masters(src)
    ingest(catalogue, root, src)
    return root


@pytest.fixture
async def client(catalogue: Catalogue, archive: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = config.Settings(
        database=catalogue.url, data_dir=tmp_path / "data", images=archive, demo=False, language=LANGUAGE,
        attribution=ATTRIBUTION, provider=PROVIDER, provider_homepage=PROVIDER_HOMEPAGE, homepage=HOMEPAGE,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c
    app.state.catalogue.engine.dispose()


@pytest.fixture
def replica(catalogue: Catalogue) -> Catalogue:
    """A second Catalogue on the same database: another replica's (or the CLI's) view."""
    other = Catalogue(catalogue.url)
    yield other
    other.engine.dispose()


async def get_json(client: httpx.AsyncClient, url: str) -> dict:  # type: ignore[type-arg]
    response = await client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text)
    return response.json()


def valid(doc: dict) -> None:  # type: ignore[type-arg]
    """Valid against the official schema, and loads again in iiif-prezi3."""
    jsonschema.validate(doc, presentation_schema())
    model = iiif_prezi3.Manifest if doc["type"] == "Manifest" else iiif_prezi3.Collection
    model(**doc)


def canvas_ids(doc: dict) -> list[str]:  # type: ignore[type-arg]
    return [c["id"] for c in doc["items"]]


# -- Presentation 3.0 ----------------------------------------------------------------------


async def test_every_presentation_document_validates_against_the_schema_and_loads_in_prezi3(
    client: httpx.AsyncClient,
) -> None:
    top = await get_json(client, "/iiif/presentation/collections")
    valid(top)
    assert [(i["id"], i["type"]) for i in top["items"]] == [(f"{BASE}/iiif/presentation/family/collection",
                                                             "Collection")]
    collection = await get_json(client, "/iiif/presentation/family/collection")
    valid(collection)
    valid(await get_json(client, "/iiif/presentation/family/manifest"))
    assert [i["type"] for i in collection["items"]] == ["Manifest", "Manifest"]
    for item in collection["items"]:
        valid(await get_json(client, item["id"].removeprefix(BASE)))


async def test_collection_manifest_has_a_canvas_per_page_in_order_and_a_range_per_document(
    client: httpx.AsyncClient,
) -> None:
    doc = await get_json(client, "/iiif/presentation/family/manifest")
    canvas = f"{BASE}/iiif/presentation/family/{{}}/canvas/{{}}"
    expected = [canvas.format("letter", p) for p in ("p1", "p2", "p10")] + [canvas.format("photo", "photo")]
    assert canvas_ids(doc) == expected
    assert [(c["width"], c["height"]) for c in doc["items"]] == [*LETTER_SIZES, (500, 400)]
    ranges = doc["structures"]
    assert [r["type"] for r in ranges] == ["Range", "Range"]
    assert [r["label"] for r in ranges] == [{LANGUAGE: ["A typed letter"]}, {LANGUAGE: ["A photograph"]}]
    assert [[c["id"] for c in r["items"]] for r in ranges] == [expected[:3], expected[3:]]
    assert doc["partOf"] == [{"id": f"{BASE}/iiif/presentation/collections", "type": "Collection"}]


async def test_document_manifest_has_its_pages_as_canvases_with_labels_in_order(client: httpx.AsyncClient) -> None:
    doc = await get_json(client, "/iiif/presentation/family/letter/manifest")
    assert doc["id"] == f"{BASE}/iiif/presentation/family/letter/manifest"
    assert [c["id"].rsplit("/", 1)[1] for c in doc["items"]] == ["p1", "p2", "p10"]
    assert [c["label"] for c in doc["items"]] == [{LANGUAGE: [str(n)]} for n in (1, 2, 3)]
    assert "structures" not in doc


async def test_canvases_have_real_sizes_image_services_that_answer_and_thumbnails_of_the_stated_size(
    client: httpx.AsyncClient,
) -> None:
    doc = await get_json(client, "/iiif/presentation/family/manifest")
    for canvas in doc["items"]:
        annotation = canvas["items"][0]["items"][0]
        assert (annotation["motivation"], annotation["target"]) == ("painting", canvas["id"])
        body = annotation["body"]
        assert (body["width"], body["height"]) == (canvas["width"], canvas["height"])
        service = body["service"][0]
        assert (service["type"], service["profile"]) == ("ImageService3", "level2")
        info = await get_json(client, service["id"].removeprefix(BASE) + "/info.json")
        assert info["id"] == service["id"]
        assert (info["width"], info["height"]) == (canvas["width"], canvas["height"])
        [thumb] = canvas["thumbnail"]
        assert max(thumb["width"], thumb["height"]) <= 256
        response = await client.get(thumb["id"].removeprefix(BASE))
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        image = pyvips.Image.new_from_buffer(response.content, "")
        assert (image.width, image.height) == (thumb["width"], thumb["height"])


async def test_descriptive_properties_appear_as_configured_with_the_configured_language(
    client: httpx.AsyncClient,
) -> None:
    doc = await get_json(client, "/iiif/presentation/family/letter/manifest")
    assert doc["label"] == {LANGUAGE: ["A typed letter"]}
    assert doc["summary"] == {LANGUAGE: ["Two pages and a postscript"]}
    assert doc["metadata"] == [{"label": {LANGUAGE: ["Type"]}, "value": {LANGUAGE: ["Correspondence"]}}]
    assert doc["requiredStatement"]["value"] == {LANGUAGE: [ATTRIBUTION]}
    assert list(doc["requiredStatement"]["label"]) == [LANGUAGE]
    assert doc["rights"] == RIGHTS
    assert doc["navDate"] == "1943-05-12T00:00:00Z"
    [provider] = doc["provider"]
    assert (provider["type"], provider["label"]) == ("Agent", {LANGUAGE: [PROVIDER]})
    assert provider["homepage"][0]["id"] == PROVIDER_HOMEPAGE
    viewer, homepage = doc["homepage"]  # its page here (the viewer), then the configured website's
    assert (viewer["id"], viewer["format"]) == (f"{BASE}/view/family/letter", "text/html")
    assert (homepage["id"], homepage["format"]) == ("https://archive.example.org/browse/family/letter", "text/html")
    assert doc["seeAlso"] == [{"id": f"{BASE}/iiif/presentation/family/letter/dc.xml", "type": "Dataset",
                               "label": {LANGUAGE: ["A typed letter: Dublin Core"]}, "format": "application/xml",
                               "profile": "http://www.openarchives.org/OAI/2.0/oai_dc/"}]
    assert doc["partOf"] == [{"id": f"{BASE}/iiif/presentation/family/collection", "type": "Collection"}]
    photo = await get_json(client, "/iiif/presentation/family/photo/manifest")
    assert photo["navDate"] == "1938-01-01T00:00:00Z"
    assert "rights" not in photo and "summary" not in photo
    collection = await get_json(client, "/iiif/presentation/family/collection")
    assert collection["label"] == {LANGUAGE: ["Family archive"]}
    assert [i["label"] for i in collection["items"]] == [{LANGUAGE: ["A typed letter"]}, {LANGUAGE: ["A photograph"]}]
    assert collection["partOf"] == [{"id": f"{BASE}/iiif/presentation/collections", "type": "Collection"}]
    assert collection["requiredStatement"]["value"] == {LANGUAGE: [ATTRIBUTION]}
    top = await get_json(client, "/iiif/presentation/collections")
    assert top["label"] == {LANGUAGE: [f"Collections of {PROVIDER}"]}


def test_hand_built_canvases_equal_the_prezi3_models() -> None:
    urls = Urls("https://images.example.org")
    pages = [PageRow("letter", "p1", "1", 300, 200, None), PageRow("letter", "p10", "10", 6000, 8000, "staff"),
             PageRow("Gr\u00fc\u00dfe aus", "page 2", "Seite 2", 1, 1, None),
             PageRow("d", "x", "", 257, 3, None)]
    for page in pages:
        for language in ("en", "nl"):
            model = json.loads(canvas_model(urls, "family", page, language).jsonld())
            model.pop("@context", None)
            assert canvas_dict(urls, "family", page, language) == model
            placeholder = {"id": "https://images.example.org/iiif/placeholder.png", "type": "Image",
                           "format": "image/png", "width": 256, "height": 256}
            model = json.loads(canvas_model(urls, "family", page, language, placeholder).jsonld())
            model.pop("@context", None)
            assert canvas_dict(urls, "family", page, language, thumb=placeholder) == model


async def test_unknown_collection_or_document_is_404(client: httpx.AsyncClient) -> None:
    for url in ("/iiif/presentation/nowhere/collection", "/iiif/presentation/nowhere/manifest",
                "/iiif/presentation/nowhere/letter/manifest", "/iiif/presentation/family/nobody/manifest"):
        assert (await client.get(url)).status_code == 404, url


# -- caching -------------------------------------------------------------------------------------


DOCUMENT_URLS = ("/iiif/presentation/collections", "/iiif/presentation/family/collection",
                 "/iiif/presentation/family/manifest", "/iiif/presentation/family/letter/manifest")


async def test_documents_and_activity_pages_carry_an_etag_that_answers_304_while_unchanged(
    client: httpx.AsyncClient,
) -> None:
    for url in (*DOCUMENT_URLS, "/iiif/discovery/activity/all-changes", "/iiif/discovery/activity/page/0"):
        first = await client.get(url)
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = await client.get(url)
        assert again.headers["etag"] == etag and again.content == first.content
        cached = await client.get(url, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        assert (await client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})).status_code == 304
        assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200


async def test_jsonld_and_json_are_two_representations_with_their_own_etags(client: httpx.AsyncClient) -> None:
    url = "/iiif/presentation/family/letter/manifest"
    plain = await client.get(url)
    ld = await client.get(url, headers={"Accept": "application/ld+json"})
    assert plain.headers["content-type"] == "application/json"
    assert ld.headers["content-type"] == 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
    assert plain.content == ld.content and plain.headers["etag"] != ld.headers["etag"]
    stale = await client.get(url, headers={"Accept": "application/ld+json", "If-None-Match": plain.headers["etag"]})
    assert stale.status_code == 200


async def test_change_made_through_another_replica_changes_etag_and_content_on_the_next_request(
    client: httpx.AsyncClient, replica: Catalogue
) -> None:
    before = {url: await client.get(url) for url in DOCUMENT_URLS}
    with replica.session() as session:
        doc = session.scalar(select(Document).where(Document.collection_id == "family", Document.ident == "letter"))
        doc.label = "A typed letter, 1943"
        replica.touch(session, "family")
    for url in DOCUMENT_URLS[1:]:
        after = await client.get(url, headers={"If-None-Match": before[url].headers["etag"]})
        assert after.status_code == 200, url
        assert after.headers["etag"] != before[url].headers["etag"]
        assert "A typed letter, 1943" in after.text and "A typed letter, 1943" not in before[url].text
    # the top collection does not show document labels: same content, same ETag, still 304
    top = await client.get(DOCUMENT_URLS[0], headers={"If-None-Match": before[DOCUMENT_URLS[0]].headers["etag"]})
    assert top.status_code == 304
    with replica.session() as session:
        session.get(Collection, "family").label = "The family archive"
        replica.touch(session, "family")
    top = await client.get(DOCUMENT_URLS[0])
    assert top.headers["etag"] != before[DOCUMENT_URLS[0]].headers["etag"]
    assert top.json()["items"][0]["label"] == {LANGUAGE: ["The family archive"]}


async def test_a_tier_change_through_another_replica_is_seen_on_the_next_request(
    client: httpx.AsyncClient, replica: Catalogue
) -> None:
    stream = await get_json(client, "/iiif/discovery/activity/all-changes")
    replica.set_tier("family/photo", "staff")
    after = await get_json(client, "/iiif/discovery/activity/all-changes")
    assert after["totalItems"] == stream["totalItems"] + 2  # its Remove, and the whole manifest's Update
    page = await get_json(client, after["last"]["id"].removeprefix(BASE))
    assert [i["type"] for i in page["orderedItems"][-2:]] == ["Remove", "Update"]


# -- Change Discovery 1.0 ---------------------------------------------------------------------------


async def all_items(client: httpx.AsyncClient) -> list[dict]:  # type: ignore[type-arg]
    stream = await get_json(client, "/iiif/discovery/activity/all-changes")
    items, url = [], stream["first"]["id"]
    while url:
        page = await get_json(client, url.removeprefix(BASE))
        items += page["orderedItems"]
        url = page.get("next", {}).get("id")
    assert len(items) == stream["totalItems"]
    return items


async def test_activity_stream_is_an_ordered_collection_of_resolving_activities_oldest_first(
    client: httpx.AsyncClient, catalogue: Catalogue, archive: Path, tmp_path: Path
) -> None:
    stream = await get_json(client, "/iiif/discovery/activity/all-changes")
    assert stream["@context"] == "http://iiif.io/api/discovery/1/context.json"
    assert (stream["id"], stream["type"]) == (f"{BASE}/iiif/discovery/activity/all-changes", "OrderedCollection")
    assert stream["first"] == stream["last"] == {"id": f"{BASE}/iiif/discovery/activity/page/0",
                                                 "type": "OrderedCollectionPage"}
    page = await get_json(client, "/iiif/discovery/activity/page/0")
    assert page["type"] == "OrderedCollectionPage" and "startIndex" not in page  # unknowable without counting
    assert page["partOf"] == {"id": stream["id"], "type": "OrderedCollection"}
    assert "prev" not in page and "next" not in page
    items = page["orderedItems"]
    assert stream["totalItems"] == len(items) == 6
    listed = [(i["type"], i["object"]["type"], i["object"]["id"].removeprefix(BASE)) for i in items]
    assert listed[0] == ("Create", "Collection", "/iiif/presentation/family/collection")
    documents = [a for a in listed if a[2] != "/iiif/presentation/family/manifest" and a[1] == "Manifest"]
    assert sorted(documents) == [  # documents are announced as each one is committed, in any order
        ("Create", "Manifest", "/iiif/presentation/family/letter/manifest"),
        ("Create", "Manifest", "/iiif/presentation/family/photo/manifest"),
    ]
    # the whole-collection manifest comes with the first pages (before, it answers 404), then shows the next ones
    whole = [a[0] for a in listed if a[2] == "/iiif/presentation/family/manifest"]
    assert whole == ["Create", "Update"] and listed[2][2] == "/iiif/presentation/family/manifest"
    assert listed[-1] == ("Update", "Collection", "/iiif/presentation/family/collection")  # its listing, at the end
    for item in items:
        resolved = await get_json(client, item["object"]["id"].removeprefix(BASE))
        assert (resolved["id"], resolved["type"]) == (item["object"]["id"], item["object"]["type"])
    # a changed page is the newest activity, last on the last page
    quadrants(300, 200).flip("horizontal").pngsave(str(tmp_path / "masters" / "letter" / "p1.png"))
    ingest(catalogue, archive, tmp_path / "masters")
    items = await all_items(client)
    assert len(items) == 8  # the collection's listing of manifests did not change: no Update for it
    assert [(i["type"], i["object"]) for i in items[-2:]] == [
        ("Update", {"id": f"{BASE}/iiif/presentation/family/letter/manifest", "type": "Manifest"}),
        ("Update", {"id": f"{BASE}/iiif/presentation/family/manifest", "type": "Manifest"}),
    ]
    times = [i["endTime"] for i in items]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)


async def test_activity_pages_link_prev_and_next_when_there_are_several(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, replica: Catalogue
) -> None:
    for tier in ("reading-room", "public", "reading-room"):  # public and restricted activities mixed
        replica.set_tier("family/photo", tier)
    everything = await all_items(client)
    total = len(everything)
    assert total >= 7
    _, top = replica.activity_bounds()
    assert top > total  # some ids went to restricted activities
    monkeypatch.setattr(discovery, "PAGE_SIZE", 3)
    count = -(-top // 3)  # pages are id ranges of 3
    stream = await get_json(client, "/iiif/discovery/activity/all-changes")
    assert stream["totalItems"] == total
    assert stream["first"]["id"] == f"{BASE}/iiif/discovery/activity/page/0"
    assert stream["last"]["id"] == f"{BASE}/iiif/discovery/activity/page/{count - 1}"
    pages = [await get_json(client, f"/iiif/discovery/activity/page/{n}") for n in range(count)]
    assert all(len(p["orderedItems"]) <= 3 for p in pages)
    assert [p.get("prev", {}).get("id") for p in pages] == [None] + [p["id"] for p in pages[:-1]]
    assert [p.get("next", {}).get("id") for p in pages] == [p["id"] for p in pages[1:]] + [None]
    assert [i for p in pages for i in p["orderedItems"]] == everything
    assert (await client.get(f"/iiif/discovery/activity/page/{count}")).status_code == 404


async def test_activity_page_past_the_end_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/iiif/discovery/activity/page/1")).status_code == 404
    assert (await client.get("/iiif/discovery/activity/page/999999")).status_code == 404
    assert (await client.get("/iiif/discovery/activity/page/-1")).status_code == 404


async def test_activity_pages_hold_a_thousand_activity_ids_each(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    before = len(await all_items(client))
    _, top = catalogue.activity_bounds()
    with catalogue.session() as session:
        for _ in range(1000):
            catalogue.record(session, "Update", "Manifest", "family", "letter", "public")
    stream = await get_json(client, "/iiif/discovery/activity/all-changes")
    assert stream["totalItems"] == before + 1000
    assert stream["last"]["id"] == f"{BASE}/iiif/discovery/activity/page/1"
    first = await get_json(client, "/iiif/discovery/activity/page/0")
    last = await get_json(client, "/iiif/discovery/activity/page/1")
    assert len(first["orderedItems"]) == 1000 and first["next"]["id"] == stream["last"]["id"]
    assert len(last["orderedItems"]) == top and last["prev"]["id"] == stream["first"]["id"]
    assert "next" not in last
    assert last["orderedItems"][-1]["object"]["id"] == f"{BASE}/iiif/presentation/family/letter/manifest"


async def test_restricted_material_never_appears_in_the_public_stream(
    client: httpx.AsyncClient, catalogue: Catalogue, tmp_path: Path, archive: Path
) -> None:
    staff_src = tmp_path / "staff-masters"
    (staff_src / "minutes").mkdir(parents=True)
    quadrants(40, 30).pngsave(str(staff_src / "minutes" / "p1.png"))
    ingest(catalogue, archive, staff_src, collection="board", tier="staff")
    room_src = tmp_path / "room-masters"
    room_src.mkdir()
    quadrants(40, 30).pngsave(str(room_src / "diary.png"))
    (room_src / "metadata.csv").write_text("id,tier\ndiary,reading-room\n")
    ingest(catalogue, archive, room_src)
    assert catalogue.document("family", "diary").tier == "reading-room"
    replica = Catalogue(catalogue.url)
    try:
        replica.set_tier("board/minutes", "reading-room")  # staff -> reading-room: still not public
    finally:
        replica.engine.dispose()
    _, everything = catalogue.activities(0, 1000, public_only=False)
    assert any(a.collection_id == "board" for a in everything) and any(a.document_ident == "diary" for a in everything)
    ids = [i["object"]["id"] for i in await all_items(client)]
    assert ids and not any("/board/" in i or "/diary/" in i for i in ids)


async def test_moving_a_document_from_public_to_staff_shows_as_a_remove_in_the_public_stream(
    client: httpx.AsyncClient, replica: Catalogue
) -> None:
    before = await all_items(client)
    replica.set_tier("family/letter", "staff")
    after = await all_items(client)
    assert after[: len(before)] == before
    whole = {"id": f"{BASE}/iiif/presentation/family/manifest", "type": "Manifest"}
    stream = {"id": f"{BASE}/iiif/discovery/activity/all-changes", "type": "OrderedCollection"}
    assert [(i["type"], i["object"], i.get("origin")) for i in after[len(before):]] == [
        ("Remove", {"id": f"{BASE}/iiif/presentation/family/letter/manifest", "type": "Manifest"}, stream),
        ("Update", whole, None)]  # the public whole-collection manifest no longer shows its pages
    replica.set_tier("family/letter/p1", "public")  # a change inside staff material: news only for the whole
    assert [(i["type"], i["object"]) for i in (await all_items(client))[len(after):]] == [("Update", whole)]
    replica.set_tier("family/letter", "public")
    back = [(i["type"], i["object"]["id"], i.get("target")) for i in (await all_items(client))[-2:]]
    assert back == [("Add", f"{BASE}/iiif/presentation/family/letter/manifest", stream),
                    ("Update", whole["id"], None)]
