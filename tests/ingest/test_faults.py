"""Faults that make every file fail stop an ingest at once, with one clear line, publishing no partial document
(issue 18): the image root's disk full, the catalogue's disk full. Each runs on a real, small file system (a
tmpfs mounted for the test: root only; skipped otherwise, required where IIIF_SERVER_REQUIRE_MOUNT is set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips
from sqlalchemy import select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Document, Image

REQUIRE = "IIIF_SERVER_REQUIRE_MOUNT"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set but a tmpfs cannot be mounted: {done.stderr.strip()}")
        pytest.skip(f"needs to mount a small tmpfs (root): {done.stderr.strip()[:200]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def noise(width: int, height: int) -> pyvips.Image:
    """A master whose access copy is large (noise does not compress)."""
    return (pyvips.Image.gaussnoise(width, height, sigma=60, mean=128).cast("uchar").bandjoin([
        pyvips.Image.gaussnoise(width, height, sigma=60, mean=128).cast("uchar")] * 2).copy(interpretation="srgb"))


def masters(src: Path, documents: int = 8, pages: int = 2) -> list[Path]:
    out = []
    for d in range(documents):
        (src / f"doc{d}").mkdir(parents=True)
        for p in range(pages):
            path = src / f"doc{d}" / f"p{p + 1}.png"
            noise(900, 700).pngsave(str(path), compression=1)
            out.append(path)
    return out


def ingest(src: Path, data: Path, images: Path, database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "c",
                           "--data-dir", str(data), "--images", str(images), "--database", database,
                           "--workers", "2"], capture_output=True, text=True, timeout=600)


def report_of(data: Path) -> dict:  # type: ignore[type-arg]
    [path] = (data / "reports").glob("ingest-c-*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def committed(database: str) -> dict[str, int]:
    catalogue = Catalogue(database)
    with catalogue.sessions() as session:
        rows = session.execute(select(Document.ident, Image.ident).join(Image, Image.document_pk == Document.pk))
        found: dict[str, int] = {}
        for doc, _ in rows:
            found[doc] = found.get(doc, 0) + 1
    catalogue.engine.dispose()
    return found


def test_a_full_image_disk_stops_the_run_at_once_with_one_line(small_disk: Path, tmp_path: Path) -> None:
    src, data = tmp_path / "masters", tmp_path / "data"
    all_masters = masters(src)
    database = f"sqlite:///{tmp_path / 'catalogue.db'}"
    done = ingest(src, data, small_disk, database)
    assert done.returncode == 3, done.stderr
    assert "no space left on the disk" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("unreadable") == 0  # no master is blamed
    report = report_of(data)
    assert report["fatal"].startswith("no space left on the disk")
    # every master accounted for, and no document published with some of its pages missing
    assert report["converted"] + report["failed"] + report["not_done"] == len(all_masters)
    assert report["failed"] == 0
    assert set(committed(database).values()) <= {2}
    assert sum(committed(database).values()) == report["converted"]


def test_a_full_catalogue_disk_stops_the_run_with_one_line(small_disk: Path, tmp_path: Path) -> None:
    src, data = tmp_path / "masters", tmp_path / "data"
    for d in range(400):  # small masters, many documents: the catalogue grows past its disk
        (src / f"document-with-a-long-name-{d:04}-{'x' * 120}").mkdir(parents=True)
        pyvips.Image.black(8, 8).pngsave(str(src / f"document-with-a-long-name-{d:04}-{'x' * 120}" / "p1.png"))
    filler = small_disk / "filler"
    database = f"sqlite:///{small_disk / 'catalogue.db'}"
    catalogue = Catalogue(database)
    catalogue.upgrade()
    catalogue.engine.dispose()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - (96 << 10)))  # leave the catalogue some 96 KiB to grow in
    done = ingest(src, data, tmp_path / "images", database)
    assert done.returncode == 3, done.stderr
    assert "the catalogue cannot be written" in done.stderr and "Traceback" not in done.stderr
    filler.unlink()
    report = report_of(data)
    assert report["fatal"] and "cannot be written" in report["fatal"]
    assert set(committed(database).values()) <= {1}
