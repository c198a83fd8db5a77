"""Ingest: folders of archival masters -> pyramidal TIFF access copies + catalogue rows.

Each sub-folder of the source is a document whose pages are the files in it, in natural order;
an image directly in the source is a one-page document. Identifiers keep the names on disk
(Unicode, NFC). Every file is accounted for: a page, or a failure with its path and reason.

Fail closed: the run first commits the collection, the CSV's tiers and the new documents' tier
overrides, then workers write copies only to a hidden staging folder (never served), and the
coordinator commits each finished document (rows and activities in one transaction) before it
renames its copies into place. A run that is stopped, killed or crashes leaves nothing servable
that was not committed, and a re-run gives the catalogue and activity stream an uninterrupted
run gives. Masters are never modified.
"""

from __future__ import annotations

import csv
import ctypes
import datetime as dt
import fcntl
import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from .auth.snapshot import MAX_AGE
from .manifests.catalogue import TIERS, UNPLACED, Catalogue, Collection, Document, Image, effective_tier, sort_key
from .manifests.presentation import CANVAS_LIMIT
from .names import copy_path, on_disk, readable, shown
from .storage import ObjectTarget

ACCESS_TILE = 256
# Access copies: JPEG at quality 88 with 4:2:0 chroma: 0.22-0.30 MB per megapixel on synthetic scanned
# pages, a third of quality 90's (bench/access_quality.py; README "Access copies are sized on purpose").
# libvips' TIFF writer ties the chroma to the quality: YCbCr 4:2:0 below 90, RGB-coded JPEG (no
# subsampling, ~3x the bytes) from 90; its `rgbjpeg` below 90 subsamples G and B, so it is never used.
ACCESS_QUALITY = 88
SERVED_QUALITY = 85  # the server's default JPEG quality (config.Settings.jpeg_quality): stored thumbnails use it
ACCESS_SUBSAMPLE = True
MAX_PILLOW_PIXELS = 1 << 30  # masters decoded by Pillow are held whole in memory (3-4 bytes a pixel, twice)
MAX_NAME = 200  # characters of a document or page identifier (the catalogue's column)
STAGING = ".ingest-"  # hidden: no identifier can name what lies below it
IGNORED = {"thumbs.db", "desktop.ini"}  # files that operating systems drop into folders
STOP_GRACE = 120.0  # seconds a stopped run waits for the pages in flight before it kills them
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CSV_KNOWN = {"id", "label", "date", "tier", "summary", "rights"}
# Presentation 3.0 `rights`: a Creative Commons or RightsStatements.org URI (the validator wants http)
_RIGHTS = re.compile(r"https?://(creativecommons\.org/(licenses|publicdomain)|rightsstatements\.org/vocab)/\S+")


def natural_key(name: str) -> list[object]:
    """`p2` before `p10`: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def safe_ident(name: str) -> str:
    """The ASCII-only segment earlier versions made of a name (kept to find their documents)."""
    ident = _UNSAFE.sub("_", name).strip("._") or "_"
    return ident[:200]


def check_collection_id(ident: str) -> str:
    if not ident or safe_ident(ident) != ident:
        raise ValueError(f"collection id {ident!r} may hold only letters, digits, '.', '_' and '-'")
    return ident


def name_problem(name: str) -> str | None:
    """Why a name on disk cannot be an identifier segment, None when it can."""
    if len(name) > MAX_NAME:
        return f"name longer than {MAX_NAME} characters"
    if any(ord(c) < 32 or c in "\\\x7f" for c in name):
        return "name holds a control character or a backslash"
    if name.startswith(".") or not name.strip():
        return "name is empty or hidden"
    return None


@dataclass
class PageOut:
    ident: str
    width: int
    height: int
    staged: str | None  # the hidden copy written by the worker, None when unchanged


@dataclass
class Outcome:
    path: Path
    checksum: str = ""
    pages: list[PageOut] = field(default_factory=list)
    converted: bool = False
    error: str | None = None


@dataclass
class Report:
    converted: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # hidden and system files, not masters
    not_done: list[Path] = field(default_factory=list)  # masters a stopped run did not convert
    stopped: int | None = None  # the signal that stopped the run

    def as_dict(self) -> dict[str, Any]:
        return {
            "converted": self.converted, "unchanged": self.unchanged, "failed": len(self.failed),
            "skipped": len(self.skipped), "not_done": len(self.not_done),
            "stopped_by": signal.Signals(self.stopped).name if self.stopped else None,
            "failures": [{"path": shown(p), "reason": r} for p, r in self.failed],
            "skipped_files": [{"path": shown(p), "reason": r} for p, r in self.skipped],
            "not_done_masters": [shown(p) for p in self.not_done],
        }


# -- worker side (runs in a process pool) ------------------------------------


def _init_worker(parent: int) -> None:
    """Workers die with their coordinator, and leave stopping to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the coordinator decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the coordinator died before the watch was set
        os._exit(1)

    def watch() -> None:  # elsewhere, or if prctl failed: notice the coordinator's death within a second
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
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


