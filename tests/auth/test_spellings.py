"""Another spelling of an identifier never gets past a tier (case, Unicode form, alias links).

On a share that folds names (SMB from Windows, macOS) `mixed/RR-DOC/p1` opens the file of the
reading-room document `mixed/rr-doc/p1`. The image root here is a real case- and
normalisation-insensitive file system: `tests/foldfs.py` over FUSE. Without FUSE the test skips
(`IIIF_SERVER_REQUIRE_FUSE=1`, as in CI, makes it fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from support import TESTS, quadrants

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.web.app import create_app

SECRET = "a-test-signing-key-that-is-long-enough-0123456789"
REQUIRE = "IIIF_SERVER_REQUIRE_FUSE"
FOLDFS = TESTS / "foldfs.py"
ACCENTED = unicodedata.normalize("NFC", "dossier-é")  # stored NFC, as ingest stores names
# collection -> (tier, {document: (tier or None, {page: tier or None})})
LAYOUT = {
    "mixed": ("public", {
        "open": (None, {"p1": None, "p2": "staff"}),
        "rr-doc": ("reading-room", {"p1": None}),
        "staff-doc": ("staff", {"p1": None}),
        ACCENTED: ("reading-room", {"p1": None}),
    }),
}
SMALL = "full/64,/0/default.jpg"


def url(identifier: str, rest: str = SMALL) -> str:
    return f"/iiif/3/{quote(identifier, safe='')}/{rest}"


def fuse_problem() -> str | None:
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        return "needs /dev/fuse and fusermount3 (Debian's fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"needs mfusepy and libfuse3 ({exc})"
    return None


@pytest.fixture
def folding_root(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(backing folder, its case- and normalisation-folding view)."""
    problem = fuse_problem()
    if problem:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set but {problem}")
        pytest.skip(problem)
    backing, mount = tmp_path / "backing", tmp_path / "folding"
    backing.mkdir()
    mount.mkdir()
    proc = subprocess.Popen([sys.executable, str(FOLDFS), str(backing), str(mount)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mount):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            if os.environ.get(REQUIRE):
                pytest.fail(f"the FUSE view did not mount: {err}")
            pytest.skip(f"the FUSE view did not mount here: {err.strip()[-300:]}")
        time.sleep(0.05)
    try:
        yield backing, mount
    finally:
        subprocess.run(["fusermount3", "-u", str(mount)], check=False)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def client(folding_root: tuple[Path, Path], tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An app over the folding view of a catalogued collection; (client, a staff token)."""
    async for pair in serve(*folding_root, tmp_path):
        yield pair


async def serve(backing: Path, mount: Path, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    database = f"sqlite:///{tmp_path / 'catalogue.db'}"
    catalogue = Catalogue(database)
    catalogue.upgrade()
    tiff = tmp_path / "page.tif"
    quadrants(200, 150).tiffsave(str(tiff), tile=True, pyramid=True, compression="jpeg")
    with catalogue.session() as session:
        for coll_id, (coll_tier, docs) in LAYOUT.items():
            coll = Collection(id=coll_id, label=coll_id, tier=coll_tier)
            for pos, (doc_id, (doc_tier, pages)) in enumerate(docs.items()):
                doc = Document(ident=doc_id, label=doc_id, position=pos, tier=doc_tier)
                for page_pos, (page, page_tier) in enumerate(pages.items()):
                    path = backing / coll_id / doc_id / f"{page}.tif"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(tiff, path)
                    doc.images.append(Image(ident=page, position=page_pos, label=page, width=200, height=150,
                                            checksum="0" * 64, source_path=str(path), source_size=1,
                                            source_mtime=0.0, tier=page_tier))
                coll.documents.append(doc)
            session.add(coll)
    token = TokenStore(catalogue, SECRET).issue("staff", "test", 1, ())[0]
    settings = config.Settings(data_dir=tmp_path / "data", images=mount, demo=False, database=database,
                               secret_key=SECRET)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c, token
    app.state.runtime.shutdown()
    app.state.catalogue.engine.dispose()
    catalogue.engine.dispose()


async def test_the_view_folds_names(folding_root: tuple[Path, Path]) -> None:
    """The file system under test really opens one file under several spellings."""
    backing, mount = folding_root
    (backing / "Mixed").mkdir()
    (backing / "Mixed" / "Page.tif").write_bytes(b"x")
    assert (mount / "MIXED" / "page.TIF").read_bytes() == b"x"
    assert (mount / unicodedata.normalize("NFD", "mixed") / "PAGE.tif").exists()


async def test_stored_spellings_answer_by_their_tier(client: tuple[httpx.AsyncClient, str]) -> None:
    c, token = client
    assert (await c.get(url("mixed/open/p1"))).status_code == 200
    assert (await c.get(url("mixed/rr-doc/p1"))).status_code == 401
    assert (await c.get(url(f"mixed/{ACCENTED}/p1"))).status_code == 401
    assert (await c.get(url("mixed/staff-doc/p1"))).status_code == 404  # hidden tier
    assert (await c.get(url("mixed/staff-doc/p1"), headers={"Authorization": f"Bearer {token}"})).status_code == 200


@pytest.mark.parametrize("spelling", [
    "mixed/RR-DOC/p1", "MIXED/rr-doc/p1", "mixed/rr-doc/P1", "Mixed/Rr-Doc/p1",
    f"mixed/{unicodedata.normalize('NFD', ACCENTED)}/p1", f"mixed/{ACCENTED.upper()}/p1",
    "mixed/STAFF-DOC/p1", "mixed/open/P2", "MIXED/open/p2", "mixed/OPEN/p1",
])
async def test_another_spelling_is_an_unknown_identifier(client: tuple[httpx.AsyncClient, str],
                                                         spelling: str) -> None:
    """Whatever the file system folds, only the stored spelling names an image: another spelling answers
    exactly as a page that exists nowhere does at the same place (404, or the refusal every unknown page
    of a restricted document gets), with no image bytes and no public caching, on every Image API URL;
    even the staff, cleared for everything, get 404."""
    c, token = client
    twin = spelling.rsplit("/", 1)[0] + "/zz9"  # no such page in any spelling
    for rest in (SMALL, "info.json", "full/max/0/default.jpg"):
        r, unknown = await c.get(url(spelling, rest)), await c.get(url(twin, rest))
        assert r.status_code == unknown.status_code, (spelling, rest, r.status_code, unknown.status_code)
        assert r.status_code in (401, 404), (spelling, rest, r.status_code)
        staff = await c.get(url(spelling, rest), headers={"Authorization": f"Bearer {token}"})
        assert staff.status_code == 404, (spelling, rest, staff.status_code)
        for answer in (r, staff):
            assert not answer.headers["content-type"].startswith("image/")
            assert "public" not in answer.headers.get("cache-control", "")


async def test_a_folder_spelled_like_a_restricted_document_takes_its_tier(tmp_path: Path) -> None:
    """Where the file system cannot say how a name is stored (or two spellings are two folders, on a
    file system that does not fold), a spelling of a restricted document's name is never served below
    that document's tier: the access decision folds names itself."""
    root = tmp_path / "images"
    async for c, token in serve(root, root, tmp_path):
        for spelling in ("mixed/RR-DOC/p1", f"mixed/{ACCENTED.upper()}/p1", "mixed/open/P2"):
            path = root / f"{spelling}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / "mixed" / "open" / "p1.tif", path)
            assert (await c.get(url("mixed/open/p1"))).status_code == 200
            r = await c.get(url(spelling))
            assert r.status_code in (401, 404), (spelling, r.status_code)
            assert not r.headers["content-type"].startswith("image/")
        staff = await c.get(url("mixed/RR-DOC/p1"), headers={"Authorization": f"Bearer {token}"})
        assert staff.status_code == 200  # a folder of its own here, served to those cleared for its tier
