"""Ingest an archivist can trust: real names, every file accounted for, stoppable, crash-consistent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import pyvips
from PIL import Image as PILImage
from sqlalchemy import func, select

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import UNPLACED, Document, Image
from iiif_server.ingest.run import Ingest
from iiif_server.web.app import create_app

LEVY = "Dossier Lévy 1942"


def solid(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return (pyvips.Image.black(width, height, bands=3) + colour).cast("uchar").copy(interpretation="srgb")


def write_mixed_document(src: Path) -> Path:
    """p1 png, p2 gif, p3 bmp, p5 corrupt, p10 jpg: widths tell the pages apart."""
    folder = src / unicodedata.normalize("NFD", LEVY)  # as some file systems store it
    folder.mkdir(parents=True)
    solid(40, 30, [255, 0, 0]).pngsave(str(folder / "p1.png"))
    solid(41, 30, [0, 255, 0]).gifsave(str(folder / "p2.gif"))
    PILImage.fromarray(np.full((30, 42, 3), [0, 0, 255], np.uint8)).save(folder / "p3.bmp")
    (folder / "p5.jpg").write_bytes(b"\xff\xd8\xff" + bytes(200))
    solid(43, 30, [255, 255, 0]).jpegsave(str(folder / "p10.jpg"))
    for name in ("Brief é", "Brief è"):  # names that differ only in an accent
        (src / name).mkdir()
        solid(44 if name.endswith("é") else 45, 30, [9, 9, 9]).pngsave(str(src / name / "1.png"))
    return folder


def pages(catalogue: Catalogue) -> list[tuple[str, str, str, int]]:
    with catalogue.sessions() as s:
        rows = s.execute(select(Document.ident, Image.ident, Image.label, Image.width)
                         .join(Image, Image.document_pk == Document.pk).order_by(Document.ident, Image.position))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_unicode_names_gif_and_bmp_pages_keep_their_names_and_places(catalogue: Catalogue,
                                                                          tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    write_mixed_document(src)
    csv = tmp_path / "metadata.csv"
    csv.write_text(f"id,label\n{unicodedata.normalize('NFD', LEVY)},\n", encoding="utf-8")  # the name as on disk
    report = Ingest(catalogue, root, "family", workers=2).run(src, csv)
    [(path, reason)] = report.failed
    assert path == src / unicodedata.normalize("NFD", LEVY) / "p5.jpg"
    assert reason.startswith("unreadable JPEG: ") and "premature end of jpeg" in reason.lower()
    assert pages(catalogue) == [("Brief è", "1", "1", 45), ("Brief é", "1", "1", 44),
                                (LEVY, "p1", "1", 40), (LEVY, "p2", "2", 41), (LEVY, "p3", "3", 42),
                                (LEVY, "p10", "5", 43)]  # p10 keeps its place after the failed p5
    assert catalogue.document("family", LEVY).label == LEVY
    assert (root / "family" / LEVY / "p3.tif").exists()
    settings = config.Settings(database=catalogue.url, data_dir=tmp_path / "data", images=root, demo=False)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        manifest = (await client.get(f"/iiif/presentation/family/{quote(LEVY)}/manifest")).json()
        assert manifest["label"] == {"none": [LEVY]} or LEVY in json.dumps(manifest, ensure_ascii=False)
        service = manifest["items"][3]["items"][0]["items"][0]["body"]["service"][0]
        assert service["id"].endswith("/iiif/3/" + quote(f"family/{LEVY}/p10", safe=""))
        info = await client.get(f"/iiif/3/{quote(f'family/{LEVY}/p10', safe='')}/info.json")
        assert info.status_code == 200 and info.json()["width"] == 43
    app.state.catalogue.engine.dispose()
    again = Ingest(catalogue, root, "family", workers=2).run(src, csv)
    assert (again.converted, again.unchanged) == (0, 6)


# -- stopping and killing the CLI --------------------------------------------------------


def many_documents(src: Path, count: int = 30) -> None:
    rng = np.random.default_rng(5)
    for n in range(count):
        folder = src / f"doc {n:02d}"
        folder.mkdir(parents=True)
        for p in range(2):
            noise = rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)
            pyvips.Image.new_from_array(noise).copy(interpretation="srgb").jpegsave(str(folder / f"{p}.jpg"), Q=80)


def start_ingest(src: Path, tmp_path: Path, database: str, mark: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INGEST_TEST_MARK": mark}
    return subprocess.Popen([sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "family",
                             "--processes", "2", "--database", database, "--data-dir", str(tmp_path / "data"),
                             "--images", str(tmp_path / "images"), "--report", str(tmp_path / "reports")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_copy(root: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any(p.suffix == ".tif" for p in root.rglob("*.tif") if not p.name.startswith(".")):
            return
        time.sleep(0.05)
    pytest.fail("no access copy appeared")


def marked_processes(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"INGEST_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def stream(catalogue: Catalogue) -> list[tuple[str, str, str | None, str]]:
    _, rows = catalogue.activities(1, 100_000, False)
    return sorted(((a.type, a.object_type, a.document_ident, a.tier) for a in rows), key=repr)


def served(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_sigint_stops_at_once_commits_finished_documents_and_exits_130(tmp_path: Path) -> None:
    src = tmp_path / "masters"
    many_documents(src)
    database = f"sqlite:///{tmp_path / 'catalogue.db'}"
    proc = start_ingest(src, tmp_path, database, "sigint")
    wait_for_copy(tmp_path / "images", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err.decode()
    report = json.loads(next((tmp_path / "reports").glob("*.json")).read_text())
    assert report["stopped_by"] == "SIGINT" and report["not_done"] > 0
    assert report["converted"] + report["not_done"] + report["unchanged"] <= 60
    catalogue = Catalogue(database)
    copies = {p for p in served(tmp_path / "images")}
    rows = {f"family/{d}/{i}.tif" for d, i, *_ in pages(catalogue)}
    assert copies == rows  # nothing visible without its rows, no row without its copy
    assert len(rows) == report["converted"] and len(rows) % 2 == 0  # whole documents only
    assert marked_processes("sigint") == []


def assert_published_whole(catalogue: Catalogue) -> None:
    """Each document with pages is in its collection's listing and announced, with both its pages; one
    without is neither (issue 18: listing, pages and Create in one commit)."""
    with catalogue.sessions() as session:
        documents = session.execute(select(Document.ident, Document.position, Document.pk)).all()
        counts = dict(session.execute(select(Image.document_pk, func.count()).group_by(Image.document_pk)).all())
    created = {a[2] for a in stream(catalogue) if a[:2] == ("Create", "Manifest") and a[2]}
    listed = {e.ident for e in catalogue.entries("family", 0, 1000)} if documents else set()
    for ident, position, pk in documents:
        assert counts.get(pk, 0) in (0, 2), (ident, counts.get(pk))
        if counts.get(pk):
            assert position >= 0 and ident in listed and ident in created, ident
        else:
            assert position == UNPLACED and ident not in listed and ident not in created, ident
    catalogue.engine.dispose()


def test_killed_ingest_leaves_no_workers_and_a_rerun_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    src = tmp_path / "masters"
    many_documents(src, 16)
    whole = tmp_path / "whole"
    reference = Catalogue(f"sqlite:///{whole / 'catalogue.db'}")
    whole.mkdir()
    reference.upgrade()
    assert Ingest(reference, whole / "images", "family", workers=2).run(src).failed == []
    rng = random.Random(7)
    for attempt in range(2):
        base = tmp_path / f"crash{attempt}"
        base.mkdir()
        database = f"sqlite:///{base / 'catalogue.db'}"
        mark = f"kill{attempt}"
        proc = start_ingest(src, base, database, mark)
        wait_for_copy(base / "images", proc)
        time.sleep(rng.uniform(0, 1.5))
        proc.kill()
        proc.wait()
        time.sleep(1.5)  # the parent-death signal, or the workers' watch, has acted
        assert marked_processes(mark) == []
        assert_published_whole(Catalogue(database))  # before any re-run: what was committed is complete
        rerun = start_ingest(src, base, database, mark + "b")
        rerun.communicate(timeout=300)
        assert rerun.returncode == 0
        catalogue = Catalogue(database)
        assert pages(catalogue) == pages(reference)
        assert stream(catalogue) == stream(reference)
        assert served(base / "images") == served(whole / "images")  # no leftover temporary files
        catalogue.engine.dispose()


# -- operator errors are one line ---------------------------------------------------------


def test_serve_refuses_a_missing_image_folder_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iiif_server.cli import main

    result = CliRunner().invoke(main, ["serve", "--images", str(tmp_path / "unmounted"),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: the image folder {tmp_path / 'unmounted'} does not exist: mount it, "
        "or pass --create-images to start with an empty one"]
    assert not (tmp_path / "unmounted").exists()


def test_a_corrupt_catalogue_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from iiif_server.cli import main

    bad = tmp_path / "catalogue.db"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    result = CliRunner().invoke(main, ["collections", "--database", f"sqlite:///{bad}",
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert str(bad) in line and "restore it from a backup" in line
