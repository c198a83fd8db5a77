"""Reading a source folder: its documents and their masters in natural order, and every entry that cannot
be a page (with why). Names keep their spelling on disk (NFC); nothing on disk stops the scan."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from iiif_server.ingest.report import Report
from iiif_server.names import readable, shown

MAX_NAME = 200  # characters of a document or page identifier (the catalogue's column)


IGNORED = {"thumbs.db", "desktop.ini"}  # files that operating systems drop into folders


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    listing = sorted(_listing(src, report), key=lambda e: (natural_key(nfc(e.name)), e.name))
    # every entry that would be a document, by its name as an id (NFC; a file without its extension): two
    # entries of one name are both refused, whatever order the directory lists them in
    spellings: dict[str, list[str]] = {}
    for entry in listing:
        if not entry.name.startswith(".") and readable(entry.name):
            name = nfc(entry.name) if entry.is_dir(follow_symlinks=False) else nfc(Path(entry.name).stem)
            spellings.setdefault(name, []).append(entry.name)

    def claim(name: str, entry: os.DirEntry[str]) -> bool:
        problem = name_problem(name)
        others = [other for other in spellings.get(name, []) if other != entry.name]
        if problem is None and others:
            problem = (f"document name {shown(name)!r} is also the name of {', '.join(repr(shown(o)) for o in others)}"
                       " (spelled alike once Unicode-normalised, or a file beside a folder): rename one of them")
        if problem is None:
            return True
        report.failed.extend((f, problem) for f in _files_below(entry, report) or [Path(entry.path)])
        return False

    for entry in listing:
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
                documents[name] = doc  # even empty: its pages' masters may have gone (see Ingest._plan)
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


def scan_document(name: str, path: Path, report: Report, exclude: Iterable[Path] = ()) -> SourceDocument:
    """One document of a source again, as `scan_source` found it (a process sharing a run plans it anew)."""
    doc = SourceDocument(name, path)
    if path.is_dir():
        _walk(path, doc, report, {os.path.realpath(p) for p in exclude})
    elif (master := _master(path, name, report)) is not None:
        doc.masters.append(master)
    return doc
