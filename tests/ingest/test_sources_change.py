"""When the source changes between runs (issue 18): a master removed or renamed is reported, kept or withdrawn as
asked, and pages keep unique places; a document of the same name from another folder never mixes its pages in;
two runs of one collection at once: the second is refused at once, whatever the catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from support import quadrants

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Document, Image
from iiif_server.errors import Busy
from iiif_server.ingest.run import Ingest


def places(catalogue: Catalogue, document: str) -> list[tuple[int, str]]:
    with catalogue.sessions() as s:
        rows = s.execute(select(Image.position, Image.ident).join(Document, Image.document_pk == Document.pk)
                         .where(Document.ident == document).order_by(Image.position))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def three_pages(src: Path) -> Path:
    folder = src / "letter"
    folder.mkdir(parents=True)
    for n, width in ((1, 60), (2, 62), (3, 64)):
        quadrants(width, 48).jpegsave(str(folder / f"p{n}.jpg"))
    return folder


def test_a_removed_master_is_reported_and_kept_after_the_others(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    folder = three_pages(src)
    Ingest(catalogue, root, "c", workers=1).run(src)
    (folder / "p2.jpg").unlink()
    (folder / "p3.jpg").rename(folder / "p3b.jpg")  # renamed: p3 is gone, p3b is new
    report = Ingest(catalogue, root, "c", workers=1).run(src)
    assert sorted((page, what) for page, _, what in report.missing) == [("c/letter/p2", "kept"),
                                                                         ("c/letter/p3", "kept")]
    found = places(catalogue, "letter")
    assert [position for position, _ in found] == [0, 1, 2, 3]  # unique and dense: never two on one place
    assert [page for _, page in found] == ["p1", "p3b", "p2", "p3"]
    assert (root / "c" / "letter" / "p2.tif").exists()


def test_withdraw_missing_takes_their_pages_out_and_tells_harvesters(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    folder = three_pages(src)
    Ingest(catalogue, root, "c", workers=1).run(src)
    (folder / "p2.jpg").unlink()
    report = Ingest(catalogue, root, "c", workers=1, withdraw_missing=True).run(src)
    assert [(page, what) for page, _, what in report.missing] == [("c/letter/p2", "withdrawn")]
    assert places(catalogue, "letter") == [(0, "p1"), (1, "p3")]
    assert not (root / "c" / "letter" / "p2.tif").exists()
    with catalogue.sessions() as s:
        last = s.scalars(select(Activity).where(Activity.document_ident == "letter").order_by(Activity.id.desc()))
        assert next(iter(last)).type == "Update"
    assert catalogue.collection("c").image_count == 2
    for name in ("p1.jpg", "p3.jpg"):  # every master gone: the document goes too
        (folder / name).unlink()
    (src / "other").mkdir()
    quadrants(60, 48).jpegsave(str(src / "other" / "p1.jpg"))
    Ingest(catalogue, root, "c", workers=1, withdraw_missing=True).run(src)
    assert catalogue.document("c", "letter") is None and catalogue.collection("c").document_count == 1


def test_a_document_from_another_folder_never_mixes_its_pages_in(catalogue: Catalogue, tmp_path: Path) -> None:
    first, second, root = tmp_path / "first", tmp_path / "second", tmp_path / "images"
    three_pages(first)
    (second / "letter").mkdir(parents=True)
    quadrants(90, 48).jpegsave(str(second / "letter" / "p1.jpg"))
    Ingest(catalogue, root, "c", workers=1).run(first)
    report = Ingest(catalogue, root, "c", workers=1).run(second)
    [(path, reason)] = report.failed
    assert path == second / "letter" / "p1.jpg" and "another folder" in reason and "--new-source" in reason
    assert [page for _, page in places(catalogue, "letter")] == ["p1", "p2", "p3"]
    with catalogue.sessions() as s:
        width = s.scalar(select(Image.width).join(Document).where(Document.ident == "letter", Image.ident == "p1"))
    assert width == 60  # untouched
    report = Ingest(catalogue, root, "c", workers=1, new_source=True, withdraw_missing=True).run(second)
    assert report.failed == [] and places(catalogue, "letter") == [(0, "p1")]


def test_a_second_run_of_a_collection_is_refused_while_one_runs(catalogue: Catalogue, tmp_path: Path) -> None:
    with catalogue.run_lock("c"):
        with pytest.raises(Busy, match="another ingest of collection 'c' is running"):
            with catalogue.run_lock("c"):
                pass
        with catalogue.run_lock("other"):  # other collections are free
            pass
    with catalogue.run_lock("c"):  # and free again once the first has ended
        pass


def test_two_ingest_commands_at_once_one_refused_in_one_line(database_url: str, tmp_path: Path) -> None:
    src = tmp_path / "masters"
    for d in range(6):
        (src / f"doc{d}").mkdir(parents=True)
        quadrants(1600, 1200).jpegsave(str(src / f"doc{d}" / "p1.jpg"))
    args = [sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "c", "--database",
            database_url, "--data-dir", str(tmp_path / "data"), "--workers", "1"]
    catalogue = Catalogue(database_url)
    # a run of this collection holds the lock (as the first command would: the lock, not a race with its
    # start-up on a busy machine, is what is tested); a second command is refused in one line
    with catalogue.run_lock("c"):
        second = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and "another ingest of collection 'c' is running" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1, second.stderr
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert catalogue.collection("c").document_count == 6
    catalogue.engine.dispose()
