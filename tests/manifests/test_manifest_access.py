"""Access in Presentation documents: hidden tiers are absent, restricted pages carry auth services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jsonschema
import pytest
import pyvips
from iiif_prezi3 import Manifest
from support import presentation_schema

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.web.app import create_app

SECRET = "s" * 40
LAYOUT = {  # collection tier, {document: (tier, pages)}
    "public-coll": ("public", {"open": (None, 2), "rr": ("reading-room", 1), "secret": ("staff", 1)}),
    "staff-coll": ("staff", {"inner": (None, 1)}),
}


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, TokenStore, Catalogue]]:
    images = tmp_path / "images"
    settings = config.Settings(data_dir=tmp_path, images=images, database=database_url, demo=False,
                               secret_key=SECRET, networks=("reading-room=10.9.0.0/16",))
    app = create_app(settings)
    cat = Catalogue(database_url)
    with cat.session() as s:
        for cid, (ctier, docs) in LAYOUT.items():
            s.add(Collection(id=cid, label=cid, tier=ctier, metadata_pairs=[]))
            s.flush()
            for n, (did, (dtier, pages)) in enumerate(docs.items()):
                doc = Document(collection_id=cid, ident=did, label=did, position=n, tier=dtier, metadata_pairs=[])
                s.add(doc)
                s.flush()
                for p in range(pages):
                    path = images / cid / did / f"p{p}.tif"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    (pyvips.Image.black(64, 48) + 128).cast("uchar").tiffsave(str(path), tile=True, pyramid=True)
                    s.add(Image(document_pk=doc.pk, ident=f"p{p}", position=p, label=str(p + 1), width=64,
                                height=48, checksum="0" * 64, source_path=str(path), source_size=1, source_mtime=0))
    store = TokenStore(cat, SECRET)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, store, cat
    cat.engine.dispose()


def canvas_services(manifest: dict) -> dict[str, list]:  # type: ignore[type-arg]
    out = {}
    for canvas in manifest["items"]:
        service = canvas["items"][0]["items"][0]["body"]["service"][0]
        out[canvas["id"].split("/presentation/")[1]] = service.get("service", [])
    return out


async def test_staff_material_is_absent_without_clearance_and_present_with_it(setup) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = setup
    top = (await client.get("/iiif/presentation/collections")).json()
    assert [c["id"].split("/")[-2] for c in top["items"]] == ["public-coll"]
    assert (await client.get("/iiif/presentation/staff-coll/manifest")).status_code == 404
    assert (await client.get("/iiif/presentation/public-coll/secret/manifest")).status_code == 404
    coll = (await client.get("/iiif/presentation/public-coll/collection")).json()
    assert [m["id"].split("/")[-2] for m in coll["items"]] == ["open"]  # the reading-room one is not listed
    transport = httpx.ASGITransport(app=client._transport.app, client=("10.9.1.2", 4000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as room:
        listed = (await room.get("/iiif/presentation/public-coll/collection")).json()
    assert [m["id"].split("/")[-2] for m in listed["items"]] == ["open", "rr"]

    token, _ = store.issue("staff", "Staff member", 1)
    auth = {"Authorization": f"Bearer {token}"}
    top = (await client.get("/iiif/presentation/collections", headers=auth)).json()
    assert sorted(c["id"].split("/")[-2] for c in top["items"]) == ["public-coll", "staff-coll"]
    r = await client.get("/iiif/presentation/public-coll/secret/manifest", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    # and the anonymous view was not replaced by the staff one in the server's cache
    assert (await client.get("/iiif/presentation/public-coll/secret/manifest")).status_code == 404


async def test_reading_room_pages_stay_visible_with_auth_services_and_validate(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    whole = await client.get("/iiif/presentation/public-coll/manifest")
    assert whole.status_code == 200 and whole.headers["cache-control"].startswith("private")
    jsonschema.validate(whole.json(), presentation_schema())
    # the whole collection's manifest lists only the documents the requester is cleared for
    assert list(canvas_services(whole.json())) == ["public-coll/open/canvas/p0", "public-coll/open/canvas/p1"]
    r = await client.get("/iiif/presentation/public-coll/rr/manifest")
    assert r.status_code == 200
    manifest = r.json()
    jsonschema.validate(manifest, presentation_schema())
    Manifest(**manifest)
    services = canvas_services(manifest)
    assert list(services) == ["public-coll/rr/canvas/p0"]
    rr = services["public-coll/rr/canvas/p0"]
    assert rr[0]["type"] == "AuthProbeService2"
    assert [s["profile"] for s in rr[0]["service"]] == ["active"]
    assert "http://iiif.io/api/auth/1/login" in [s.get("profile") for s in rr]
    assert r.headers["cache-control"].startswith("private")
    assert "Cookie" in r.headers["vary"]


async def test_reading_room_network_is_offered_the_kiosk_service(setup, database_url: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    transport = httpx.ASGITransport(app=client._transport.app, client=("10.9.1.2", 4000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as room:
        manifest = (await room.get("/iiif/presentation/public-coll/rr/manifest")).json()
    rr = canvas_services(manifest)["public-coll/rr/canvas/p0"]
    assert [s["profile"] for s in rr[0]["service"]] == ["kiosk", "active"]
    assert "http://iiif.io/api/auth/1/kiosk" in [s.get("profile") for s in rr]
    # the anonymous view elsewhere still has no kiosk
    outside = (await client.get("/iiif/presentation/public-coll/rr/manifest")).json()
    assert [s["profile"] for s in canvas_services(outside)["public-coll/rr/canvas/p0"][0]["service"]] == ["active"]


async def test_public_only_documents_stay_publicly_cacheable(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    r = await client.get("/iiif/presentation/public-coll/open/manifest")
    assert r.status_code == 200 and r.headers["cache-control"].startswith("public")
    assert all(not s for s in canvas_services(r.json()).values())


async def test_hiding_a_document_applies_from_the_next_request(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    assert (await client.get("/iiif/presentation/public-coll/open/manifest")).status_code == 200
    Catalogue(cat.url).set_tier("public-coll/open", "staff")
    assert (await client.get("/iiif/presentation/public-coll/open/manifest")).status_code == 404
