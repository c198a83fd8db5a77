"""One run over a folder that mixes what real archives hold (issue 18): every file is accounted for, and the
catalogue, the activity stream and the served pages are what the report says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pyvips
from sqlalchemy import select
from support import quadrants

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Document, Image
from iiif_server.web.app import create_app


def latin1(name: str) -> str:
    return os.fsdecode(name.encode("latin-1"))


def build(src: Path, outside: Path) -> dict[str, str]:
    """The folder, and what each master should become: a page id, or the start of its failure's reason."""
    expect: dict[str, str] = {}

    def jpeg(path: Path, width: int = 64, height: int = 48, orientation: int = 1) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = quadrants(width, height).copy()
        if orientation != 1:
            img.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        img.jpegsave(str(path))

    jpeg(src / "letters" / "p1.jpg")
    jpeg(src / "letters" / "p2.jpg", 1200, 900, orientation=6)  # a photographed page
    jpeg(src / "letters" / "annex" / "p1.jpg", 257, 193)  # nested: page id annex_p1; odd-sized
    expect.update({"letters/p1.jpg": "page letters/p1", "letters/p2.jpg": "page letters/p2",
                   "letters/annex/p1.jpg": "page letters/annex_p1"})
    long_name = "é" * 125 + "a"
    jpeg(src / long_name / f"{long_name}.jpg")
    expect[f"{long_name}/{long_name}.jpg"] = f"page {long_name}/{long_name}"
    (src / "letters" / "scan.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    expect["letters/scan.pdf"] = "a PDF document"
    (src / "letters" / "broken.tif").write_bytes(b"II*\0\x08\0\0\0" + b"\xff" * 32)
    expect["letters/broken.tif"] = "unreadable TIFF"
    (src / "letters" / "zero.jpg").write_bytes(b"")
    expect["letters/zero.jpg"] = "empty file"
    (src / "letters" / ".DS_Store").write_bytes(b"x")
    expect["letters/.DS_Store"] = "skipped"
    (src / "letters" / "loop").symlink_to(src / "letters", target_is_directory=True)
    expect["letters/loop"] = "a symbolic link"
    jpeg(outside / "secret.jpg")
    (src / "letters" / "out.jpg").symlink_to(outside / "secret.jpg")
    expect["letters/out.jpg"] = "a symbolic link"
    os.mkfifo(src / "pipe")
    expect["pipe"] = "not a file or folder"
    (src / latin1("Boîte")).mkdir()
    (src / latin1("Boîte") / "p1.jpg").write_bytes(quadrants(64, 48).jpegsave_buffer())
    expect[os.fsdecode(os.fsencode(latin1("Boîte") + "/p1.jpg"))] = "its name is not valid UTF-8"
    for form in ("NFC", "NFD"):
        jpeg(src / unicodedata.normalize(form, "Dossier Lévy") / "p1.jpg")
        expect[unicodedata.normalize(form, "Dossier Lévy") + "/p1.jpg"] = "document name"
    return expect


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict, subprocess.CompletedProcess[str]]:  # type: ignore[type-arg]
    src, data, outside = tmp_path / "masters", tmp_path / "data", tmp_path / "elsewhere"
    expect = build(src, outside)
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "box",
                           "--data-dir", str(data), "--workers", "2"], capture_output=True, text=True, timeout=600)
    [path] = (data / "reports").glob("ingest-box-*.json")
    return src, data, expect, json.loads(path.read_text(encoding="utf-8")), done


async def test_every_file_is_accounted_for_and_the_catalogue_stream_and_pages_agree(run) -> None:  # type: ignore[no-untyped-def]
    src, data, expect, report, done = run
    assert done.returncode == 1 and "Traceback" not in done.stderr  # some files failed, the run went on
    said = {item["path"]: item["reason"] for item in report["failures"]}
    said |= {item["path"]: "skipped" for item in report["skipped_files"]}
    shown = {os.fsencode(str(src / rel)).decode("utf-8", "replace"): what for rel, what in expect.items()}
    pages = {path: what[5:] for path, what in shown.items() if what.startswith("page ")}
    for path, what in shown.items():
        if path in pages:
            assert path not in said, (path, said.get(path))
        else:
            assert path in said and said[path].startswith(what), (path, said.get(path), what)
    assert report["converted"] == len(pages) and report["not_done"] == 0 and report["unchanged"] == 0
    catalogue = Catalogue(f"sqlite:///{data / 'catalogue.db'}")
    with catalogue.sessions() as s:
        rows = {f"{d}/{p}" for d, p in s.execute(select(Document.ident, Image.ident).join(Image))}
        created = {a.document_ident for a in s.scalars(select(Activity).where(
            Activity.type == "Create", Activity.object_type == "Manifest", Activity.document_ident.is_not(None)))}
    assert rows == set(pages.values())
    assert created == {page.split("/")[0] for page in pages.values()}
    settings = config.Settings(data_dir=data, demo=False)
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        for page in pages.values():
            r = await c.get(f"/iiif/3/{quote('box/' + page, safe='')}/info.json")
            assert r.status_code == 200, page
        turned = (await c.get(f"/iiif/3/{quote('box/letters/p2', safe='')}/info.json")).json()
        assert (turned["width"], turned["height"]) == (900, 1200)
        for name in ("secret", "letters/out", "letters/scan", "letters/broken"):
            assert (await c.get(f"/iiif/3/{quote('box/' + name, safe='')}/info.json")).status_code == 404
    app.state.runtime.shutdown()
    app.state.catalogue.engine.dispose()
    catalogue.engine.dispose()