class Unsupported(Exception):
    """No reader knows the file's format."""


def _unknown_format(exc: Exception) -> bool:
    return "not a known file format" in str(exc) or "not a known file format" in str(getattr(exc, "detail", ""))


def _pillow_pages(path: Path) -> int:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except UnidentifiedImageError as exc:
        raise Unsupported("unsupported format: not a known file format") from exc


def _pillow_load(path: Path, page: int) -> Any:
    """Formats the installed libvips lacks (BMP, TGA, PCX; JPEG 2000 when it has no OpenJPEG) through Pillow.

    Pillow's wheels bundle OpenJPEG: JP2 and J2K masters, 8 or 16 bits, any number of resolution
    levels (the full one is decoded). 16-bit colour comes scaled to 8 bits; 16-bit grey is kept
    as grey16 here and scaled by `to_srgb8`, as Pillow's own conversion would clip it."""
    import numpy as np
    import pyvips
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = MAX_PILLOW_PIXELS  # archival masters are large; above this Pillow refuses
    with PILImage.open(path) as im:
        im.seek(page)
        if im.mode.startswith("I;16"):
            grey = np.asarray(im).astype("=u2", copy=False)
            return pyvips.Image.new_from_memory(grey.tobytes(), im.width, im.height, 1, "ushort").copy(
                interpretation="grey16")
        mode = "RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB"
        rgb = im if im.mode == mode else im.convert(mode)
        pixels = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, len(rgb.mode), "uchar")
        return pixels.copy(interpretation="srgb")


def page_count(path: Path) -> int:
    """Pages of a master: a multi-page TIFF has several, a pyramid (or a JPEG 2000's levels) only one."""
    import pyvips

    try:
        img = pyvips.Image.new_from_file(str(path), access="sequential")
    except pyvips.Error as exc:
        if not _unknown_format(exc):
            raise
        return _pillow_pages(path)
    pages = int(img.get("n-pages")) if img.get_typeof("n-pages") else 1
    if pages > 1 and img.get("vips-loader").startswith(("tiff", "jp2k")):  # JPEG 2000: its resolution levels
        second = pyvips.Image.new_from_file(str(path), page=1, access="sequential")
        if abs(second.width - img.width / 2) <= 1 and abs(second.height - img.height / 2) <= 1:
            return 1  # the later pages are pyramid levels
    return pages


def open_master(path: Path, page: int, access: str = "sequential") -> Any:
    import pyvips

    options = {"page": page} if page else {}  # only multi-page loaders take `page`
    try:
        return pyvips.Image.new_from_file(str(path), access=access, fail=True, **options)
    except pyvips.Error as exc:
        if not _unknown_format(exc):
            raise
        return _pillow_load(path, page)


def open_upright(path: Path, page: int) -> Any:
    """A master turned as its EXIF or TIFF orientation says (a phone's or camera's capture of a page).

    Turning reads the pixels out of order, which a sequential decode cannot: such a master is opened
    for random access (libvips keeps a large one in a temporary file, not in memory)."""
    img = open_master(path, page)
    orientation = int(img.get("orientation")) if img.get_typeof("orientation") else 1
    if orientation in range(2, 9):
        img = open_master(path, page, access="random")
    return img.autorot()


