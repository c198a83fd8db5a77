"""Withdrawal: take a collection, a document or a page out of the catalogue and the image root.

Archives withdraw material on request. Masters are never touched; access copies are moved out of
reach first (renamed to a hidden name, which no identifier can name), then the catalogue rows go
with Delete activities for harvesters, in one transaction, then the moved copies are deleted. A
crash at any point leaves nothing servable that was withdrawn: at worst hidden debris, which the
next withdrawal or ingest in that folder removes. Safe while serving: every replica finds the
copies gone on its next request.

In object storage nothing can be renamed, so the objects are deleted first, before the rows: a
crash between leaves pages whose images are gone (404), and the withdrawal can be run again.
Replicas may serve blocks they read less than `--s3-ttl` seconds earlier.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.withdrawals import Withdrawn
from iiif_server.errors import Target

TRASH = ".withdrawn-"


def _move_away(path: Path) -> Path | None:
    """Rename a copy or folder to a hidden name beside it: unservable at once. The name is random, not
    derived from the old one, so that it fits whatever the old name's length."""
    if not path.exists():
        return None
    hidden = path.with_name(f"{TRASH}{secrets.token_hex(8)}")
    os.replace(path, hidden)
    return hidden


def _delete(path: Path | None) -> None:
    if path is None:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class FolderCopies:
    """Access copies in a folder: moved out of reach at once, deleted once the rows are gone."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def take_away(self, relative: str) -> Callable[[], None]:
        path = self.root / relative
        clean_debris(path.parent)  # what an earlier withdrawal here left when it was killed
        moved = _move_away(path)
        return lambda: _delete(moved)


class ObjectCopies:
    """Access copies in a bucket (an obstore store): deleted at once, nothing left to do after."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def take_away(self, relative: str) -> Callable[[], None]:
        import obstore

        if relative.endswith(".tif"):
            keys = [relative]
        else:
            keys = [item["path"] for batch in obstore.list(self.store, prefix=relative + "/") for item in batch]
        for start in range(0, len(keys), 1000):
            obstore.delete(self.store, keys[start:start + 1000])
        return lambda: None


def clean_debris(folder: Path) -> None:
    """Remove what a withdrawal interrupted by a crash left in a folder (hidden, never served: only space).
    The next withdrawal in that folder and the next ingest of its collection call this."""
    try:
        with os.scandir(folder) as entries:
            leftovers = [Path(e.path) for e in entries if e.name.startswith(TRASH)]
    except OSError:
        return
    for leftover in leftovers:
        _delete(leftover)


def withdraw(catalogue: Catalogue, copies: Path | FolderCopies | ObjectCopies, target: str) -> Withdrawn:
    """Withdraw `collection`, `collection/document` or `collection/document/page` (NotFound when unknown,
    BadTarget when not of that form); `copies` is the image root (a folder) or where the copies are."""
    if isinstance(copies, Path):
        copies = FolderCopies(copies)
    result, finish = catalogue.withdraw(Target.parse(target), copies.take_away)
    finish()  # committed: the copies can go
    return result
