"""The hidden staging folders of ingest runs: copies wait there until their document is committed, with a journal
of the renames to finish if the run dies after a commit. A run first recovers what dead runs left."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from iiif_server.ingest.withdraw import TRASH, clean_debris

STAGING = ".ingest-"  # hidden: no identifier can name what lies below it


def recover(coll_dir: Path, checksum: Callable[[str, str], str | None], place: Callable[[str, Path], None]) -> None:
    """Staging folders of runs that died: finish the renames they had committed, drop the rest; and what a
    killed withdrawal left in the collection's folder. `checksum(document, page)`: the catalogue's."""
    clean_debris(coll_dir)
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
            replay(folder / "journal", checksum, place)
            shutil.rmtree(folder, ignore_errors=True)


def replay(journal: Path, checksum: Callable[[str, str], str | None], place: Callable[[str, Path], None]) -> None:
    """A journal line is written before its commit: the rename is finished only when the row is there."""
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        staged, final, expected, document, page = (line.split("\t") + [""] * 4)[:5]
        if not staged or not os.path.exists(staged):
            continue
        if not document:  # a journal of an earlier version: the names are the ids
            document, page = Path(final).parent.name, Path(final).stem
        if checksum(document, page) == expected:  # committed: it goes there
            place(staged, Path(final))


def folder_copies(folder: Path) -> set[str]:
    """The access copies in a document folder; an old run's temporary files and a killed withdrawal's debris
    there are removed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    for name in names:
        if name.startswith(STAGING):
            (folder / name).unlink(missing_ok=True)
        elif name.startswith(TRASH):
            shutil.rmtree(folder / name, ignore_errors=True) if (folder / name).is_dir() else (
                folder / name).unlink(missing_ok=True)
    return {name for name in names if not name.startswith((STAGING, TRASH))}
