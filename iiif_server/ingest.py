"""Ingest: folders of archival masters -> pyramidal TIFF access copies + catalogue rows.

Each sub-folder of the source is a document whose images are its pages, in
natural order; an image directly in the source is a one-page document. Access
copies are written to a temporary file and renamed into place, so a crash
never leaves half an image. A re-run converts only masters whose size or
mtime changed and whose checksum differs. Masters are never modified.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import multiprocessing
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from .manifests.catalogue import TIERS, UNPLACED, Catalogue, Collection, Document, Image, effective_tier, sort_key

MASTER_EXTENSIONS = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2", ".j2k", ".jpx", ".webp"}
ACCESS_TILE = 256
ACCESS_QUALITY = 90
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CSV_KNOWN = {"id", "label", "date", "tier", "summary", "rights"}
# Presentation 3.0 `rights`: a Creative Commons or RightsStatements.org URI (the validator wants http)
_RIGHTS = re.compile(r"https?://(creativecommons\.org/(licenses|publicdomain)|rightsstatements\.org/vocab)/\S+")


def natural_key(name: str) -> list[object]:
    """`p2` before `p10`: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def safe_ident(name: str) -> str:
    """A path segment usable in identifiers and URLs."""
    ident = _UNSAFE.sub("_", name).strip("._") or "_"
    return ident[:200]


def check_collection_id(ident: str) -> str:
    if not ident or safe_ident(ident) != ident:
        raise ValueError(f"collection id {ident!r} may hold only letters, digits, '.', '_' and '-'")
    return ident


@dataclass
class Outcome:
    path: Path
    checksum: str = ""
    sizes: list[tuple[int, int]] = field(default_factory=list)
    converted: bool = False
    error: str | None = None


@dataclass
class Report:
    converted: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


# -- worker side (runs in a process pool) ------------------------------------


def _init_worker() -> None:
    import pyvips

    pyvips.concurrency_set(1)  # parallelism comes from the processes
    pyvips.cache_set_max(0)


def describe(exc: BaseException) -> str:
    """One line saying why: libvips' own first detail line (the cause), else the message."""
    for text in (getattr(exc, "detail", None), str(exc)):
        lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
        if lines:
            return lines[0]
    return type(exc).__name__


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def page_count(path: Path) -> int:
    """Pages of a master: a multi-page TIFF has several, a pyramid only one."""
    import pyvips

    img = pyvips.Image.new_from_file(str(path), access="sequential")
    pages = int(img.get("n-pages")) if img.get_typeof("n-pages") else 1
    if pages > 1:
        second = pyvips.Image.new_from_file(str(path), page=1, access="sequential")
        if abs(second.width - img.width / 2) <= 1 and abs(second.height - img.height / 2) <= 1:
            return 1  # the later pages are pyramid levels
    return pages


