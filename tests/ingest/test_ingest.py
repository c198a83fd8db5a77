"""Ingest: folders of masters -> pyramidal TIFF access copies + catalogue rows, re-runs, metadata CSV, CLI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import pyvips
import tifffile
from click.testing import CliRunner
from sqlalchemy import select
from support import page_tier, quadrants

from iiif_server import config
from iiif_server.cli import main
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Document, Image
from iiif_server.ingest.metadata import CsvError, read_metadata_csv
from iiif_server.ingest.run import Ingest
from iiif_server.ingest.scan import natural_key, scan_source
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import Encoding, encode, render
from iiif_server.tiles.request import Limits, parse, resolve
from iiif_server.web.app import create_app

RED, GREEN, BLUE = [255, 0, 0], [0, 255, 0], [0, 0, 255]


# -- masters ------------------------------------------------------------------------


def solid(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return (pyvips.Image.black(width, height, bands=3) + colour).cast("uchar").copy(interpretation="srgb")


def write_letter(src: Path) -> None:
    """A document folder whose pages sort naturally (p2 before p10); widths tell the pages apart."""
    letter = src / "letter"
    letter.mkdir(parents=True, exist_ok=True)
    solid(60, 40, RED).jpegsave(str(letter / "p1.jpg"), Q=95)
    solid(61, 40, GREEN).pngsave(str(letter / "p10.png"))
    solid(62, 40, BLUE).tiffsave(str(letter / "p2.tif"))


def write_multipage_tiff(path: Path, colours: list[list[int]], width: int = 50, height: int = 40) -> None:
    pages = pyvips.Image.arrayjoin([solid(width, height, c) for c in colours], across=1).copy()
    pages.set_type(pyvips.GValue.gint_type, "page-height", height)
    pages.tiffsave(str(path))


def write_16bit_tiff(path: Path) -> None:
    """Quadrants red, green, blue, white with 16 bits per sample."""
    a = np.zeros((48, 64, 3), np.uint16)
    a[:24, :32] = [65535, 0, 0]
    a[:24, 32:] = [0, 65535, 0]
    a[24:, :32] = [0, 0, 65535]
    a[24:, 32:] = 65535
    tifffile.imwrite(path, a, photometric="rgb")


def write_cmyk_jpeg(path: Path) -> None:
    """Left half magenta+yellow ink (red), right half no ink (paper white)."""
    img = pyvips.Image.black(64, 32, bands=4).draw_rect([0, 255, 255, 0], 0, 0, 32, 32, fill=True)
    img.cast("uchar").copy(interpretation="cmyk").jpegsave(str(path), Q=95)


def write_truncated_tiff(path: Path) -> None:
    """A striped TIFF whose header is whole but whose pixel data stops half way."""
    data = np.random.default_rng(1).integers(0, 255, (200, 300, 3)).astype(np.uint8)
    tifffile.imwrite(path, data, photometric="rgb", rowsperstrip=8)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def write_masters(src: Path) -> None:
    write_letter(src)
    quadrants(300, 200).jpegsave(str(src / "photo.jpg"), Q=95)  # loose image: a one-page document
    quadrants(1100, 800).pngsave(str(src / "map.png"))  # large enough for a pyramid of several levels
    write_multipage_tiff(src / "bundle.tif", [RED, GREEN, BLUE])
    write_16bit_tiff(src / "deep.tif")
    write_cmyk_jpeg(src / "cmyk.jpg")
    (src / "broken.jpg").write_bytes(np.random.default_rng(2).bytes(4000))  # random bytes named .jpg
    write_truncated_tiff(src / "torn.tif")


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def copies(root: Path) -> dict[Path, int]:
    """Access copies and their mtimes."""
    return {p: p.stat().st_mtime_ns for p in sorted(root.rglob("*.tif"))}


def pixel(path: Path, x: int, y: int) -> list[float]:
    return pyvips.Image.new_from_file(str(path))(x, y)


def close(actual: list[float], expected: list[int], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def run(catalogue: Catalogue, root: Path, src: Path, csv: Path | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    return Ingest(catalogue, root, "family", workers=2, **kwargs).run(src, csv)  # type: ignore[arg-type]


def images(catalogue: Catalogue) -> dict[tuple[str, str], Image]:
    with catalogue.sessions() as s:
        rows = s.execute(select(Document.ident, Image).join(Image, Image.document_pk == Document.pk)).all()
    return {(d, img.ident): img for d, img in rows}


def activities(catalogue: Catalogue, public_only: bool = False) -> list[tuple[str, str, str | None, str]]:
    _, rows = catalogue.activities(1, 10_000, public_only)
    return [(a.type, a.object_type, a.document_ident, a.tier) for a in rows]


def state(catalogue: Catalogue) -> tuple[int, int | None, int]:
    """What must not move when nothing changed: version, revision, number of activities."""
    return catalogue.version(), catalogue.revision("family"), len(activities(catalogue))


# -- a first run over a folder of mixed masters ----------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One ingest of every kind of master (SQLite), for the checks on files."""
    base = tmp_path_factory.mktemp("mixed")
    src, root = base / "masters", base / "images"
    write_masters(src)
    before = snapshot(src)
    cat = Catalogue(f"sqlite:///{base / 'catalogue.db'}")
    cat.upgrade()
    report = run(cat, root, src)
    yield SimpleNamespace(src=src, root=root, report=report, before=before, catalogue=cat)
    cat.engine.dispose()