def access_options(quality: int = ACCESS_QUALITY, subsample: bool = ACCESS_SUBSAMPLE) -> dict[str, Any]:
    """tiffsave's JPEG options, or ValueError for what its writer cannot do."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality {quality} is not between 1 and 100")
    if subsample and quality >= 90:
        raise ValueError(f"libvips writes 4:2:0 chroma only below quality 90: use a quality up to 89, "
                         f"or no subsampling (RGB JPEG, about 3x the bytes), not quality {quality}")
    if not subsample and quality < 90:
        raise ValueError(f"libvips writes JPEG without chroma subsampling only from quality 90, not {quality}")
    return {"compression": "jpeg", "Q": quality}


def write_access_copy(master: Path, page: int, out: Path, quality: int = ACCESS_QUALITY,
                      subsample: bool = ACCESS_SUBSAMPLE, thumbnail_quality: int | None = SERVED_QUALITY
                      ) -> tuple[int, int]:
    """Convert one page to a tiled, pyramidal JPEG TIFF at `out` (a hidden staging path).

    With `thumbnail_quality` (the server's JPEG quality) the copy also holds the `full/!200,200`
    thumbnail as the server renders it, sent as stored (tiles/thumbnail.py): a wall of thumbnails
    is then read, not decoded; and viewers' tiles at the right and bottom edges, each as the server
    renders it, likewise sent as stored (tiles/edges.py)."""
    from .tiles.edges import add_edges
    from .tiles.pipeline import WHITE, Encoding, no_metadata, to_srgb8
    from .tiles.thumbnail import add_thumbnail

    img = to_srgb8(open_upright(master, page))
    if img.hasalpha():
        img = img.flatten(background=WHITE)
    try:
        img.tiffsave(str(out), tile=True, tile_width=ACCESS_TILE, tile_height=ACCESS_TILE, pyramid=True,
                     **access_options(quality, subsample), **no_metadata("tiffsave"))
        if thumbnail_quality is not None:
            add_thumbnail(out, encoding=Encoding(jpeg_quality=thumbnail_quality))
            add_edges(out, thumbnail_quality)
        os.chmod(out, 0o644)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return img.width, img.height


def page_idents(stem: str, count: int) -> list[str]:
    return [stem] if count == 1 else [f"{stem}-{n}" for n in range(1, count + 1)]


def process_master(master: str, stem: str, staging: str, known_checksum: str | None, copies_exist: bool,
                   quality: int = ACCESS_QUALITY, subsample: bool = ACCESS_SUBSAMPLE,
                   thumbnail_quality: int | None = SERVED_QUALITY) -> Outcome:
    path = Path(master)
    try:
        checksum = sha256(path)
        if checksum == known_checksum and copies_exist:  # touched, not changed
            return Outcome(path, checksum)
        pages = []
        for n, ident in enumerate(page_idents(stem, page_count(path))):
            out = Path(staging) / f"{uuid.uuid4().hex}.tif"
            pages.append(PageOut(ident, *write_access_copy(path, n, out, quality, subsample, thumbnail_quality),
                                 staged=str(out)))
        return Outcome(path, checksum, pages, converted=True)
    except Unsupported as exc:
        return Outcome(path, error=str(exc))
    except Exception as exc:  # a corrupt master is reported, never fatal to the batch
        reason = describe(exc)
        reason = f"unsupported format: {reason}" if _unknown_format(exc) else f"unreadable: {reason}"
        return Outcome(path, error=reason)


# -- coordinator side ----------------------------------------------------------


@dataclass
class Master:
    path: Path
    stem: str  # the page identifier (of its first page)
    size: int
    mtime: float


@dataclass
class SourceDocument:
    name: str  # the folder's (or loose file's) name, NFC
    path: Path
    masters: list[Master] = field(default_factory=list)
    ident: str = ""  # the catalogue identifier: the name, or an earlier version's mangled one


def scan_source(src: Path, exclude: Iterable[Path] = ()) -> tuple[dict[str, SourceDocument], Report]:
    """Documents (by name) and a report holding every file that cannot be a page, with why.

    Nothing on disk stops the scan: a link (never followed), a pipe or device, a folder that cannot be
    read, a name that is not UTF-8 is one line of the report."""
    report = Report()
    excluded = {os.path.realpath(p) for p in exclude}
    documents: dict[str, SourceDocument] = {}
    owners: dict[str, Path] = {}  # NFC name -> the entry that took it

    def claim(name: str, entry: os.DirEntry[str]) -> bool:
        problem = name_problem(name)
        if problem is None and name in owners:
            problem = f"document name {shown(name)!r} is already taken by {shown(owners[name])}"
        if problem is None:
            owners[name] = Path(entry.path)
            return True
        report.failed.extend((f, problem) for f in _files_below(entry, report) or [Path(entry.path)])
        return False

    for entry in sorted(_listing(src, report), key=lambda e: natural_key(nfc(e.name))):
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name.lower() in IGNORED:
            report.skipped.append((path, "hidden or system file"))
        elif os.path.realpath(path) in excluded:
            continue
        elif (problem := entry_problem(entry)) is not None:
            report.failed.extend((f, problem) for f in _files_below(entry, report) or [path])
        elif entry.is_dir(follow_symlinks=False):
            name = nfc(entry.name)
            if claim(name, entry):
                doc = SourceDocument(name, path)
                _walk(path, doc, report, excluded)
                if any(m.stem for m in doc.masters):
                    documents[name] = doc
        else:
            name = nfc(Path(entry.name).stem)
            if claim(name, entry) and (master := _master(path, name, report)) is not None:
                documents[name] = SourceDocument(name, path, [master])
    return documents, report


def entry_problem(entry: os.DirEntry[str]) -> str | None:
    """Why a folder entry can be neither a document folder nor a master, None when it can be one."""
    try:
        if entry.is_symlink():
            return "a symbolic link, not followed: copy the file or folder into the source instead"
        if not entry.is_dir(follow_symlinks=False) and not entry.is_file(follow_symlinks=False):
            return "not a file or folder (a pipe, socket or device)"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if not readable(entry.name):
        return "its name is not valid UTF-8 (written by an old system, e.g. in Latin-1): rename it"
    return None


def _listing(folder: Path, report: Report) -> list[os.DirEntry[str]]:
    """A folder's entries; one that cannot be listed is reported, not fatal."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        report.failed.append((folder, f"folder cannot be read: {exc.strerror}"))
        return []


def _files_below(entry: os.DirEntry[str], report: Report) -> list[Path]:
    """Every file in a folder that will not be ingested (links not followed), to report each one."""
    if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
        return [Path(entry.path)]
    out: list[Path] = []
    for child in _listing(Path(entry.path), Report()):
        out.extend(_files_below(child, report))
    return out


def _master(path: Path, stem: str, report: Report) -> Master | None:
    try:
        st = path.stat(follow_symlinks=False)
    except OSError as exc:
        report.failed.append((path, f"unreadable: {exc.strerror}"))
        return None
    if st.st_size == 0:
        report.failed.append((path, "empty file"))
        return None
    return Master(path, stem, st.st_size, st.st_mtime)


def _walk(folder: Path, doc: SourceDocument, report: Report, excluded: set[str]) -> None:
    """A document folder's pages in natural order of their path; nested folders' names join the page id."""
    found: list[tuple[list[object], Path, str]] = []
    pending = [folder]
    while pending:
        base = pending.pop()
        for entry in _listing(base, report):
            path = Path(entry.path)
            if entry.name.startswith(".") or entry.name.lower() in IGNORED:
                report.skipped.append((path, "hidden folder" if entry.is_dir(follow_symlinks=False)
                                       else "hidden or system file"))
            elif (problem := entry_problem(entry)) is not None:
                report.failed.extend((f, problem) for f in _files_below(entry, report) or [path])
            elif entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif os.path.realpath(path) not in excluded:
                rel = [nfc(part) for part in path.relative_to(folder).parts]
                found.append((natural_key("/".join(rel)), path, "_".join([*rel[:-1], Path(rel[-1]).stem])))
    taken: dict[str, Path] = {}
    for _, path, stem in sorted(found, key=lambda f: f[0]):
        problem = name_problem(stem)
        if problem is None and stem in taken:  # e.g. p1.tif beside p1.jpg: never let one overwrite the other
            problem = f"page id {stem!r} is already taken by {shown(taken[stem])}"
        if problem is not None:
            report.failed.append((path, problem))
            doc.masters.append(Master(path, "", 0, 0.0))  # keeps its place in the order
            continue
        taken[stem] = path
        if (master := _master(path, stem, report)) is not None:
            doc.masters.append(master)
        else:
            doc.masters.append(Master(path, "", 0, 0.0))


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


def read_metadata_csv(path: Path, known: Iterable[str], tiers: tuple[str, ...] = TIERS,
                      aliases: dict[str, str] | None = None) -> tuple[list[CsvRow], list[str]]:
    """Rows and errors (with line numbers); the caller applies all rows or none.

    An `id` is the folder name as it is on disk (any Unicode normal form) or the document's id;
    `aliases` maps names to ids where they differ (documents stored before names were kept)."""
    known_ids = set(known)
    aliases = aliases or {}
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
                ident = nfc(record["id"].strip())
                if not ident:
                    errors.append(f"{path}:{line}: empty id")
                    continue
                if ident not in known_ids:
                    errors.append(f"{path}:{line}: no document {ident!r} in this collection")
                    continue
                ident = aliases.get(ident, ident)
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


@dataclass
class Slot:
    """One master of a document in this run: unchanged (pages known), a job, or failed."""

    master: Master
    known: list[tuple[str, int, float, str]] = field(default_factory=list)  # ident, size, mtime, checksum per page
    positions: list[int] = field(default_factory=list)  # the catalogued positions of its pages
    job: bool = False
    outcome: Outcome | None = None
    unchanged: bool = False


class Ingest:
    """One ingest run of a source folder into a collection."""

    def __init__(self, catalogue: Catalogue, image_root: Path, collection: str, *,
                 label: str | None = None, tier: str | None = None, workers: int | None = None,
                 stop_grace: float = STOP_GRACE, quality: int = ACCESS_QUALITY,
                 subsample: bool = ACCESS_SUBSAMPLE, target: ObjectTarget | None = None,
                 thumbnail_quality: int | None = SERVED_QUALITY) -> None:
        """`target`: copies bound for object storage; `image_root` is then its local staging folder.
        `thumbnail_quality`: the serving JPEG quality the stored thumbnails are encoded at (None: none stored)."""
        self.catalogue = catalogue
        self.image_root = image_root
        self.target = target
        self.collection = check_collection_id(collection)
        self.label = label
        if tier is not None and tier not in catalogue.tiers:
            raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(catalogue.tiers)}")
        self.tier = tier
        self.workers = workers or os.cpu_count() or 1
        self.stop_grace = stop_grace
        access_options(quality, subsample)  # refused before anything is written
        self.quality, self.subsample = quality, subsample
        self.thumbnail_quality = thumbnail_quality
        self.stopped: int | None = None  # the signal asking the run to stop
        self._kill = False
        self._visible_at = 0.0  # monotonic time from which copies may be renamed into place

    def access_path(self, document: str, page: str) -> Path:
        return self.image_root / copy_path(self.collection, document, page)

    def _copies(self, document: str) -> set[str]:
        """The file names of a document's access copies, in the folder or the bucket."""
        if self.target is not None:
            return self.target.names(copy_path(self.collection, document) + "/")
        return _copies(self.image_root / copy_path(self.collection, document))

    def _place(self, staged: str, final: Path) -> None:
        """Make a committed copy visible: a rename in the folder, or one upload to the bucket."""
        if self.target is not None:
            self.target.publish_file(Path(staged), final.relative_to(self.image_root).as_posix())
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop scheduling; a second call kills the pages in flight."""
        if self.stopped is None:
            self.stopped = signum
        else:
            self._kill = True

    def run(self, src: Path, metadata_csv: Path | None = None,
            progress: Callable[[int, int], None] | None = None) -> Report:
        src = src.resolve()
        documents, report = scan_source(src, [metadata_csv] if metadata_csv is not None else [])
        self._resolve_idents(documents)
        by_ident = {d.ident: d for d in documents.values()}
        csv_rows: list[CsvRow] = []
        if metadata_csv is not None:
            aliases = {name: d.ident for name, d in documents.items()} | {i: i for i in by_ident}
            wanted = [aliases.get(nfc(i), nfc(i)) for i in csv_ids(metadata_csv)]
            existing = self.catalogue.existing_documents(self.collection, wanted)
            csv_rows, errors = read_metadata_csv(metadata_csv, set(aliases) | existing, self.catalogue.tiers,
                                                 aliases)
            if errors:
                raise CsvError(errors)
        coll_dir = self.image_root / self.collection
        coll_dir.mkdir(parents=True, exist_ok=True)
        self._recover(coll_dir)
        csv_new = self._prepare(csv_rows, by_ident)
        plan = self._plan(by_ident, report)
        try:
            self._convert(plan, by_ident, coll_dir, report, progress)
        finally:
            self._finish(csv_new, report, metadata_csv or src)
        return report

    # -- before any conversion -------------------------------------------------------------

    def _resolve_idents(self, documents: dict[str, SourceDocument]) -> None:
        """A document's id is its name; one an earlier version stored under a mangled id keeps that id."""
        for doc in documents.values():
            doc.ident = doc.name
        legacy = {safe_ident(d.name): d for d in documents.values() if safe_ident(d.name) != d.name}
        if not legacy:
            return
        real = self.catalogue.existing_documents(self.collection, [d.name for d in legacy.values()])
        with self.catalogue.sessions() as session:
            for batch in batches(sorted(legacy)):
                rows = session.execute(
                    select(Document.ident, func.min(Image.source_path))
                    .join(Image, Image.document_pk == Document.pk)
                    .where(Document.collection_id == self.collection, Document.ident.in_(batch))
                    .group_by(Document.ident)).all()
                for ident, source in rows:
                    doc = legacy[ident]
                    inside = source == str(doc.path) or (source or "").startswith(str(doc.path) + os.sep)
                    if doc.name not in real and inside:  # the same folder, ingested before Unicode names
                        doc.ident = ident

    def _prepare(self, csv_rows: list[CsvRow], by_ident: dict[str, SourceDocument]) -> set[str]:
        """Collection, CSV fields and tiers, in one transaction before any copy exists.

        New documents named in the CSV are created here (unplaced, without pages) with their tier,
        so that the access snapshot knows it before any of their copies is visible. Returns them."""
        created_docs: set[str] = set()
        with self.catalogue.session() as session:
            self.catalogue.lock_activities(session)  # before any write: see Catalogue.lock_activities
            created, changed = self._ensure_collection(session)
            coll = session.get(Collection, self.collection)
            assert coll is not None
            docs = {d.ident: d for batch in batches(sorted(r.ident for r in csv_rows)) for d in session.scalars(
                select(Document).where(Document.collection_id == coll.id, Document.ident.in_(batch)))}
            listed = False  # a change the collection's listing shows
            for row in csv_rows:
                doc = docs.get(row.ident)
                if doc is None:  # its Create activity comes with its first pages
                    source = by_ident.get(row.ident)
                    label = row.label or (source.name if source else row.ident)
                    session.add(Document(collection_id=coll.id, ident=row.ident, label=label, position=UNPLACED,
                                         metadata_pairs=row.metadata, sort_key=sort_key(row.ident), tier=row.tier,
                                         nav_date=row.date, summary=row.summary, rights=row.rights))
                    self.catalogue.count_items(session, coll.id, 1, 0)
                    created_docs.add(row.ident)
                    changed = True
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
                if doc.images:  # a document without pages has had no Create yet
                    if old_tier != new_tier:
                        self.catalogue.record_tier_change(session, "Manifest", coll.id, doc.ident, old_tier, new_tier)
                    else:
                        self.catalogue.record(session, "Update", "Manifest", coll.id, doc.ident, new_tier)
                    listed = True
                changed = True
            if listed and not created:
                self._record_collection_update(session, coll)
            if changed:
                self.catalogue.touch(session, coll.id)
        # every replica's access snapshot holds the new tiers before a copy may appear
        self._visible_at = time.monotonic() + MAX_AGE + 0.1
        return created_docs

    def _ensure_collection(self, session: Any) -> tuple[bool, bool]:
        """Create the collection, or apply a new label or tier to it: (created, changed)."""
        coll = session.get(Collection, self.collection)
        if coll is None:
            coll = Collection(id=self.collection, label=self.label or self.collection, tier=self.tier or "public",
                              metadata_pairs=[])
            session.add(coll)
            session.flush()
            self.catalogue.record(session, "Create", "Collection", coll.id, None, coll.tier)
            self.catalogue.record(session, "Create", "Manifest", coll.id, None, coll.tier)
            return True, True
        changed = False
        if self.label and coll.label != self.label:
            coll.label = self.label
            self._record_collection_update(session, coll)
            changed = True
        if self.tier and coll.tier != self.tier:
            # as set-tier: the collection, its manifest and the documents that inherit the tier
            self.catalogue.change_collection_tier(session, coll, self.tier)
            changed = True
        return False, changed

    def _whole_manifest(self, session: Any) -> bool:
        """Whether the collection is small enough to have a whole-collection manifest (CANVAS_LIMIT)."""
        pages = session.scalar(select(Collection.image_count).where(Collection.id == self.collection))
        return (pages or 0) <= CANVAS_LIMIT

    def _record_collection_update(self, session: Any, coll: Collection) -> None:
        self.catalogue.record(session, "Update", "Collection", coll.id, None, coll.tier)
        self.catalogue.record(session, "Update", "Manifest", coll.id, None, coll.tier)

    def _known_images(self, documents: list[str]) -> dict[str, list[tuple[int, str, int, float, str, int]]]:
        """What the catalogue holds for the source's documents only, never the whole collection:
        source path -> (page, ident, size, mtime, checksum, position), by page."""
        known: dict[str, list[tuple[int, str, int, float, str, int]]] = {}
        with self.catalogue.sessions() as session:
            for batch in batches(documents):
                rows = session.execute(
                    select(Image.source_path, Image.source_page, Image.ident, Image.source_size, Image.source_mtime,
                           Image.checksum, Image.position)
                    .join(Document, Image.document_pk == Document.pk)
                    .where(Document.collection_id == self.collection, Document.ident.in_(batch))
                ).all()
                for path, page, ident, size, mtime, checksum, position in rows:
                    known.setdefault(path, []).append((page, ident, size, mtime, checksum, position))
        for pages in known.values():
            pages.sort()
        return known

    def _plan(self, by_ident: dict[str, SourceDocument], report: Report) -> dict[str, list[Slot]]:
        """Each master: unchanged (size and mtime as catalogued, copies present: no file is read) or a job."""
        known = self._known_images(list(by_ident))
        plan: dict[str, list[Slot]] = {}
        for ident, doc in by_ident.items():
            copies: set[str] | None = None
            slots = []
            for master in doc.masters:
                slot = Slot(master)
                slots.append(slot)
                if not master.stem:  # reported by the scan; keeps its place
                    continue
                rows = known.get(str(master.path), [])
                slot.known = [(i, size, mtime, checksum) for _, i, size, mtime, checksum, _ in rows]
                slot.positions = [position for *_, position in rows]
                if copies is None and rows:  # one listing per document folder, not one stat per page
                    copies = self._copies(ident)
                same = all(size == master.size and mtime == master.mtime for _, _, size, mtime, *_ in rows)
                if rows and same and all(on_disk(i, ".tif") in (copies or set()) for _, i, *_ in rows):
                    slot.unchanged = True
                    report.unchanged += len(rows)
                else:
                    slot.job = True
            plan[ident] = slots
        return plan

    # -- conversion ------------------------------------------------------------------------

    def _convert(self, plan: dict[str, list[Slot]], by_ident: dict[str, SourceDocument], coll_dir: Path,
                 report: Report, progress: Callable[[int, int], None] | None) -> None:
        jobs = [(ident, slot) for ident, slots in plan.items() for slot in slots if slot.job]
        pending = {ident: sum(1 for s in slots if s.job) for ident, slots in plan.items()}
        for ident, count in pending.items():  # nothing to convert: only positions may have moved
            if count == 0 and _moved(plan[ident]):
                self._commit(by_ident[ident], plan[ident], report, None)
        if progress:
            progress(0, len(jobs))
        if not jobs:
            return
        staging = coll_dir / f"{STAGING}{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        lock = open(staging / "lock", "w")  # held while this run lives: the next run leaves its folder alone
        fcntl.flock(lock, fcntl.LOCK_EX)
        journal = open(staging / "journal", "a", encoding="utf-8")
        previous = self._catch_signals()
        ctx = multiprocessing.get_context("spawn")
        before = set(multiprocessing.active_children())
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),))
        queue = list(reversed(jobs))
        inflight: dict[Future[Outcome], tuple[str, Slot]] = {}
        done = 0
        deadline: float | None = None
        try:
            while queue or inflight:
                while queue and self.stopped is None and len(inflight) < 2 * self.workers:
                    ident, slot = queue.pop()
                    copies_exist = bool(slot.known) and {on_disk(i, ".tif") for i, *_ in slot.known} <= self._copies(
                        ident)
                    known_checksum = slot.known[0][3] if slot.known else None
                    future = pool.submit(process_master, str(slot.master.path), slot.master.stem, str(staging),
                                         known_checksum, copies_exist, self.quality, self.subsample,
                                         self.thumbnail_quality)
                    inflight[future] = (ident, slot)
                if not inflight:
                    break
                finished, _ = wait(inflight, timeout=0.25, return_when=FIRST_COMPLETED)
                if self.stopped is not None and deadline is None:
                    deadline = time.monotonic() + self.stop_grace
                if deadline is not None and (self._kill or time.monotonic() > deadline) and not finished:
                    for child in set(multiprocessing.active_children()) - before:
                        child.kill()  # the pages still in flight are given up
                    break
                for future in finished:
                    ident, slot = inflight.pop(future)
                    try:
                        slot.outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by a bad file
                        slot.outcome = Outcome(slot.master.path, error=f"worker failed: {type(exc).__name__}")
                    if slot.outcome.error is not None:
                        report.failed.append((slot.master.path, slot.outcome.error))
                    done += 1
                    if progress:
                        progress(done, len(jobs))
                    pending[ident] -= 1
                    if pending[ident] == 0:  # the whole document is ready: commit it, then show it
                        self._commit(by_ident[ident], plan[ident], report, journal)
            for _ident, slot in [*inflight.values(), *reversed(queue)]:
                report.not_done.append(slot.master.path)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._restore_signals(previous)
            journal.close()
            shutil.rmtree(staging, ignore_errors=True)
            lock.close()
        report.stopped = self.stopped

    def _catch_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda n, _frame: self.stop(n))
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _commit(self, doc: SourceDocument, slots: list[Slot], report: Report, journal: Any) -> None:
        """One document's pages, positions and activity in one transaction; then its copies appear."""
        renames: list[tuple[str, Path, str, str]] = []  # staged, final, checksum, page id
        converted = unchanged = 0
        with self.catalogue.session() as session:
            self.catalogue.lock_activities(session)  # before any write: see Catalogue.lock_activities
            coll_tier = session.scalar(select(Collection.tier).where(Collection.id == self.collection))
            row = session.scalar(select(Document).where(
                Document.collection_id == self.collection, Document.ident == doc.ident))
            if row is None:
                row = Document(collection_id=self.collection, ident=doc.ident, label=doc.name, position=UNPLACED,
                               metadata_pairs=[], sort_key=sort_key(doc.ident))
                session.add(row)
                session.flush()
                self.catalogue.count_items(session, self.collection, 1, 0)
            existing = {img.ident: img for img in row.images}
            first_pages = not existing
            used: dict[str, Path] = {}
            position = added = 0
            changed = False
            for slot in slots:
                out = slot.outcome
                if not slot.master.stem or (out is not None and out.error is not None):
                    position += 1  # a failed master keeps its place: the pages after it keep theirs
                    continue
                if out is not None and out.converted:
                    pages: list[tuple[str, PageOut | None]] = [(p.ident, p) for p in out.pages]
                else:
                    pages = [(ident, None) for ident, *_ in slot.known]
                clash = next((i for i, _ in pages if i in used), None)
                if clash is not None:
                    report.failed.append((slot.master.path, f"page id {clash!r} is already taken by {used[clash]}"))
                    position += len(pages)
                    continue
                for n, (ident, page) in enumerate(pages):
                    used[ident] = slot.master.path
                    img = existing.get(ident)
                    if img is None:
                        img = Image(document_pk=row.pk, ident=ident)
                        session.add(img)
                        added += 1
                        changed = True
                    if page is not None and out is not None:
                        changed = changed or (img.width, img.height, img.checksum) != (page.width, page.height,
                                                                                     out.checksum)
                        img.width, img.height, img.checksum = page.width, page.height, out.checksum
                        assert page.staged is not None
                        renames.append((page.staged, self.access_path(doc.ident, ident), out.checksum, ident))
                    if img.position != position + n:
                        changed = True
                        img.position, img.label = position + n, str(position + n + 1)
                    if out is not None:
                        img.source_path, img.source_page = str(slot.master.path), n
                        img.source_size, img.source_mtime = slot.master.size, slot.master.mtime
                position += len(pages)
                if out is not None and out.converted:
                    converted += len(pages)
                elif out is not None:
                    unchanged += len(pages)
            if not existing and not added:  # every master failed: no document
                session.delete(row)
                self.catalogue.count_items(session, self.collection, -1, 0)
            else:
                session.flush()
                self.catalogue.count_items(session, self.collection, 0, added)
                if changed:
                    self.catalogue.record(session, "Create" if first_pages else "Update", "Manifest",
                                          self.collection, doc.ident, effective_tier(row.tier, coll_tier))
                    if not first_pages and self._whole_manifest(session):  # it shows these pages too
                        self.catalogue.record(session, "Update", "Manifest", self.collection, None, coll_tier)
                    self.catalogue.touch(session, self.collection)
            if journal is not None and renames:  # what to finish if this process dies after the commit
                for staged, final, checksum, page_ident in renames:
                    journal.write(f"{staged}\t{final}\t{checksum}\t{doc.ident}\t{page_ident}\n")
                journal.flush()
                os.fsync(journal.fileno())
        report.converted += converted
        report.unchanged += unchanged
        if renames:
            delay = self._visible_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for staged, final, *_ in renames:
                self._place(staged, final)

    def _recover(self, coll_dir: Path) -> None:
        """Staging folders of runs that died: finish the renames they had committed, drop the rest."""
        with os.scandir(coll_dir) as entries:
            dead = [Path(e.path) for e in entries if e.name.startswith(STAGING) and e.is_dir()]
        for folder in dead:
            try:
                lock = open(folder / "lock", "a")
            except OSError:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            with lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live run's
                self._replay(folder / "journal")
                shutil.rmtree(folder, ignore_errors=True)

    def _replay(self, journal: Path) -> None:
        """A journal line is written before its commit: the rename is finished only when the row is there."""
        try:
            lines = journal.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        for line in lines:
            staged, final, checksum, document, page = (line.split("\t") + [""] * 4)[:5]
            if not staged or not os.path.exists(staged):
                continue
            if not document:  # a journal of an earlier version: the names are the ids
                document, page = Path(final).parent.name, Path(final).stem
            with self.catalogue.sessions() as session:
                stored = session.scalar(select(Image.checksum).join(Document, Image.document_pk == Document.pk).where(
                    Document.collection_id == self.collection, Document.ident == document, Image.ident == page))
            if stored == checksum:  # committed: the copy belongs there
                self._place(staged, Path(final))

    # -- after the conversions ------------------------------------------------------------------

    def _finish(self, csv_new: set[str], report: Report, where: Path) -> None:
        """Put new documents in order, drop CSV documents that got no page, record the collection's change."""
        with self.catalogue.session() as session:
            self.catalogue.lock_activities(session)  # before any write: see Catalogue.lock_activities
            empty = []  # documents the CSV created whose masters all failed: unplaced, never announced
            for batch in batches(sorted(csv_new)):
                empty += session.scalars(select(Document).where(
                    Document.collection_id == self.collection, Document.ident.in_(batch),
                    Document.position == UNPLACED, ~Document.images.any())).all()
            for doc in empty:
                report.failed.append((where, f"document {doc.ident!r} has no pages"))
                session.execute(delete(Document).where(Document.pk == doc.pk))
                self.catalogue.count_items(session, self.collection, -1, 0)
            before = session.scalar(select(func.max(Document.position)).where(
                Document.collection_id == self.collection, Document.position >= 0))
            placed = self.catalogue.place_documents(session, self.collection)  # new ones, and any a crash left
            if placed and before is not None:  # new documents joined a collection that listed some
                coll = session.get(Collection, self.collection)
                assert coll is not None
                self._record_collection_update(session, coll)
            if placed or empty:
                self.catalogue.touch(session, self.collection)


def _moved(slots: list[Slot]) -> bool:
    """Whether a document's catalogued page positions differ from its folder's order."""
    position = 0
    for slot in slots:
        if not slot.unchanged:
            position += 1
            continue
        if slot.positions != list(range(position, position + len(slot.known))):
            return True
        position += len(slot.known)
    return False


def _copies(folder: Path) -> set[str]:
    """The access copies in a document folder; an old run's temporary files there are removed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    for name in names:
        if name.startswith(STAGING):
            (folder / name).unlink(missing_ok=True)
    return set(names)


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
