"""Ingest survives the archive's real folders: one bad file never stops a run.

Phone and camera captures of pages (EXIF or TIFF orientation), links and loops, pipes, names an old
Windows share wrote in Latin-1, and names too long to be a file name once they are an access copy's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pyvips
from sqlalchemy import select
from support import quadrants

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Document, Image
from iiif_server.ingest.run import Ingest
from iiif_server.ingest.withdraw import withdraw
from iiif_server.names import NAME_MAX, encoded
from iiif_server.web.app import create_app


@pytest.fixture
def catalogue(tmp_path: Path) -> AsyncIterator[Catalogue]:  # type: ignore[misc]
    cat = Catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}")
    cat.upgrade()
    yield cat
    cat.engine.dispose()


async def served(root: Path, catalogue: Catalogue, tmp_path: Path, identifier: str,
                 rest: str = "info.json") -> httpx.Response:
    settings = config.Settings(database=catalogue.url, data_dir=tmp_path / "data", images=root, demo=False)
    app = create_app(settings, migrate=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            return await c.get(f"/iiif/3/{quote(identifier, safe='')}/{rest}")
    finally:
        app.state.runtime.shutdown()
        app.state.catalogue.engine.dispose()


def pages(catalogue: Catalogue) -> list[tuple[str, str, int, int]]:
    with catalogue.sessions() as s:
        rows = s.execute(select(Document.ident, Image.ident, Image.width, Image.height)
                         .join(Image, Image.document_pk == Document.pk).order_by(Document.ident, Image.position))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def oriented(img: pyvips.Image, orientation: int) -> pyvips.Image:
    img = img.copy()
    img.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return img


@pytest.mark.parametrize(("kind", "orientation"), [("jpg", 6), ("jpg", 8), ("jpg", 3), ("tif", 6), ("tif", 5)])
async def test_photographed_pages_are_turned_upright(catalogue: Catalogue, tmp_path: Path, kind: str,
                                                     orientation: int) -> None:
    """A capture stored sideways with an orientation tag, larger than one decode buffer, becomes an upright
    access copy: its size is the turned one and its corners have the turned colours."""
    src, root = tmp_path / "masters", tmp_path / "images"
    (src / "photos").mkdir(parents=True)
    master = src / "photos" / f"p1.{kind}"
    picture = quadrants(2000, 1500)
    if kind == "jpg":
        oriented(picture, orientation).jpegsave(str(master), Q=95)
    else:
        oriented(picture, orientation).tiffsave(str(master), compression="lzw")
    report = Ingest(catalogue, root, "phone", workers=1).run(src)
    assert report.failed == [] and report.converted == 1
    upright = pyvips.Image.new_from_file(str(master)).autorot()
    [(_, _, width, height)] = pages(catalogue)
    assert (width, height) == (upright.width, upright.height)
    r = await served(root, catalogue, tmp_path, "phone/photos/p1", "full/200,/0/default.png")
    assert r.status_code == 200
    got = pyvips.Image.new_from_buffer(r.content, "")
    want = upright.resize(200 / upright.width)
    for x, y in ((20, 20), (got.width - 20, 20), (20, got.height - 20), (got.width - 20, got.height - 20)):
        assert [round(v) for v in got(x, y)[:3]] == pytest.approx([round(v) for v in want(x, y)[:3]], abs=12)


def test_links_loops_pipes_and_unreadable_folders_are_each_one_line(catalogue: Catalogue, tmp_path: Path) -> None:
    """Nothing on disk stops a run: each of these is a line of the report, links are never followed out
    of the source, and the good documents beside them are ingested."""
    src, root, outside = tmp_path / "masters", tmp_path / "images", tmp_path / "elsewhere"
    for folder in ("good", "loop", "linked-pages", outside):
        (src / folder if isinstance(folder, str) else folder).mkdir(parents=True, exist_ok=True)
    quadrants(64, 48).jpegsave(str(src / "good" / "p1.jpg"))
    quadrants(64, 48).jpegsave(str(outside / "secret.jpg"))
    (src / "loop" / "again").symlink_to(src / "loop", target_is_directory=True)
    (src / "linked-pages" / "self.jpg").symlink_to("self.jpg")  # a link to itself
    (src / "linked-pages" / "out.jpg").symlink_to(outside / "secret.jpg")
    (src / "outside-folder").symlink_to(outside, target_is_directory=True)
    (src / "outside.jpg").symlink_to(outside / "secret.jpg")
    os.mkfifo(src / "pipe.jpg")
    locked = src / "locked"
    locked.mkdir()
    quadrants(64, 48).jpegsave(str(locked / "p1.jpg"))
    locked.chmod(0)
    try:
        report = Ingest(catalogue, root, "odd", workers=1).run(src)
    finally:
        locked.chmod(0o755)
    failed = {path.relative_to(src).as_posix(): reason for path, reason in report.failed}
    assert set(failed) >= {"loop/again", "linked-pages/self.jpg", "linked-pages/out.jpg", "outside-folder",
                           "outside.jpg", "pipe.jpg"}, failed
    assert all("symbolic link" in failed[k] for k in ("loop/again", "linked-pages/out.jpg", "outside.jpg"))
    assert "pipe" in failed["pipe.jpg"]
    if os.geteuid() != 0:  # root reads any folder
        assert "cannot be read" in failed["locked"]
    assert ("good", "p1", 64, 48) in pages(catalogue)
    assert not any(doc in ("outside-folder", "outside") for doc, *_ in pages(catalogue))


def latin1(name: str) -> str:
    """A name as an old Windows share writes it: Latin-1 bytes, which Python reads as lone surrogates."""
    return os.fsdecode(name.encode("latin-1"))


def test_names_that_are_not_utf8_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    """Through the command line: the run ends with its report written (readable, UTF-8), the other
    documents ingested, and an exit code saying some files failed."""
    src, data = tmp_path / "masters", tmp_path / "data"
    (src / latin1("Dossier Lévy")).mkdir(parents=True)
    (src / "Dossier Cohen").mkdir()
    jpeg = quadrants(64, 48).jpegsave_buffer()
    for path in (src / latin1("Dossier Lévy") / "p1.jpg", src / "Dossier Cohen" / latin1("Brief é.jpg"),
                 src / "Dossier Cohen" / "p1.jpg"):
        path.write_bytes(jpeg)
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "share",
                           "--data-dir", str(data), "--processes", "1"], capture_output=True, timeout=300)
    assert done.returncode == 1, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr
    [report] = (data / "reports").glob("ingest-share-*.json")
    body = json.loads(report.read_text(encoding="utf-8"))
    reasons = {item["path"].rsplit("/", 2)[-2] + "/" + item["path"].rsplit("/", 1)[-1]: item["reason"]
               for item in body["failures"]}
    assert set(reasons) == {"Dossier L\ufffdvy/p1.jpg", "Dossier Cohen/Brief \ufffd.jpg"}, reasons
    assert all("not valid UTF-8" in reason for reason in reasons.values())
    assert body["converted"] == 1
    catalogue = Catalogue(f"sqlite:///{data / 'catalogue.db'}")
    assert pages(catalogue) == [("Dossier Cohen", "p1", 64, 48)]
    catalogue.engine.dispose()


LONG = "é" * 125 + "a"  # 126 characters, 251 bytes: with `.jpg` or `.tif`, a name of the longest kind
NESTED = ("я" * 70, "ю" * 70)  # folder and file names joined into one page id of 281 bytes


async def test_names_too_long_for_a_copy_name_are_ingested_served_rerun_and_withdrawn(catalogue: Catalogue,
                                                                                      tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    (src / "letters" / NESTED[0]).mkdir(parents=True)
    quadrants(64, 48).jpegsave(str(src / "letters" / f"{LONG}.jpg"))
    quadrants(66, 48).jpegsave(str(src / "letters" / NESTED[0] / f"{NESTED[1]}.jpg"))
    two = pyvips.Image.arrayjoin([quadrants(68, 48), quadrants(68, 48).invert()], across=1)
    two.copy().tiffsave(str(src / "letters" / f"{LONG[:-1]}b.tif"), page_height=48)  # pages `<stem>-1`, `-2`
    quadrants(72, 48).jpegsave(str(src / f"{LONG}.jpg"))  # a loose file: a one-page document of that name
    report = Ingest(catalogue, root, "long", workers=1).run(src)
    assert report.failed == [] and report.converted == 5, report.failed
    page_ids = {f"{doc}/{page}": width for doc, page, width, _ in pages(catalogue)}
    assert page_ids == {f"letters/{LONG}": 64, f"letters/{'_'.join(NESTED)}": 66, f"letters/{LONG[:-1]}b-1": 68,
                        f"letters/{LONG[:-1]}b-2": 68, f"{LONG}/{LONG}": 72}
    for _, dirnames, filenames in os.walk(root):
        assert all(len(encoded(name)) <= NAME_MAX for name in dirnames + filenames)
    for ident, width in page_ids.items():
        r = await served(root, catalogue, tmp_path, f"long/{ident}")
        assert r.status_code == 200 and r.json()["width"] == width, ident
    again = Ingest(catalogue, root, "long", workers=1).run(src)
    assert (again.converted, again.unchanged, again.failed) == (0, 5, [])
    withdraw(catalogue, root, f"long/letters/{LONG[:-1]}b-2")
    withdraw(catalogue, root, f"long/{LONG}")
    assert (await served(root, catalogue, tmp_path, f"long/letters/{LONG[:-1]}b-2")).status_code == 404
    assert (await served(root, catalogue, tmp_path, f"long/{LONG}/{LONG}")).status_code == 404
    assert (await served(root, catalogue, tmp_path, f"long/letters/{'_'.join(NESTED)}")).status_code == 200


def test_remove_withdraws_a_page_with_a_long_name_from_the_command_line(catalogue: Catalogue,
                                                                         tmp_path: Path) -> None:
    src, data = tmp_path / "masters", tmp_path / "data"
    (src / "letters").mkdir(parents=True)
    quadrants(64, 48).jpegsave(str(src / "letters" / f"{'ä' * 119}.jpg"))  # 238 bytes: the copy's trash name
    quadrants(64, 48).jpegsave(str(src / "letters" / "p2.jpg"))
    base = [sys.executable, "-m", "iiif_server.cli"]
    assert subprocess.run([*base, "ingest", str(src), "--collection", "c", "--data-dir", str(data)],
                          capture_output=True, timeout=300).returncode == 0
    done = subprocess.run([*base, "remove", f"c/letters/{'ä' * 119}", "--yes", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not list((data / "images" / "c" / "letters").glob("ä*"))