def test_natural_key_puts_p2_before_p10() -> None:
    assert sorted(["p10", "p2", "P1", "p1a", "p100"], key=natural_key) == ["P1", "p1a", "p2", "p10", "p100"]


def test_scan_finds_folder_documents_and_loose_files_by_their_real_names(tmp_path: Path) -> None:
    write_letter(tmp_path)
    solid(10, 10, RED).pngsave(str(tmp_path / "photo 1.png"))
    (tmp_path / "notes.txt").write_text("not an image")  # a candidate: its reader decides, and reports
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    documents, report = scan_source(tmp_path)
    assert list(documents) == ["letter", "notes", "photo 1"]
    assert [m.path.name for m in documents["letter"].masters] == ["p1.jpg", "p2.tif", "p10.png"]
    assert report.skipped == [(tmp_path / ".hidden.jpg", "hidden or system file")]
    assert report.failed == [(tmp_path / "empty.png", "empty file")]


def test_folders_become_documents_with_pages_in_natural_order_on_each_backend(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    write_masters(src)
    run(catalogue, root, src)
    pages = [(p.document, p.ident, p.label, p.width) for p in catalogue.pages("family")]
    by_doc: dict[str, list[tuple[str, str, int]]] = {}
    for doc, page, label, width in pages:
        by_doc.setdefault(doc, []).append((page, label, width))
    # documents in natural order; the corrupt and truncated masters left no document behind
    assert list(by_doc) == ["bundle", "cmyk", "deep", "letter", "map", "photo"]
    assert by_doc["letter"] == [("p1", "1", 60), ("p2", "2", 62), ("p10", "3", 61)]
    assert by_doc["photo"] == [("photo", "1", 300)]
    assert [p for p, _, _ in by_doc["bundle"]] == ["bundle-1", "bundle-2", "bundle-3"]


def test_catalogue_holds_size_checksum_and_source_of_every_page_on_each_backend(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    write_letter(src)
    write_multipage_tiff(src / "bundle.tif", [RED, GREEN])
    run(catalogue, root, src)
    rows = images(catalogue)
    assert set(rows) == {("letter", "p1"), ("letter", "p2"), ("letter", "p10"), ("bundle", "bundle-1"),
                         ("bundle", "bundle-2")}
    for (doc, page), img in rows.items():
        master = Path(img.source_path)
        assert master.is_absolute() and master.parent in (src.resolve(), (src / "letter").resolve())
        assert img.checksum == hashlib.sha256(master.read_bytes()).hexdigest()
        copy = pyvips.Image.new_from_file(str(root / "family" / doc / f"{page}.tif"))
        assert (img.width, img.height) == (copy.width, copy.height)
    assert (rows[("letter", "p2")].width, rows[("letter", "p2")].height) == (62, 40)
    assert [rows[("bundle", p)].source_page for p in ("bundle-1", "bundle-2")] == [0, 1]


@pytest.mark.libvips
def test_multipage_tiff_gives_one_page_per_image_in_order(mixed: SimpleNamespace) -> None:
    folder = mixed.root / "family" / "bundle"
    assert sorted(p.name for p in folder.iterdir()) == ["bundle-1.tif", "bundle-2.tif", "bundle-3.tif"]
    for name, colour in (("bundle-1", RED), ("bundle-2", GREEN), ("bundle-3", BLUE)):
        assert close(pixel(folder / f"{name}.tif", 25, 20), colour)


@pytest.mark.libvips
def test_access_copies_are_tiled_pyramidal_jpeg_tiffs_at_collection_document_page(mixed: SimpleNamespace) -> None:
    expected = {"bundle/bundle-1", "bundle/bundle-2", "bundle/bundle-3", "cmyk/cmyk", "deep/deep", "letter/p1",
                "letter/p2", "letter/p10", "map/map", "photo/photo"}
    found = {p.relative_to(mixed.root / "family").with_suffix("").as_posix() for p in mixed.root.rglob("*.tif")}
    assert found == expected
    with tifffile.TiffFile(mixed.root / "family" / "map" / "map.tif") as tif:
        pages = [p for p in tif.pages if p.is_tiled]  # the pyramid; then the thumbnail and the edge tiles in strips
        assert len(pages) >= 3
        appended = tif.pages[len(pages):]
        assert [(p.shape[:2], p.is_tiled) for p in appended[:1]] == [((145, 200), False)]
        assert [p.description.split(" q=")[0] for p in appended] == ["iiif-server thumbnail 2", "iiif-server edges"]
        for page in pages:
            assert page.is_tiled and page.compression == 7 and page.bitspersample == 8
        for bigger, smaller in zip(pages, pages[1:], strict=False):
            assert abs(smaller.shape[0] - bigger.shape[0] / 2) <= 1
            assert abs(smaller.shape[1] - bigger.shape[1] / 2) <= 1
        assert pages[0].shape[:2] == (800, 1100)


@pytest.mark.parametrize("served_quality", [85, 70])
@pytest.mark.libvips
async def test_an_ingested_copy_sends_its_stored_thumbnail_at_the_served_quality(
        mixed: SimpleNamespace, tmp_path: Path, served_quality: int) -> None:
    """The portrait wall's request (`full/!200,200`) is read from the page ingest stored, byte for byte
    what the general path renders, and info.json lists its size; a server set to another JPEG quality
    renders it instead."""
    path = mixed.root / "family" / "map" / "map.tif"
    source = FileSystemSource(mixed.root).open("family/map/map")
    assert set(source.stored) == {(200, 145)}
    offset, count, quality = source.stored[(200, 145)]
    assert quality == 85  # the server's default JPEG quality
    with open(path, "rb") as fh:
        fh.seek(offset)
        page = fh.read(count)
    plan = resolve(parse(3, "full", "!200,200", "0", "default.jpg"), source.width, source.height, Limits())
    general = encode(render(source, plan), "jpg", Encoding(jpeg_quality=served_quality))
    app = create_app(config.Settings(data_dir=tmp_path, images=mixed.root, demo=False, jpeg_quality=served_quality))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        info = (await c.get("/iiif/3/family%2Fmap%2Fmap/info.json")).json()
        assert {"width": 200, "height": 145} in info["sizes"]
        assert info["sizes"] == sorted(info["sizes"], key=lambda s: (s["width"], s["height"]))
        r = await c.get("/iiif/3/family%2Fmap%2Fmap/full/!200,200/0/default.jpg")
    app.state.catalogue.engine.dispose()
    assert r.status_code == 200
    assert r.content == general
    assert (r.content == page) is (served_quality == 85)
    sent, rendered = (pyvips.Image.new_from_buffer(b, "") for b in (r.content, general))
    assert (sent.width, sent.height) == (200, 145)
    assert (sent - rendered).abs().max() == 0


@pytest.mark.libvips
def test_16bit_tiff_becomes_an_8bit_srgb_copy_with_the_same_colours(mixed: SimpleNamespace) -> None:
    path = mixed.root / "family" / "deep" / "deep.tif"
    img = pyvips.Image.new_from_file(str(path))
    assert (img.format, img.bands, img.interpretation) == ("uchar", 3, "srgb")
    for (x, y), colour in {(16, 12): RED, (48, 12): GREEN, (16, 36): BLUE, (48, 36): [255, 255, 255]}.items():
        assert close(pixel(path, x, y), colour), (x, y, pixel(path, x, y))


@pytest.mark.libvips
def test_cmyk_jpeg_becomes_an_8bit_srgb_copy_with_the_right_colours(mixed: SimpleNamespace) -> None:
    path = mixed.root / "family" / "cmyk" / "cmyk.tif"
    img = pyvips.Image.new_from_file(str(path))
    assert (img.format, img.bands, img.interpretation) == ("uchar", 3, "srgb")
    red, paper = pixel(path, 12, 16), pixel(path, 52, 16)
    assert red[0] > 200 and red[1] < 80 and red[2] < 80, red  # magenta + yellow ink is red, not inverted
    assert min(paper) > 240, paper


@pytest.mark.libvips
def test_corrupt_and_truncated_masters_are_reported_by_path_and_reason_and_skipped(mixed: SimpleNamespace) -> None:
    failed = dict(mixed.report.failed)
    assert set(failed) == {mixed.src / "broken.jpg", mixed.src / "torn.tif"}
    assert "not a known file format" in failed[mixed.src / "broken.jpg"]
    assert "read error" in failed[mixed.src / "torn.tif"].lower()  # the cause, not "unable to call tiffsave"
    assert mixed.report.converted == 10
    assert {p.document for p in mixed.catalogue.pages("family")} == {"bundle", "cmyk", "deep", "letter", "map",
                                                                      "photo"}
    assert not list((mixed.root / "family").rglob("torn*"))


def test_no_temporary_file_is_left_behind(mixed: SimpleNamespace) -> None:
    assert list(mixed.root.rglob(".ingest-*")) == []
    assert list(mixed.src.rglob(".ingest-*")) == []


def test_masters_are_never_modified(mixed: SimpleNamespace) -> None:
    assert snapshot(mixed.src) == mixed.before


# -- re-runs ------------------------------------------------------------------------------


def small_source(tmp_path: Path) -> tuple[Path, Path, Path]:
    src, root = tmp_path / "masters", tmp_path / "images"
    write_letter(src)
    quadrants(80, 60).jpegsave(str(src / "photo.jpg"))
    csv = tmp_path / "metadata.csv"
    csv.write_text("id,label,date,tier,summary,rights,Type\n"
                   "letter,A letter,1943-05-12,,Two pages,http://rightsstatements.org/vocab/InC/1.0/,Letter\n"
                   "photo,A photo,1938,,,,Photograph\n")
    return src, root, csv


def test_second_run_converts_nothing_and_changes_nothing(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, csv = small_source(tmp_path)
    first = run(catalogue, root, src, csv)
    assert (first.converted, first.unchanged, first.failed) == (4, 0, [])
    before, files = state(catalogue), copies(root)
    second = run(catalogue, root, src, csv)  # the same CSV again changes nothing either
    assert (second.converted, second.unchanged, second.failed) == (0, 4, [])
    assert state(catalogue) == before
    assert copies(root) == files


def test_touching_a_master_rechecks_its_checksum_and_converts_nothing(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, _ = small_source(tmp_path)
    run(catalogue, root, src)
    before, files = state(catalogue), copies(root)
    master = src / "letter" / "p2.tif"
    st = master.stat()
    os.utime(master, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    report = run(catalogue, root, src)
    assert (report.converted, report.unchanged, report.failed) == (0, 4, [])
    assert state(catalogue) == before
    assert copies(root) == files
    # the new mtime is remembered: the next run does not even read the master again
    assert images(catalogue)[("letter", "p2")].source_mtime == master.stat().st_mtime


def test_changing_a_masters_pixels_reconverts_only_that_master_and_records_an_update(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root, _ = small_source(tmp_path)
    run(catalogue, root, src)
    version, files, old = catalogue.version(), copies(root), len(activities(catalogue))
    master = src / "letter" / "p2.tif"
    solid(62, 40, [200, 200, 0]).tiffsave(str(master))
    report = run(catalogue, root, src)
    assert (report.converted, report.unchanged, report.failed) == (1, 3, [])
    changed = {p for p, mtime in copies(root).items() if files[p] != mtime}
    assert changed == {root / "family" / "letter" / "p2.tif"}
    assert close(pixel(root / "family" / "letter" / "p2.tif", 30, 20), [200, 200, 0])
    assert images(catalogue)[("letter", "p2")].checksum == hashlib.sha256(master.read_bytes()).hexdigest()
    assert catalogue.version() == version + 1
    new = activities(catalogue)[old:]
    assert ("Update", "Manifest", "letter", "public") in new
    assert all(kind == "Update" for kind, _, _, _ in new)
    assert not any(doc == "photo" for _, _, doc, _ in new)


def test_page_added_between_others_on_a_rerun_takes_its_place_in_natural_order(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root, _ = small_source(tmp_path)
    run(catalogue, root, src)
    solid(63, 40, RED).pngsave(str(src / "letter" / "p3.png"))
    solid(20, 20, RED).pngsave(str(src / "album.png"))  # a new document that sorts first
    report = run(catalogue, root, src)
    assert (report.converted, report.failed) == (2, [])
    pages = [(p.document, p.ident, p.label) for p in catalogue.pages("family")]
    assert pages == [("album", "album", "1"), ("letter", "p1", "1"), ("letter", "p2", "2"), ("letter", "p3", "3"),
                     ("letter", "p10", "4"), ("photo", "photo", "1")]


def test_pages_in_nested_folders_of_a_document_do_not_overwrite_each_other(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    for side, colour in (("recto", RED), ("verso", GREEN)):
        (src / "deed" / side).mkdir(parents=True)
        solid(30, 20, colour).pngsave(str(src / "deed" / side / "001.png"))
    report = run(catalogue, root, src)
    assert (report.converted, report.failed) == (2, [])
    assert [p.ident for p in catalogue.pages("family", "deed")] == ["recto_001", "verso_001"]
    assert close(pixel(root / "family" / "deed" / "verso_001.tif", 15, 10), GREEN)
    again = run(catalogue, root, src)
    assert (again.converted, again.unchanged) == (0, 2)


def test_two_masters_with_one_page_id_are_reported_not_overwritten(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root = tmp_path / "masters", tmp_path / "images"
    (src / "letter").mkdir(parents=True)
    solid(30, 20, RED).jpegsave(str(src / "letter" / "p1.jpg"))
    solid(30, 20, GREEN).pngsave(str(src / "letter" / "p1.png"))
    report = run(catalogue, root, src)
    assert report.converted == 1
    assert [(path.name, "'p1'" in why) for path, why in report.failed] == [("p1.png", True)]
    assert close(pixel(root / "family" / "letter" / "p1.tif", 15, 10), RED)


def test_changing_the_collection_tier_at_ingest_withdraws_its_documents_from_the_public_stream(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    src, root, _ = small_source(tmp_path)
    run(catalogue, root, src)
    old = len(activities(catalogue, public_only=True))
    run(catalogue, root, src, tier="staff")
    assert catalogue.collection("family").tier == "staff"
    withdrawn = activities(catalogue, public_only=True)[old:]
    assert sorted((kind, kind_of, doc or "") for kind, kind_of, doc, _ in withdrawn) == [
        ("Remove", "Collection", ""), ("Remove", "Manifest", ""), ("Remove", "Manifest", "letter"),
        ("Remove", "Manifest", "photo")]


# -- metadata CSV ------------------------------------------------------------------------------


def test_good_csv_fills_labels_navdates_tiers_summary_rights_and_metadata(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, _ = small_source(tmp_path)
    csv = tmp_path / "metadata.csv"
    csv.write_text("id,label,date,tier,summary,rights,Type,Place\n"
                   "letter,A typed letter,1943-05-12,reading-room,Two pages,"
                   "https://creativecommons.org/licenses/by/4.0/,Letter,Leiden\n"
                   "photo,A photo,1938-07,,,,Photograph,\n")
    report = run(catalogue, root, src, csv)
    assert report.failed == []
    letter, photo = catalogue.document("family", "letter"), catalogue.document("family", "photo")
    assert (letter.label, letter.tier, letter.summary) == ("A typed letter", "reading-room", "Two pages")
    assert letter.rights == "http://creativecommons.org/licenses/by/4.0/"  # as Presentation 3.0 wants it
    assert letter.metadata_pairs == [["Type", "Letter"], ["Place", "Leiden"]]
    assert (letter.nav_date.year, letter.nav_date.month, letter.nav_date.day) == (1943, 5, 12)
    assert (photo.label, photo.tier, photo.metadata_pairs) == ("A photo", None, [["Type", "Photograph"]])
    assert (photo.nav_date.year, photo.nav_date.month, photo.nav_date.day) == (1938, 7, 1)
    # the reading-room letter never appears in the public stream; the photo does
    public = {doc for _, _, doc, _ in activities(catalogue, public_only=True)}
    assert "photo" in public and "letter" not in public


MALFORMED = {
    "bad date": ("photo,A photo,1938-13-45,,,,Photograph\n", "date"),
    "unknown tier": ("photo,A photo,1938,secret,,,Photograph\n", "tier"),
    "unknown document": ("nobody,Someone,1938,,,,Photograph\n", "no document"),
    "too many fields": ("photo,A photo, 1938, unquoted comma,,,Photograph,1\n", "8 fields where the header names 7"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_csv_row_is_reported_with_its_line_and_nothing_is_ingested(
    catalogue: Catalogue, tmp_path: Path, kind: str
) -> None:
    src, root, _ = small_source(tmp_path)
    row, reason = MALFORMED[kind]
    csv = tmp_path / "bad.csv"
    csv.write_text("id,label,date,tier,summary,rights,Type\nletter,A letter,1943,,,,Letter\n" + row)
    with pytest.raises(CsvError) as caught:
        run(catalogue, root, src, csv)
    assert len(caught.value.errors) == 1
    assert f"{csv}:3:" in caught.value.errors[0] and reason in caught.value.errors[0]
    assert catalogue.collections() == [] and catalogue.version() == 0
    assert not root.exists() or not any(root.rglob("*"))


def test_malformed_csv_on_a_rerun_leaves_the_collection_exactly_as_it_was(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, csv = small_source(tmp_path)
    run(catalogue, root, src, csv)
    before, files = state(catalogue), copies(root)
    solid(20, 20, RED).pngsave(str(src / "album.png"))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label,date,tier,summary,rights,Type\nletter,Renamed,1950,staff,,,Letter\n"
                   "photo,A photo,someday,,,,Photograph\n")
    with pytest.raises(CsvError, match=r":3: date 'someday'"):
        run(catalogue, root, src, bad)
    assert state(catalogue) == before and copies(root) == files
    letter = catalogue.document("family", "letter")
    assert (letter.label, letter.tier) == ("A letter", None)
    assert catalogue.document("family", "album") is None


def test_csv_reader_reports_every_bad_row_with_its_line_number(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text('id,label,date,tier\na,"Two\nlines",1900,\nb,B,19xx,\nc,C,,secret\na,Again,,\nd,D\ne,E,,,x\n')
    rows, errors = read_metadata_csv(csv, {"a", "b", "c", "d", "e"})
    assert [r.ident for r in rows] == ["a", "d"]  # a short row's missing cells are empty ones
    assert [e.split(":")[1] for e in errors] == ["4", "5", "6", "8"]
    assert "already on line 3" in errors[2] and "5 fields where the header names 4" in errors[3]


def test_csv_rights_must_be_a_creative_commons_or_rightsstatements_uri(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("id,rights\na,http://rightsstatements.org/vocab/NoC-NC/1.0/\n"
                   "b,https://creativecommons.org/publicdomain/mark/1.0/\nc,All rights reserved\n")
    rows, errors = read_metadata_csv(csv, {"a", "b", "c"})
    assert [r.rights for r in rows] == ["http://rightsstatements.org/vocab/NoC-NC/1.0/",
                                        "http://creativecommons.org/publicdomain/mark/1.0/"]
    assert len(errors) == 1 and ":4: rights 'All rights reserved'" in errors[0]


def test_csv_that_is_not_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_bytes("id,label\na,Gr\u00fc\u00dfe \u2013 \u20ac\n".encode("cp1252"))  # what Excel on Windows writes
    rows, errors = read_metadata_csv(csv, {"a"})
    assert errors == [] and rows[0].label == "Gr\u00fc\u00dfe \u2013 \u20ac"


def test_metadata_csv_beside_the_masters_is_not_a_failed_master(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, _ = small_source(tmp_path)
    csv = src / "metadata.csv"
    csv.write_text("id,label\nphoto,A photo\n")
    report = run(catalogue, root, src, csv)
    assert (report.converted, report.failed) == (4, [])
    assert catalogue.document("family", "photo").label == "A photo"


# -- command line ----------------------------------------------------------------------------------


def cli(database_url: str, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    storage = ["--data-dir", str(tmp_path / "data"), "--images", str(tmp_path / "images"),
               "--database", database_url]
    return CliRunner().invoke(main, [*args, *storage], env={"COLUMNS": "2000"})


def test_cli_ingest_exits_1_naming_a_failed_master_then_0_on_a_clean_run(database_url: str, tmp_path: Path) -> None:
    src, _, _ = small_source(tmp_path)
    broken = src / "broken.jpg"
    broken.write_bytes(b"\x00not a jpeg" * 100)
    result = cli(database_url, tmp_path, "ingest", str(src), "--collection", "family", "--processes", "2")
    assert result.exit_code == 1, result.output
    assert str(broken) in result.output
    broken.unlink()
    result = cli(database_url, tmp_path, "ingest", str(src), "--collection", "family", "--processes", "2")
    assert result.exit_code == 0, result.output
    assert "0 converted, 4 unchanged, 0 failed" in result.output


def test_cli_ingest_exits_2_on_a_malformed_csv_and_ingests_nothing(database_url: str, tmp_path: Path) -> None:
    src, _, _ = small_source(tmp_path)
    csv = tmp_path / "bad.csv"
    csv.write_text("id,label,date\nletter,A letter,May 1943\n")
    result = cli(database_url, tmp_path, "ingest", str(src), "--collection", "family", "--metadata", str(csv))
    assert result.exit_code == 2, result.output
    assert f"{csv}:2:" in result.output
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").rglob("*.tif"))


def test_cli_collections_lists_id_label_tier_and_counts(database_url: str, tmp_path: Path) -> None:
    src, _, _ = small_source(tmp_path)
    result = cli(database_url, tmp_path, "ingest", str(src), "--collection", "family", "--label", "Family archive",
                 "--tier", "reading-room", "--processes", "2")
    assert result.exit_code == 0, result.output
    result = cli(database_url, tmp_path, "collections")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "family" in line)
    cells = [c.strip() for c in row.strip("│┃| ").replace("┃", "│").split("│")]
    assert cells == ["family", "Family archive", "reading-room", "2", "4"]


def test_cli_set_tier_changes_a_tier_refuses_an_unknown_tier_and_fails_on_an_unknown_target(
    database_url: str, tmp_path: Path
) -> None:
    src = tmp_path / "masters"
    write_letter(src)
    assert cli(database_url, tmp_path, "ingest", str(src), "--collection", "family", "--processes", "2").exit_code == 0
    result = cli(database_url, tmp_path, "set-tier", "family/letter", "staff")
    assert result.exit_code == 0, result.output
    cat = Catalogue(database_url)
    try:
        assert cat.document("family", "letter").tier == "staff"
        assert page_tier(cat, "family/letter/p1") == "staff"
        _, public = cat.activities(0, 1000, public_only=True)
        # the document leaves the public stream; the collection's whole manifest, public still, no longer shows it
        assert [(a.type, a.document_ident) for a in public[-2:]] == [("Remove", "letter"), ("Update", None)]
    finally:
        cat.engine.dispose()
    result = cli(database_url, tmp_path, "set-tier", "family/letter", "secret")
    assert result.exit_code == 2 and "unknown tier" in result.output
    result = cli(database_url, tmp_path, "set-tier", "family/nobody", "public")
    assert result.exit_code == 1 and "nobody" in result.output
    result = cli(database_url, tmp_path, "set-tier", "nowhere", "public")
    assert result.exit_code == 1 and "nowhere" in result.output


def test_activities_of_a_first_run_are_creates_with_the_collection_first(catalogue: Catalogue, tmp_path: Path) -> None:
    src, root, _ = small_source(tmp_path)
    run(catalogue, root, src)
    stream = activities(catalogue)
    assert stream[0] == ("Create", "Collection", None, "public")
    # each document's Create is committed with its pages, in the order the documents finish; the whole-collection
    # manifest is created with the first pages (it answers 404 while the collection has none) and updated after
    documents = [a for a in stream if a[2] is not None]
    assert sorted(documents) == [("Create", "Manifest", "letter", "public"), ("Create", "Manifest", "photo", "public")]
    whole = [a for a in stream[1:] if a[2] is None and a[1] == "Manifest"]
    assert whole == [("Create", "Manifest", None, "public"), ("Update", "Manifest", None, "public")]
    assert stream[1:3] == [documents[0], whole[0]]
    # each document joined the listing at its commit; the collection's Update is recorded once, at the end
    assert stream[-1] == ("Update", "Collection", None, "public") and len(stream) == 6