def write_access_copy(master: Path, page: int, out: Path) -> tuple[int, int]:
    """Convert one page to a tiled, pyramidal JPEG TIFF, atomically."""
    import pyvips

    from .tiles.pipeline import WHITE, no_metadata, to_srgb8

    options = {"page": page} if page else {}  # only multi-page loaders take `page`
    img = pyvips.Image.new_from_file(str(master), access="sequential", fail=True, **options)
    img = to_srgb8(img.autorot())
    if img.hasalpha():
        img = img.flatten(background=WHITE)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".ingest-", suffix=".tif")
    os.close(fd)
    try:
        img.tiffsave(tmp, tile=True, tile_width=ACCESS_TILE, tile_height=ACCESS_TILE, pyramid=True,
                     compression="jpeg", Q=ACCESS_QUALITY, **no_metadata("tiffsave"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return img.width, img.height


def process_master(master: str, outs: list[str], known_checksum: str | None) -> Outcome:
    path = Path(master)
    try:
        checksum = sha256(path)
        if checksum == known_checksum and all(os.path.exists(o) for o in outs):
            return Outcome(path, checksum)
        sizes = [write_access_copy(path, page, Path(out)) for page, out in enumerate(outs)]
        return Outcome(path, checksum, sizes, converted=True)
    except Exception as exc:  # a corrupt master is reported, never fatal to the batch
        return Outcome(path, error=describe(exc))


# -- coordinator side ----------------------------------------------------------


def scan_source(src: Path) -> tuple[dict[str, list[Path]], list[tuple[Path, str]]]:
    """Documents (ident -> masters in natural order) and files that are not masters."""
    documents: dict[str, list[Path]] = {}
    skipped: list[tuple[Path, str]] = []

    def is_master(p: Path) -> bool:
        return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MASTER_EXTENSIONS

    for entry in sorted(src.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            masters = sorted((p for p in entry.rglob("*") if is_master(p)), key=lambda p: natural_key(str(p)))
            if masters:
                documents.setdefault(safe_ident(entry.name), []).extend(masters)
        elif is_master(entry):
            documents.setdefault(safe_ident(entry.stem), []).append(entry)
        elif entry.is_file():
            skipped.append((entry, "not an image master"))
    return documents, skipped


def page_stem(src: Path, master: Path) -> str:
    """A master's page ident: its path inside its document folder, so `a/001` and `b/001` differ."""
    rel = master.relative_to(src).parts
    inner = rel[1:] if len(rel) > 1 else rel  # below the document folder; a loose image is its own
    return safe_ident("_".join([*inner[:-1], Path(inner[-1]).stem]))


@dataclass(frozen=True)
class CsvRow:
    line: int
    ident: str
    label: str | None
    date: dt.datetime | None
    tier: str | None
    summary: str | None
    rights: str | None
    metadata: list[list[str]]


def parse_date(text: str) -> dt.datetime:
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return _utc(dt.datetime.fromisoformat(text))  # a time without a zone is UTC, not this machine's zone


def rights_uri(text: str) -> str:
    """A rights URI as Presentation 3.0 wants it (http), or ValueError."""
    if not _RIGHTS.fullmatch(text):
        raise ValueError(text)
    return "http://" + text.split("://", 1)[1]


def read_metadata_csv(path: Path, known: Iterable[str],
                      tiers: tuple[str, ...] = TIERS) -> tuple[list[CsvRow], list[str]]:
    """Rows and errors (with line numbers); the caller applies all rows or none."""
    known_ids = set(known)
    rows: list[CsvRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            if not reader.fieldnames or "id" not in reader.fieldnames:
                return [], [f"{path}:1: the header needs an 'id' column"]
            extra = [name for name in reader.fieldnames if name not in _CSV_KNOWN]
            for record in reader:
                line = reader.line_num
                if None in record or any(v is None for v in record.values()):
                    errors.append(f"{path}:{line}: wrong number of fields")
                    continue
                ident = record["id"].strip()
                if not ident:
                    errors.append(f"{path}:{line}: empty id")
                    continue
                if ident not in known_ids:
                    errors.append(f"{path}:{line}: no document {ident!r} in this collection")
                    continue
                if ident in seen:
                    errors.append(f"{path}:{line}: document {ident!r} is already on line {seen[ident]}")
                    continue
                seen[ident] = line
                date = None
                if (record.get("date") or "").strip():
                    try:
                        date = parse_date(record["date"].strip())
                    except ValueError:
                        errors.append(f"{path}:{line}: date {record['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
                        continue
                tier = (record.get("tier") or "").strip() or None
                if tier is not None and tier not in tiers:
                    errors.append(f"{path}:{line}: tier {tier!r} is not one of {', '.join(tiers)}")
                    continue
                rights = (record.get("rights") or "").strip() or None
                if rights is not None:
                    try:
                        rights = rights_uri(rights)
                    except ValueError:
                        errors.append(f"{path}:{line}: rights {rights!r} is not a Creative Commons or "
                                      "RightsStatements.org URI")
                        continue
                metadata = [[name, record[name].strip()] for name in extra if record[name].strip()]
                rows.append(CsvRow(line, ident, (record.get("label") or "").strip() or None, date, tier,
                                   (record.get("summary") or "").strip() or None, rights, metadata))
        except (csv.Error, UnicodeDecodeError) as exc:  # not CSV, or not UTF-8: said, not a traceback
            errors.append(f"{path}:{reader.line_num + 1}: unreadable: {describe(exc)}")
    return rows, errors


class Ingest:
    """One ingest run of a source folder into a collection."""

    def __init__(self, catalogue: Catalogue, image_root: Path, collection: str, *,
                 label: str | None = None, tier: str | None = None, workers: int | None = None) -> None:
        self.catalogue = catalogue
        self.image_root = image_root
        self.collection = check_collection_id(collection)
        self.label = label
        if tier is not None and tier not in catalogue.tiers:
            raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(catalogue.tiers)}")
        self.tier = tier
        self.workers = workers or os.cpu_count() or 1

    def access_path(self, document: str, page: str) -> Path:
        return self.image_root / self.collection / document / f"{page}.tif"

    def run(self, src: Path, metadata_csv: Path | None = None,
            progress: Callable[[int, int], None] | None = None) -> Report:
        documents, skipped = scan_source(src)
        if metadata_csv is not None:  # the metadata file may sit beside the masters
            skipped = [(path, why) for path, why in skipped if path.resolve() != metadata_csv.resolve()]
        report = Report(failed=list(skipped))
        csv_rows: list[CsvRow] = []
        if metadata_csv is not None:
            existing = self.catalogue.existing_documents(self.collection, csv_ids(metadata_csv))
            csv_rows, errors = read_metadata_csv(metadata_csv, set(documents) | existing,
                                                self.catalogue.tiers)
            if errors:
                raise CsvError(errors)
        known = self._known_images(list(documents))
        jobs: list[tuple[str, Path, list[str], int]] = []  # document, master, page idents, first position
        layout: dict[str, dict[str, int]] = {}  # document -> page ident -> position, unchanged masters too
        for document, masters in documents.items():
            position = 0
            used: dict[str, Path] = {}
            layout[document] = {}
            for master in masters:
                try:
                    count = page_count(master)
                except Exception as exc:  # noqa: BLE001 - unreadable: reported, batch goes on
                    report.failed.append((master, describe(exc)))
                    position += 1  # keeps its place: the pages after it keep theirs
                    continue
                stem = page_stem(src, master)
                pages = [stem] if count == 1 else [f"{stem}-{n}" for n in range(1, count + 1)]
                clash = next((p for p in pages if p in used), None)
                if clash is not None:  # e.g. p1.tif beside p1.jpg: never let one overwrite the other
                    report.failed.append((master, f"page id {clash!r} is already taken by {used[clash]}"))
                    position += count
                    continue
                used.update(dict.fromkeys(pages, master))
                layout[document].update({p: position + n for n, p in enumerate(pages)})
                st = master.stat()
                rows = [known.get((str(master.resolve()), n)) for n in range(count)]
                if all(r is not None and r[0] == st.st_size and r[1] == st.st_mtime for r in rows) and all(
                    self.access_path(document, p).exists() for p in pages
                ):
                    report.unchanged += count
                    position += count
                    continue
                jobs.append((document, master, pages, position))
                position += count
        changed_docs: set[str] = set()
        new_docs: set[str] = set()
        created = self._ensure_collection()
        total = sum(len(j[2]) for j in jobs)
        done = 0
        if progress:
            progress(done, total)
        failed_dirs: set[Path] = set()
        if jobs:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker) as pool:
                futures: dict[Future[Outcome], tuple[str, Path, list[str], int]] = {}
                for job in jobs:
                    document, master, pages, _ = job
                    outs = [str(self.access_path(document, p)) for p in pages]
                    old = known.get((str(master.resolve()), 0))
                    futures[pool.submit(process_master, str(master), outs, old[2] if old else None)] = job
                for future in as_completed(futures):
                    document, master, pages, position = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by a bad file
                        outcome = Outcome(master, error=f"worker failed: {type(exc).__name__}")
                    done += len(pages)
                    if progress:
                        progress(done, total)
                    if outcome.error is not None:
                        report.failed.append((master, outcome.error))
                        failed_dirs.add(self.access_path(document, pages[0]).parent)
                        continue
                    if self._store(document, master, pages, position, outcome, new_docs):
                        changed_docs.add(document)
                    if outcome.converted:
                        report.converted += len(pages)
                    else:
                        report.unchanged += len(pages)
        for folder in failed_dirs:  # every worker has finished: what a killed one left is debris
            _clean(folder)
        for row in self._finish(new_docs, changed_docs, csv_rows, layout, created):
            report.failed.append((metadata_csv or src, f"line {row.line}: document {row.ident!r} has no pages"))
        return report

    def _known_images(self, documents: list[str]) -> dict[tuple[str, int], tuple[int, float, str]]:
        """What the catalogue holds for the source's documents only, never the whole collection."""
        known: dict[tuple[str, int], tuple[int, float, str]] = {}
        with self.catalogue.sessions() as session:
            for batch in batches(documents):
                rows = session.execute(
                    select(Image.source_path, Image.source_page, Image.source_size, Image.source_mtime,
                           Image.checksum)
                    .join(Document, Image.document_pk == Document.pk)
                    .where(Document.collection_id == self.collection, Document.ident.in_(batch))
                ).all()
                known.update({(p, n): (size, mtime, checksum) for p, n, size, mtime, checksum in rows})
        return known

    def _ensure_collection(self) -> bool:
        """Create the collection (True), or apply a new label or tier to it."""
        with self.catalogue.session() as session:
            self.catalogue.lock_activities(session)
            coll = session.get(Collection, self.collection)
            if coll is None:
                coll = Collection(id=self.collection, label=self.label or self.collection, tier=self.tier or "public",
                                  metadata_pairs=[])
                session.add(coll)
                session.flush()
                self.catalogue.record(session, "Create", "Collection", coll.id, None, coll.tier)
                self.catalogue.record(session, "Create", "Manifest", coll.id, None, coll.tier)
                self.catalogue.touch(session, coll.id)  # listed at once, even if every master fails
                return True
            changed = False
            if self.label and coll.label != self.label:
                coll.label = self.label
                self.catalogue.record(session, "Update", "Collection", coll.id, None, coll.tier)
                self.catalogue.record(session, "Update", "Manifest", coll.id, None, coll.tier)
                changed = True
            if self.tier and coll.tier != self.tier:
                # as set-tier: the collection, its manifest and the documents that inherit the tier
                self.catalogue.change_collection_tier(session, coll, self.tier)
                changed = True
            if changed:
                self.catalogue.touch(session, coll.id)
            return False

    def _store(self, document: str, master: Path, pages: list[str], position: int,
               outcome: Outcome, new_docs: set[str]) -> bool:
        """Write one master's pages to the catalogue; True when anything changed."""
        st = master.stat()
        changed = False
        added = 0
        with self.catalogue.session() as session:
            doc = session.scalar(select(Document).where(
                Document.collection_id == self.collection, Document.ident == document))
            if doc is None:  # documents appear with their first stored page, never empty
                doc = Document(collection_id=self.collection, ident=document, label=document,
                               position=UNPLACED, metadata_pairs=[], sort_key=sort_key(document))
                session.add(doc)
                session.flush()
                new_docs.add(document)
                self.catalogue.count_items(session, self.collection, 1, 0)
            for n, page in enumerate(pages):
                img = session.scalar(select(Image).where(Image.document_pk == doc.pk, Image.ident == page))
                if img is None:
                    img = Image(document_pk=doc.pk, ident=page)
                    session.add(img)
                    added += 1
                    changed = True
                if outcome.converted:
                    w, h = outcome.sizes[n]
                    changed = changed or (img.width, img.height, img.checksum) != (w, h, outcome.checksum)
                    img.width, img.height = w, h
                img.position = position + n
                img.label = str(position + n + 1)
                img.checksum = outcome.checksum
                img.source_path = str(master.resolve())
                img.source_page = n
                img.source_size = st.st_size
                img.source_mtime = st.st_mtime
            session.flush()
            self.catalogue.count_items(session, self.collection, 0, added)
        return changed or outcome.converted

    def _finish(self, new_docs: set[str], changed_docs: set[str], csv_rows: list[CsvRow],
                layout: dict[str, dict[str, int]], created: bool) -> list[CsvRow]:
        """Apply the metadata rows and page order, and record what changed, in one transaction.

        Records activities and bumps the revision only when something really changed, so a
        re-run with the same masters and CSV leaves the catalogue as it was. Returns rows left out.
        """
        left_out = []
        with self.catalogue.session() as session:
            self.catalogue.lock_activities(session)  # before any write: see Catalogue.lock_activities
            placed = self.catalogue.place_documents(session, self.collection)  # new ones, and any a crash left
            if not (new_docs or changed_docs or csv_rows or placed):
                return []
            coll = session.get(Collection, self.collection)
            assert coll is not None
            touched = set(changed_docs) | new_docs
            wanted = touched | {row.ident for row in csv_rows}
            docs = {d.ident: d for batch in batches(sorted(wanted)) for d in session.scalars(
                select(Document).where(Document.collection_id == coll.id, Document.ident.in_(batch)))}
            moved = False  # a tier change recorded on its own
            for ident in touched:  # pages added between others: every page to its place in the folder
                for img in docs[ident].images:
                    place = layout.get(ident, {}).get(img.ident)
                    if place is not None and img.position != place:
                        img.position, img.label = place, str(place + 1)
            for row in csv_rows:
                doc = docs.get(row.ident)
                if doc is None:  # all its masters failed
                    left_out.append(row)
                    continue
                old_tier = effective_tier(doc.tier, coll.tier)
                wanted = {"label": row.label, "nav_date": row.date, "summary": row.summary, "rights": row.rights,
                          "metadata_pairs": row.metadata or None, "tier": row.tier}
                changes = {name: value for name, value in wanted.items()
                           if value is not None and not _same(getattr(doc, name), value)}
                if not changes:
                    continue
                for name, value in changes.items():
                    setattr(doc, name, value)
                new_tier = effective_tier(doc.tier, coll.tier)
                if old_tier != new_tier and row.ident not in new_docs:
                    self.catalogue.record_tier_change(session, "Manifest", coll.id, row.ident, old_tier, new_tier)
                    touched.discard(row.ident)
                    moved = True
                else:
                    touched.add(row.ident)
            if not (touched or moved or placed):
                return left_out
            for ident in sorted(touched):
                kind = "Create" if ident in new_docs else "Update"
                self.catalogue.record(session, kind, "Manifest", coll.id, ident,
                                      effective_tier(docs[ident].tier, coll.tier))
            if not created:  # a collection created by this run has its Create already
                self.catalogue.record(session, "Update", "Manifest", coll.id, None, coll.tier)
                self.catalogue.record(session, "Update", "Collection", coll.id, None, coll.tier)
            self.catalogue.touch(session, coll.id)
        return left_out


def batches(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """Slices small enough for an IN list on any engine."""
    for n in range(0, len(items), size):
        yield items[n : n + size]


def csv_ids(path: Path) -> list[str]:
    """The document ids a metadata CSV names (its errors are reported when it is read in full)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [(row.get("id") or "").strip() for row in csv.DictReader(fh) if row.get("id")]
    except (csv.Error, UnicodeDecodeError, AttributeError):
        return []


def _clean(folder: Path) -> None:
    """Remove temporary files left in a document folder, and the folder if it is then empty."""
    for tmp in folder.glob(".ingest-*"):
        tmp.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # holds access copies (or never was made)


def _same(old: object, new: object) -> bool:
    """Equal catalogue values; SQLite gives back datetimes without their (UTC) zone."""
    if isinstance(old, dt.datetime) and isinstance(new, dt.datetime):
        return _utc(old) == _utc(new)
    return old == new


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class CsvError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
