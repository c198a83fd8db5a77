"""Images in a folder: the identifier is the path below it without the extension, spelled exactly as
stored, reached through no link; a name too long for one file name is found under `names.on_disk`."""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from iiif_server.names import fits, on_disk
from iiif_server.tiles.sources import (
    EXTENSIONS,
    SCAN_LIMIT,
    SOURCES_BYTES,
    Source,
    SourceCache,
    check_identifier,
    open_source,
    unknown,
)


class FileSystemSource:
    """Images in a folder; the identifier is the path below it, no extension."""

    def __init__(self, root: Path, budget: int = SOURCES_BYTES) -> None:
        self.root = root.resolve()
        self._cache = SourceCache(budget)

    def readable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)

    def find(self, identifier: str) -> Path:
        """The file of an identifier spelled exactly as it is stored, reached through no link: another
        spelling a file system folds to it (case, Unicode form) or an alias link is an unknown identifier."""
        parts = check_identifier(identifier)
        folder = self.root.joinpath(*(on_disk(part) for part in parts[:-1]))
        for ext in EXTENSIONS:
            name = on_disk(parts[-1], ext) if ext == ".tif" else parts[-1] + ext  # ingest writes .tif only
            if not fits(name):
                continue
            candidate = folder / name
            try:
                st = os.stat(candidate)
                if not stat.S_ISREG(st.st_mode) or os.path.realpath(candidate) != str(candidate):
                    continue  # a link on the way, inside the root or out of it: not this name's file
            except (OSError, ValueError):
                continue
            if spelled_as_stored(self.root, candidate):
                return candidate
        raise unknown(identifier)

    def open(self, identifier: str) -> Source:
        path = self.find(identifier)
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._cache.get(path, stamp)
        if cached is not None:
            return cached
        source = open_source(path, stamp)
        self._cache.put(path, source)
        return source

    def identifiers(self) -> Iterator[str]:
        """Identifiers of the images under the root, in path order."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                stem, ext = os.path.splitext(name)
                if ext.lower() in EXTENSIONS and not name.startswith("."):
                    rel = os.path.relpath(os.path.join(dirpath, stem), self.root)
                    yield rel.replace(os.sep, "/")

    def has_images(self) -> bool:
        return next(self.identifiers(), None) is not None

    def loose_images(self, catalogued: set[str]) -> Iterator[str]:
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d not in catalogued]
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                seen += 1
                if seen > SCAN_LIMIT:
                    return
                stem, ext = os.path.splitext(name)
                if ext.lower() in EXTENSIONS and not name.startswith("."):
                    yield os.path.normpath(os.path.join(rel, stem)).replace(os.sep, "/")

    def describe(self) -> str:
        return str(self.root)


def spelled_as_stored(root: Path, path: Path) -> bool:
    """Whether every name from `root` down to `path` is stored as spelled. Only a folder that folds
    names (a probe with the name's other case or normal form finds the same entry) is listed."""
    parts = path.relative_to(root).parts
    for n, name in enumerate(parts):
        folder = root.joinpath(*parts[:n])
        variants = {name.lower(), name.upper(), unicodedata.normalize("NFC", name),
                    unicodedata.normalize("NFD", name)} - {name}
        if not variants:
            continue
        try:
            st = os.lstat(folder / name)
        except OSError:
            return False
        for variant in variants:
            try:
                other = os.lstat(folder / variant) if fits(variant) else None
            except OSError:
                continue
            if other is not None and (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                try:
                    if name not in os.listdir(folder):
                        return False
                except OSError:
                    return False
                break
    return True
