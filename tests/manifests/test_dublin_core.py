"""What harvesters read beside the manifests: each document's and collection's Dublin Core record (oai_dc),
linked by `seeAlso`, parsed here with its namespaces; the described collections' Presentation documents,
valid against the Presentation 3.0 schema; and Last-Modified with the ETag, If-Modified-Since answered."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from xml.etree import ElementTree as ET

import jsonschema
from iiif_prezi3 import Collection, Manifest
from sqlalchemy import select
from support import presentation_schema
from worlds import READING_ROOM_V4, World, bearer, settle

from iiif_server.db.descriptions import Description
from iiif_server.db.models import Collection as CollectionRow
from iiif_server.db.models import Document

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ELEMENTS = {"title", "creator", "subject", "description", "publisher", "contributor", "date", "type", "format",
            "identifier", "source", "language", "relation", "coverage", "rights"}
CC_BY = "http://creativecommons.org/licenses/by/4.0/"
BASE = "http://testserver"


def describe(world: World) -> None:
    world.catalogue.describe([
        Description("maps", {"label": "Maps of Mechelen", "summary": "City maps, 1940-1945",
                             "description": "Forty maps of the city.", "dates": "1940-1945",
                             "provenance": "Municipal archive", "rights": CC_BY,
                             "required_statement": "Kazerne Dossin", "record": "KD/0042",
                             "metadata_pairs": [["Creator", "City surveyor"], ["Scale", "1:5000"]]}),
        Description("letters", {"summary": "Letters of the Lévy family", "dates": "1942-1944",
                                "provenance": "Gift of the family"}),
    ])
    with world.catalogue.session() as session:
        for coll in session.scalars(select(CollectionRow)):  # the kept counts, as ingest keeps them
            coll.document_count = len(coll.documents)
            coll.image_count = sum(len(d.images) for d in coll.documents)
        doc = session.query(Document).filter_by(collection_id="maps", ident="d1").one()
        doc.label, doc.summary = "Plan of the barracks", "Drawn in 1942"
        doc.metadata_pairs = [["Subject", "Barracks"], ["Sheet", "3"]]
        secret = session.query(Document).filter_by(collection_id="maps", ident="d2").one()
        secret.label = "Letter of Rywka Lipszyc"
        world.catalogue.touch(session, "maps")


def record(body: bytes) -> tuple[ET.Element, dict[str, list[str]]]:
    root = ET.fromstring(body)
    assert root.tag == f"{{{OAI_DC}}}dc"
    assert root.get(f"{{{XSI}}}schemaLocation") == f"{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
    values: dict[str, list[str]] = {}
    for child in root:
        namespace, name = child.tag[1:].split("}")
        assert namespace == DC and name in ELEMENTS, child.tag
        assert len(child) == 0 and child.text
        values.setdefault(name, []).append(child.text)
    return root, values


async def test_a_document_s_dublin_core_record_is_linked_by_see_also_and_parses_as_oai_dc(hidden_world: World) -> None:
    world = hidden_world
    describe(world)
    c = world.client(world.app(provider="Kazerne Dossin"))
    manifest = (await c.get("/iiif/presentation/maps/d1/manifest")).json()
    [see_also] = manifest["seeAlso"]
    assert (see_also["type"], see_also["format"], see_also["profile"]) == ("Dataset", "application/xml", OAI_DC)
    r = await c.get(see_also["id"].removeprefix(BASE))
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml; charset=utf-8"
    assert r.headers["cache-control"].startswith("public")
    assert r.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    _, dc = record(r.content)
    assert dc["title"] == ["Plan of the barracks"]
    assert dc["description"] == ["Drawn in 1942", "Sheet: 3"]
    assert dc["subject"] == ["Barracks"]
    assert dc["identifier"] == [f"{BASE}/iiif/presentation/maps/d1/manifest", f"{BASE}/view/maps/d1"]
    assert dc["relation"] == [f"{BASE}/iiif/presentation/maps/collection"]
    assert dc["rights"] == [CC_BY, "Kazerne Dossin"]  # the collection's, which the document inherits
    assert dc["publisher"] == ["Kazerne Dossin"] and dc["type"] == ["Image"]
    # the manifest says the same of rights and attribution
    assert manifest["rights"] == CC_BY
    assert manifest["requiredStatement"]["value"] == {"en": ["Kazerne Dossin"]}


async def test_a_restricted_document_s_record_is_for_those_cleared_only(hidden_world: World) -> None:
    world = hidden_world
    describe(world)
    c = world.client()
    r = await c.get("/iiif/presentation/maps/d2/dc.xml")  # reading-room
    assert r.status_code == 404 and "no-store" in r.headers["cache-control"]
    # its manifest still answers (a viewer offers the sign-in), without its description or the record's link
    manifest = (await c.get("/iiif/presentation/maps/d2/manifest")).json()
    assert manifest["label"] == {"en": ["d2"]} and "seeAlso" not in manifest
    assert "Rywka" not in str(manifest)
    room = world.client(peer=READING_ROOM_V4)
    r = await room.get("/iiif/presentation/maps/d2/dc.xml")
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    assert record(r.content)[1]["title"] == ["Letter of Rywka Lipszyc"]
    assert (await room.get("/iiif/presentation/maps/d2/manifest")).json()["label"] == {
        "en": ["Letter of Rywka Lipszyc"]}
    assert (await c.get("/iiif/presentation/personnel/d1/dc.xml")).status_code == 404
    assert (await c.get("/iiif/presentation/maps/nothing/dc.xml")).status_code == 404


async def test_a_collection_s_record_describes_it_for_everyone_unless_it_is_hidden(hidden_world: World) -> None:
    world = hidden_world
    describe(world)
    c = world.client(world.app(record_url="https://archive.example.org/records/{record}",
                               consult="reading-room=in the reading room of Kazerne Dossin"))
    letters = await c.get("/iiif/presentation/letters/dc.xml")
    assert letters.status_code == 200 and letters.headers["cache-control"].startswith("public")
    _, dc = record(letters.content)
    assert dc["title"] == ["letters"] and dc["date"] == ["1942-1944"] and dc["type"] == ["Collection"]
    assert "Access: Can be consulted in the reading room of Kazerne Dossin." in dc["description"]
    assert "Provenance: Gift of the family" in dc["description"]
    assert dc["identifier"][:2] == [f"{BASE}/iiif/presentation/letters/collection", f"{BASE}/collections/letters"]
    maps = record((await c.get("/iiif/presentation/maps/dc.xml")).content)[1]
    assert "https://archive.example.org/records/KD%2F0042" in maps["identifier"]
    assert maps["creator"] == ["City surveyor"] and "Scale: 1:5000" in maps["description"]
    assert "Access: Open to everyone online." in maps["description"]
    assert (await c.get("/iiif/presentation/personnel/dc.xml")).status_code == 404
    staff = await c.get("/iiif/presentation/personnel/dc.xml", headers=bearer(world.token("staff")))
    assert staff.status_code == 200 and staff.headers["cache-control"].startswith("private")


async def test_described_collections_and_their_documents_stay_schema_valid(hidden_world: World) -> None:
    world = hidden_world
    describe(world)
    c = world.client(world.app(provider="Kazerne Dossin", provider_homepage="https://kazernedossin.eu/",
                               homepage="https://archive.example.org/browse/{collection}/{document}",
                               record_url="https://archive.example.org/records/{record}",
                               attribution="Kazerne Dossin, Mechelen"))
    schema = presentation_schema()
    for url in ("/iiif/presentation/collections", "/iiif/presentation/maps/collection",
                "/iiif/presentation/letters/collection", "/iiif/presentation/maps/manifest",
                "/iiif/presentation/maps/d1/manifest", "/iiif/presentation/maps/d2/manifest"):
        doc = (await c.get(url)).json()
        jsonschema.validate(doc, schema)
        (Manifest if doc["type"] == "Manifest" else Collection)(**doc)
    maps = (await c.get("/iiif/presentation/maps/collection")).json()
    assert maps["summary"] == {"en": ["City maps, 1940-1945"]}
    pairs = {p["label"]["en"][0]: p["value"]["en"][0] for p in maps["metadata"]}
    assert pairs == {"Description": "Forty maps of the city.", "Dates": "1940-1945", "Extent": "2 documents, 3 pages",
                     "Provenance": "Municipal archive", "Access": "Open to everyone online.",
                     "Creator": "City surveyor", "Scale": "1:5000"}
    assert [h["id"] for h in maps["homepage"]] == [f"{BASE}/collections/maps",
                                                   "https://archive.example.org/records/KD%2F0042",
                                                   "https://archive.example.org/browse/maps/"]
    assert maps["seeAlso"][0]["id"] == f"{BASE}/iiif/presentation/maps/dc.xml"
    assert maps["provider"][0]["label"] == {"en": ["Kazerne Dossin"]}
    assert maps["requiredStatement"]["value"] == {"en": ["Kazerne Dossin"]} and maps["rights"] == CC_BY


async def test_presentation_documents_carry_last_modified_and_answer_if_modified_since(hidden_world: World) -> None:
    world = hidden_world
    c = world.client()
    await asyncio.sleep(1.1)  # a change within the current second is never vouched for
    url = "/iiif/presentation/maps/d1/manifest"
    first = await c.get(url)
    modified = first.headers["last-modified"]
    when = email.utils.parsedate_to_datetime(modified).timestamp()
    updated = world.catalogue.collection("maps").updated
    assert when == int((updated if updated.tzinfo else updated.replace(tzinfo=dt.UTC)).timestamp())
    assert (await c.get(url, headers={"If-Modified-Since": modified})).status_code == 304
    assert (await c.get(url, headers={"If-Modified-Since": email.utils.formatdate(when - 5, usegmt=True)})
            ).status_code == 200
    assert (await c.get(url, headers={"If-Modified-Since": "yesterday"})).status_code == 200  # not a date: ignored
    # the ETag decides where both are sent (RFC 9110 13.2.2)
    assert (await c.get(url, headers={"If-Modified-Since": modified, "If-None-Match": '"other"'})).status_code == 200
    # a change moves it on; the client's old date no longer matches
    await asyncio.sleep(1.1)
    world.replica().describe([Description("maps", {"summary": "Changed"})])
    await settle()
    await asyncio.sleep(max(0.0, 1.05 - (time.time() % 1)))  # out of the second of the change
    after = await c.get(url, headers={"If-Modified-Since": modified})
    assert after.status_code == 200
    assert email.utils.parsedate_to_datetime(after.headers["last-modified"]).timestamp() > when
    for other in ("/iiif/presentation/maps/collection", "/iiif/presentation/collections",
                  "/iiif/presentation/maps/dc.xml"):
        assert "last-modified" in (await c.get(other)).headers, other
