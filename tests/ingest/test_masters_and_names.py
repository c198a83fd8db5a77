"""What an archivist's folders hold, accounted for by name (issue 18): phones' HEIC, PDFs named as PDFs,
warnings tied to their file, two spellings of one name both refused, a stopped run's report that adds up, and
serve's word for worker processes."""

from __future__ import annotations

import os
import unicodedata
import warnings
from pathlib import Path

import pytest
import pyvips
from click.testing import CliRunner
from support import quadrants

from iiif_server import cli
from iiif_server.db.catalogue import Catalogue
from iiif_server.ingest.convert import process_master, said_meanwhile
from iiif_server.ingest.report import Report, render_report
from iiif_server.ingest.run import Ingest


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:  # type: ignore[misc]
    cat = Catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}")
    cat.upgrade()
    yield cat
    cat.engine.dispose()


def test_a_phones_heic_photo_is_a_page(catalogue: Catalogue, tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image as PILImage

    src = tmp_path / "masters" / "phone"
    src.mkdir(parents=True)
    pillow_heif.register_heif_opener()
    PILImage.new("RGB", (640, 480), (200, 30, 30)).save(src / "IMG_0001.HEIC", quality=90)
    report = Ingest(catalogue, tmp_path / "images", "c", workers=1).run(tmp_path / "masters")
    assert report.failed == [] and report.converted == 1
    copy = pyvips.Image.new_from_file(str(tmp_path / "images" / "c" / "phone" / "IMG_0001.tif"))
    assert (copy.width, copy.height) == (640, 480)
    assert abs(copy.extract_band(0).avg() - 200) < 8 and copy.extract_band(1).avg() < 50


def test_a_pdf_is_named_as_a_pdf(catalogue: Catalogue, tmp_path: Path) -> None:
    src = tmp_path / "masters" / "letters"
    src.mkdir(parents=True)
    (src / "scan.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
    (src / "damaged.tif").write_bytes(b"II*\0" + b"\x08\0\0\0" + b"\xff" * 40)
    quadrants(64, 48).jpegsave(str(src / "p1.jpg"))
    report = Ingest(catalogue, tmp_path / "images", "c", workers=1).run(tmp_path / "masters")
    reasons = {path.name: reason for path, reason in report.failed}
    assert reasons["scan.pdf"].startswith("a PDF document, not an image"), reasons
    assert reasons["damaged.tif"].startswith("unreadable TIFF: "), reasons
    assert report.converted == 1


def test_what_a_library_prints_while_reading_a_master_is_tied_to_it() -> None:
    with said_meanwhile() as said:
        os.write(2, b"TIFFReadDirectory: Warning, Unknown field with tag 65000 (0xfde8) encountered.\n")
        warnings.warn("Palette images with Transparency expressed in bytes should be converted", stacklevel=1)
    assert sorted(said) == ["Palette images with Transparency expressed in bytes should be converted",
                            "TIFFReadDirectory: Warning, Unknown field with tag 65000 (0xfde8) encountered."]
    report = Report(warnings=[(Path("/masters/a/p1.tif"), sorted(said)[1])])
    text, data = render_report(report, Path("/masters"), "c")
    assert "warning /masters/a/p1.tif: TIFFReadDirectory: Warning, Unknown field" in text
    assert data["warnings"][0]["path"] == "/masters/a/p1.tif"


def test_a_worker_keeps_what_libraries_print_with_its_master(tmp_path: Path) -> None:
    master = tmp_path / "p1.png"
    quadrants(64, 48).pngsave(str(master))
    outcome = process_master(str(master), "p1", str(tmp_path), None, False)
    assert outcome.error is None and outcome.warnings == []  # a clean master says nothing


def test_two_spellings_of_one_name_are_both_refused(catalogue: Catalogue, tmp_path: Path) -> None:
    """NFC and NFD of one name (a Mac copied onto a share), and a folder beside a file of its name: whichever
    the directory lists first, neither is ingested and both are said."""
    src = tmp_path / "masters"
    for name in (unicodedata.normalize("NFC", "Dossier Lévy"), unicodedata.normalize("NFD", "Dossier Lévy"), "Brief"):
        (src / name).mkdir(parents=True)
        quadrants(64, 48).jpegsave(str(src / name / "p1.jpg"))
    quadrants(64, 48).jpegsave(str(src / "Brief.jpg"))
    quadrants(64, 48).jpegsave(str(src / "Other.jpg"))
    report = Ingest(catalogue, tmp_path / "images", "c", workers=1).run(src)
    failed = sorted(str(path.relative_to(src)) for path, _ in report.failed)
    assert failed == sorted(["Brief.jpg", str(Path("Brief") / "p1.jpg"),
                             str(Path(unicodedata.normalize("NFC", "Dossier Lévy")) / "p1.jpg"),
                             str(Path(unicodedata.normalize("NFD", "Dossier Lévy")) / "p1.jpg")])
    assert all("rename one of them" in reason for _, reason in report.failed)
    assert report.converted == 1 and catalogue.document("c", "Other") is not None


def test_ingest_calls_its_processes_workers_as_serve_does(tmp_path: Path) -> None:
    src = tmp_path / "masters"
    src.mkdir()
    quadrants(64, 48).jpegsave(str(src / "p1.jpg"))
    for flag in ("--workers", "--processes"):
        result = CliRunner().invoke(cli.main, ["ingest", str(src), "--collection", "c", flag, "1",
                                               "--data-dir", str(tmp_path / flag)])
        assert result.exit_code == 0, result.output
    assert "--workers" in CliRunner().invoke(cli.main, ["ingest", "--help"]).output
