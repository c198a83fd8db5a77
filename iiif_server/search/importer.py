"""`iiif-server text import`: ALTO XML (one file per page) and CSV index entries into the text tables.

ALTO files are found as SRC/<document>/<page>.xml (or SRC/<document>/<page>.alto.xml); a CSV has
rows `document,page,text[,x,y,w,h][,kind]` (a header row is recognised). Each CSV file is a source of
its own (`csv:<file name>`), so several indexes of one page add up; importing a source again replaces
what it gave before, on every page of the collection, so a re-run gives the same tables. A page's
ALTO text is replaced as a whole. A page the catalogue does not know, an unreadable file or a bad
row is reported with its place and leaves the rest unharmed.

Pages are written in batches of a few thousand entries per transaction (multi-row INSERTs), and a
document's pages are looked up once, not once per page.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from iiif_server.search.store import Entry, PageText, TextStore

HEADER = ("document", "page", "text")
BATCH = 5000  # entries written per transaction
DOCUMENTS_KEPT = 1000  # documents whose pages an import keeps at hand


@dataclass
class Report:
    pages: int = 0
    entries: int = 0
    errors: list[str] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


def parse_alto(path: Path, width: int, height: int) -> list[Entry]:
    """The page's words with their boxes scaled to the image's pixels (ALTO's Page size may be in
    another unit or resolution); a line without words becomes one line entry."""
    root = ET.parse(path).getroot()  # noqa: S314 - archive's own files; expat does not resolve entities
    page = next((el for el in root.iter() if _local(el.tag) == "Page"), None)
    pw = _number(page.get("WIDTH")) if page is not None else None
    ph = _number(page.get("HEIGHT")) if page is not None else None
    sx = width / pw if pw else 1.0
    sy = height / ph if ph else 1.0

    def box(el: ET.Element) -> tuple[int, int, int, int] | None:
        values = [_number(el.get(a)) for a in ("HPOS", "VPOS", "WIDTH", "HEIGHT")]
        if any(v is None for v in values):
            return None
        x, y, w, h = values  # type: ignore[misc]
        return round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))  # type: ignore[operator]

    entries: list[Entry] = []
    # each TextLine with the TextBlock it stands in (a phrase runs on over a line break within a block only)
    blocks = [el for el in root.iter() if _local(el.tag) == "TextBlock"]
    in_block = {id(line): n for n, block in enumerate(blocks)
                for line in block.iter() if _local(line.tag) == "TextLine"}
    for line in (el for el in root.iter() if _local(el.tag) == "TextLine"):
        words = [s for s in line if _local(s.tag) == "String" and s.get("CONTENT")]
        if not words:
            continue
        text, starts = "", []
        for word in words:
            text += " " if text else ""
            starts.append(len(text))
            text += word.get("CONTENT", "")
        block = in_block.get(id(line), len(blocks))
        for word, start in zip(words, starts, strict=True):
            entries.append(Entry(word.get("CONTENT", ""), "word", box(word), text, start, block))
    return entries


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if n == 1 and tuple(c.strip().lower() for c in row[:3]) == HEADER:
                continue
            if row and any(c.strip() for c in row):
                yield n, row


def parse_csv_row(row: list[str]) -> tuple[str, str, Entry]:
    """(document, page, entry) of one CSV row; ValueError says what is wrong."""
    if len(row) < 3:
        raise ValueError(f"{len(row)} columns, expected document,page,text[,x,y,w,h][,kind]")
    document, page, text = (c.strip() for c in row[:3])
    if not document or not page or not text:
        raise ValueError("empty document, page or text")
    rest = [c.strip() for c in row[3:]]
    kind = "entry"
    if len(rest) in (1, 5):
        kind = rest.pop() or "entry"
    box = None
    if len(rest) == 4 and any(rest):
        try:
            x, y, w, h = (int(float(v)) for v in rest)
        except ValueError:
            raise ValueError(f"box {','.join(rest)} is not four numbers") from None
        if x < 0 or y < 0 or w <= 0 or h <= 0:
            raise ValueError(f"box {x},{y},{w},{h} is not a region")
        box = (x, y, w, h)
    elif rest and any(rest):
        raise ValueError(f"{len(row)} columns, expected document,page,text[,x,y,w,h][,kind]")
    return document, page, Entry(text, kind, box)


def csv_source(path: Path) -> str:
    """The source name of a CSV file: its name without the extension (`names.csv` is `csv:names`)."""
    return f"csv:{path.stem}"[:200]


class Writer:
    """Pages to write, flushed in batches; a page's text appearing twice in one run keeps the last."""

    def __init__(self, store: TextStore, collection: str, batch: int = BATCH) -> None:
        self.store = store
        self.collection = collection
        self.batch = batch
        self.pending: dict[tuple[int, str], PageText] = {}
        self.size = 0
        self.documents: dict[str, tuple[int, dict[str, tuple[int, int, int]]] | None] = {}

    def pages(self, document: str) -> tuple[int, dict[str, tuple[int, int, int]]] | None:
        """(document pk, {page: (image pk, width, height)}), None when the catalogue has no such document."""
        if document not in self.documents:
            if len(self.documents) >= DOCUMENTS_KEPT:
                self.documents.clear()
            with self.store.catalogue.sessions() as session:
                self.documents[document] = self.store.document_pages(session, self.collection, document)
        return self.documents[document]

    def add(self, page: PageText) -> None:
        self.pending[(page.image_pk, page.source)] = page
        self.size += len(page.entries)
        if self.size >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            with self.store.catalogue.session() as session:
                self.store.write(session, list(self.pending.values()))
        self.pending.clear()
        self.size = 0


