"""The folder picker of the console's ingest: paths below the configured masters root, never outside it.

A path comes from a form as text relative to the root. It is refused when it is absolute, holds a NUL, a
backslash or a control character, or a part that is empty, `.`, `..` or hidden; what is left is resolved
(symbolic links followed) and must still lie below the root's own resolved path. A folder is listed in
pages of names after a key, reading at most `SCAN` entries of it: a folder of 200,000 documents costs one
bounded scan per page, never a sort of all of it.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from pathlib import Path

SCAN = 50_000  # entries a page of a folder may read
PAGE = 100
CSV_FILES = 50  # metadata files offered beside a folder


class OutsideRoot(ValueError):
    """A path the picker refuses; the message says why, without naming anything outside the root."""


def resolve(root: Path, relative: str, want: str = "folder") -> Path:
    """The real path of `relative` below `root`: a folder (`want="folder"`) or a `.csv` file (`"csv"`)."""
    if len(relative) > 4096 or any(c in relative for c in "\x00\\") or any(ord(c) < 32 for c in relative):
        raise OutsideRoot("that path holds characters a masters path never holds")
    if relative.startswith("/"):
        raise OutsideRoot("paths are relative to the masters folder")
    parts = [p for p in relative.split("/")]
    if relative and any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise OutsideRoot("paths may not hold empty, '.', '..' or hidden parts")
    base = Path(os.path.realpath(root))
    real = Path(os.path.realpath(base.joinpath(*parts))) if relative else base
    if real != base and not real.is_relative_to(base):
        raise OutsideRoot("that path leads outside the masters folder")
    if want == "folder" and not real.is_dir():
        raise FileNotFoundError(relative)
    if want == "csv" and (real.suffix.lower() != ".csv" or not real.is_file()):
        raise FileNotFoundError(relative)
    return real


def relative_to_root(root: Path, real: Path) -> str:
    return real.relative_to(os.path.realpath(root)).as_posix() if real != Path(os.path.realpath(root)) else ""


@dataclass(frozen=True)
class Listing:
    folders: list[str]  # sub-folder names, in order, after the key
    more: str | None  # the key of the next page
    cut: bool  # the folder holds more entries than one page may read


def folders(folder: Path, after: str = "", limit: int = PAGE) -> Listing:
    """Sub-folders (not hidden; links only when they stay below the root, which `resolve` checks on use)."""
    names: list[str] = []
    seen = 0
    cut = False
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                seen += 1
                if seen > SCAN:
                    cut = True
                    break
                if entry.name.startswith(".") or entry.name <= after:
                    continue
                try:
                    if entry.is_dir():
                        names.append(entry.name)
                except OSError:
                    continue
    except OSError:
        return Listing([], None, False)
    page = heapq.nsmallest(limit + 1, names)
    return Listing(page[:limit], page[limit - 1] if len(page) > limit else None, cut)


def csv_files(folder: Path, root: Path) -> list[str]:
    """Metadata files offered for a folder: the `.csv` files in it and beside it, relative to the root."""
    base = Path(os.path.realpath(root))
    out: list[str] = []
    for where in ([folder, folder.parent] if folder != base else [folder]):
        try:
            with os.scandir(where) as entries:
                for entry in entries:
                    if entry.name.lower().endswith(".csv") and not entry.name.startswith("."):
                        try:
                            if entry.is_file() and Path(os.path.realpath(entry.path)).is_relative_to(base):
                                out.append(Path(os.path.realpath(entry.path)).relative_to(base).as_posix())
                        except OSError:
                            continue
                    if len(out) >= CSV_FILES:
                        break
        except OSError:
            continue
    return sorted(set(out))
