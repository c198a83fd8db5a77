"""Withdrawal (`iiif-server remove`): rows, copies and Delete activities go; two replicas stop serving at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from support import quadrants

from iiif_server import cli as cli_module
from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Collection, Document, Image
from iiif_server.ingest.run import Ingest
from iiif_server.web.app import create_app

BASE = "http://testserver"


@pytest.fixture
def archive(catalogue: Catalogue, tmp_path: Path) -> Path:
    src, root = tmp_path / "masters", tmp_path / "images"
    for doc, pages in (("a", 2), ("b", 1), ("c", 3)):
        (src / doc).mkdir(parents=True)
        for n in range(pages):
            quadrants(80, 60).pngsave(str(src / doc / f"p{n + 1}.png"))
    report = Ingest(catalogue, root, "letters", workers=1).run(src)
    assert report.failed == []
    return root


@pytest.fixture
async def replicas(catalogue: Catalogue, archive: Path, tmp_path: Path) -> AsyncIterator[list[httpx.AsyncClient]]:
    settings = config.Settings(database=catalogue.url, data_dir=tmp_path / "data", images=archive, demo=False,
                               secret_key="k" * 40)
    apps = [create_app(settings, migrate=False) for _ in range(2)]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) for app in apps]
    yield clients
    for c, app in zip(clients, apps, strict=True):
        await c.aclose()
        app.state.catalogue.engine.dispose()


def run_cli(catalogue: Catalogue, root: Path, tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli_module.main, ["remove", *args, "--yes", "--database", catalogue.url,
                                                  "--images", str(root), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    return result.output


def stream(catalogue: Catalogue) -> list[tuple[str, str, str | None]]:
    with catalogue.sessions() as s:
        return [(a.type, a.object_type, a.document_ident) for a in s.scalars(select(Activity).order_by(Activity.id))]


async def test_removing_a_page_a_document_and_a_collection_stops_both_replicas_and_tells_harvesters(
    catalogue: Catalogue, archive: Path, replicas: list[httpx.AsyncClient], tmp_path: Path
) -> None:
    tile = "/iiif/3/letters%2Fa%2Fp1/full/50,/0/default.jpg"
    for c in replicas:  # both serve it, and have it cached
        assert (await c.get(tile)).status_code == 200
        assert (await c.get("/iiif/presentation/letters/a/manifest")).status_code == 200

    out = run_cli(catalogue, archive, tmp_path, "letters/a/p1")
    assert "withdrawn letters/a/p1: 0 document(s), 1 page(s)" in out
    assert not (archive / "letters" / "a" / "p1.tif").exists()
    for c in replicas:
        assert (await c.get(tile)).status_code == 404
        manifest = (await c.get("/iiif/presentation/letters/a/manifest")).json()
        assert [canvas["id"].rsplit("/", 1)[1] for canvas in manifest["items"]] == ["p2"]

    run_cli(catalogue, archive, tmp_path, "letters/b")
    assert not (archive / "letters" / "b").exists()
    for c in replicas:
        assert (await c.get("/iiif/presentation/letters/b/manifest")).status_code == 404
        listed = (await c.get("/iiif/presentation/letters/collection")).json()
        assert [i["id"].split("/")[-2] for i in listed["items"]] == ["a", "c"]
    with catalogue.sessions() as s:
        positions = s.execute(select(Document.ident, Document.position).order_by(Document.position)).all()
        coll = s.get(Collection, "letters")
    assert [tuple(r) for r in positions] == [("a", 0), ("c", 1)]  # dense again
    assert (coll.document_count, coll.image_count) == (2, 4)
    assert ("Delete", "Manifest", "b") in stream(catalogue)
    assert ("Update", "Manifest", "a") in stream(catalogue)

    run_cli(catalogue, archive, tmp_path, "letters")
    assert not (archive / "letters").exists()
    with catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 0
    for c in replicas:
        assert (await c.get("/iiif/presentation/letters/collection")).status_code == 404
        assert (await c.get("/iiif/3/letters%2Fc%2Fp3/full/50,/0/default.jpg")).status_code == 404
        public = (await c.get("/iiif/discovery/activity/page/0")).json()["orderedItems"]
        deletes = {i["object"]["id"].removeprefix(BASE) for i in public if i["type"] == "Delete"}
        assert {"/iiif/presentation/letters/a/manifest", "/iiif/presentation/letters/c/manifest",
                "/iiif/presentation/letters/b/manifest", "/iiif/presentation/letters/collection",
                "/iiif/presentation/letters/manifest"} <= deletes


def test_removing_what_does_not_exist_says_so(catalogue: Catalogue, archive: Path, tmp_path: Path) -> None:
    for target in ("nowhere", "letters/zz", "letters/a/p9", "letters/a/p1/x", "letters//p1"):
        result = CliRunner().invoke(cli_module.main, ["remove", target, "--yes", "--database", catalogue.url,
                                                      "--images", str(archive)])
        assert result.exit_code == 1, (target, result.output)
        assert "no " in result.output or "is not" in result.output
    assert (archive / "letters" / "a" / "p1.tif").exists()


async def test_hidden_files_are_never_served(archive: Path, replicas: list[httpx.AsyncClient]) -> None:
    # where withdrawn copies and an ingest's temporary files wait to be deleted
    hidden = archive / "letters" / "a" / ".withdrawn-0000-p1.tif"
    hidden.write_bytes((archive / "letters" / "a" / "p1.tif").read_bytes())
    (archive / "letters" / ".ingest-x.tif").write_bytes(hidden.read_bytes())
    for ident in ("letters%2Fa%2F.withdrawn-0000-p1", "letters%2F.ingest-x"):
        assert (await replicas[0].get(f"/iiif/3/{ident}/info.json")).status_code == 404


def test_what_a_killed_withdrawal_left_goes_with_the_next_withdrawal_or_ingest_there(
    catalogue: Catalogue, archive: Path, tmp_path: Path
) -> None:
    """A withdrawal killed between moving copies away and deleting them leaves hidden debris (never served,
    but taking space): the next withdrawal in that folder removes it, and so does the next ingest of the
    collection, in the collection's folder and in every document folder it looks at."""
    page_debris = archive / "letters" / "a" / ".withdrawn-00000000deadbeef"
    page_debris.write_bytes((archive / "letters" / "a" / "p1.tif").read_bytes())
    doc_debris = archive / "letters" / ".withdrawn-0123456789abcdef"
    doc_debris.mkdir()
    (doc_debris / "p1.tif").write_bytes(b"x")
    other_debris = archive / "letters" / "c" / ".withdrawn-fedcba9876543210"
    other_debris.write_bytes(b"x")
    run_cli(catalogue, archive, tmp_path, "letters/a/p2")
    assert not page_debris.exists()
    assert doc_debris.exists() and other_debris.exists()  # not yet: elsewhere
    src = tmp_path / "masters"  # the fixture's source, ingested again: nothing changed but the cleaning
    report = Ingest(catalogue, archive, "letters", workers=1).run(src)
    assert report.failed == [] and report.converted == 1  # p2 of document a, withdrawn above, comes back
    assert not doc_debris.exists() and not other_debris.exists()