def import_text(store: TextStore, src: Path, collection: str,
                progress: Callable[[int, int], None] | None = None, batch: int = BATCH) -> Report:
    """Import every ALTO file and CSV under `src` (or the one file `src`) into `collection`."""
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.suffix.lower() in (".xml", ".csv"))
    report = Report()
    catalogue = store.catalogue
    writer = Writer(store, collection, batch)
    touched = False
    for done, path in enumerate(files, 1):
        place = path.name if path == src else str(path.relative_to(src))
        if path.suffix.lower() == ".csv":
            touched |= _import_csv(writer, path, place, report)
        else:
            touched |= _import_alto(writer, src, path, place, report)
        if progress:
            progress(done, len(files))
    writer.flush()
    if touched:
        with catalogue.session() as session:
            catalogue.touch(session, collection)  # manifests now advertise the search services
    return report


def _import_alto(writer: Writer, src: Path, path: Path, place: str, report: Report) -> bool:
    rel = path.relative_to(src).parts if path != src else (path.name,)
    if len(rel) != 2:
        report.errors.append(f"{place}: expected <document>/<page>.xml")
        return False
    document, page = rel[0], rel[1].removesuffix(".xml").removesuffix(".XML").removesuffix(".alto")
    known = writer.pages(document)
    if known is None or page not in known[1]:
        report.errors.append(f"{place}: no page {writer.collection}/{document}/{page} in the catalogue")
        return False
    image_pk, width, height = known[1][page]
    try:
        entries = parse_alto(path, width, height)
    except (ET.ParseError, OSError) as exc:
        report.errors.append(f"{place}: not readable ALTO XML ({exc})")
        return False
    writer.add(PageText(writer.collection, known[0], image_pk, "alto", entries))
    report.pages += 1
    report.entries += len(entries)
    return True


def _import_csv(writer: Writer, path: Path, place: str, report: Report) -> bool:
    """Rows grouped by page (a page's rows need not be adjacent), then each page replaced, and the
    source's entries on pages this file no longer names removed."""
    by_page: dict[tuple[str, str], tuple[int, list[Entry]]] = {}  # page -> (its first row, entries)
    try:
        for n, row in _csv_rows(path):
            try:
                document, page, entry = parse_csv_row(row)
            except ValueError as exc:
                report.errors.append(f"{place}:{n}: {exc}")
                continue
            by_page.setdefault((document, page), (n, []))[1].append(entry)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.errors.append(f"{place}: not readable as UTF-8 CSV ({exc})")
        return False
    source = csv_source(path)
    written: set[int] = set()
    for (document, page), (first, entries) in by_page.items():
        known = writer.pages(document)
        if known is None or page not in known[1]:
            report.errors.append(f"{place}:{first}: no page {writer.collection}/{document}/{page} in the catalogue")
            continue
        image_pk = known[1][page][0]
        writer.add(PageText(writer.collection, known[0], image_pk, source, entries))
        written.add(image_pk)
        report.pages += 1
        report.entries += len(entries)
    writer.flush()
    with writer.store.catalogue.session() as session:
        removed = writer.store.drop_source(session, writer.collection, source, keep=written)
    return bool(written) or removed > 0
