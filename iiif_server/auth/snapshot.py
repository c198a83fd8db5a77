"""What the access check needs from the catalogue, held in process: tiers and token states.

The tile path asks the database nothing. The snapshot holds every collection's tier, the tier
overrides of documents and pages (few: most inherit) and the state of every issued token, and is
reloaded when the catalogue version changes. The version is read at most every half second while
requests come; a request that finds the snapshot older than `max_age` (an idle worker) waits for
the check, so a change made through any replica or the CLI is honoured everywhere within a second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image, TokenRow
from iiif_server.names import fold

MAX_AGE = 1.0  # seconds a change may take to reach every replica

Run = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Tables:
    version: int | None = None
    collections: dict[str, str] = field(default_factory=dict)
    documents: dict[tuple[str, str], str] = field(default_factory=dict)
    images: dict[tuple[str, str, str], str] = field(default_factory=dict)
    revoked: dict[str, bool] = field(default_factory=dict)  # token id -> revoked
    used: frozenset[str] = frozenset()  # every tier the catalogue gives
    # folded key -> the exact keys spelled so, with their tiers (see `Snapshot.alias_tiers`)
    folded: dict[tuple[str, ...], tuple[tuple[tuple[str, ...], str], ...]] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()  # the collections with a document or page of a tier of its own


def fold_keys(*maps: dict[Any, str]) -> dict[tuple[str, ...], tuple[tuple[tuple[str, ...], str], ...]]:
    """Collections, document and page overrides by their folded spelling."""
    out: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {}
    for entries in maps:
        for key, tier in entries.items():
            exact = key if isinstance(key, tuple) else (key,)
            out.setdefault(tuple(fold(part) for part in exact), []).append((exact, tier))
    return {key: tuple(found) for key, found in out.items()}


def load(catalogue: Catalogue, version: int) -> Tables:
    with catalogue.sessions() as session:
        collections = {c: t for c, t in session.execute(select(Collection.id, Collection.tier))}
        documents = {(c, d): t for c, d, t in session.execute(
            select(Document.collection_id, Document.ident, Document.tier).where(Document.tier.is_not(None)))}
        images = {(c, d, i): t for c, d, i, t in session.execute(
            select(Document.collection_id, Document.ident, Image.ident, Image.tier)
            .join(Document, Image.document_pk == Document.pk).where(Image.tier.is_not(None)))}
        revoked = {i: r is not None for i, r in session.execute(select(TokenRow.id, TokenRow.revoked))}
    used = frozenset(collections.values()) | frozenset(documents.values()) | frozenset(images.values())
    overridden = frozenset(key[0] for key in documents) | frozenset(key[0] for key in images)
    return Tables(version, collections, documents, images, revoked, used,
                  fold_keys(collections, documents, images), overridden)


class Snapshot:
    def __init__(self, catalogue: Catalogue, max_age: float = MAX_AGE) -> None:
        self.catalogue = catalogue
        self.max_age = max_age
        self.tables = Tables()
        self.checked = -1e9  # monotonic time of the last version check
        self._lock = threading.Lock()
        self._pending: asyncio.Future[Any] | None = None

    def refresh(self, force: bool = False) -> None:
        """Read the catalogue version and reload on a change (blocking: run it in a worker thread)."""
        with self._lock:
            if not force and time.monotonic() - self.checked < self.max_age / 2:
                return  # another thread has just done it
            started = time.monotonic()
            version = self.catalogue.version()
            if force or version != self.tables.version:
                self.tables = load(self.catalogue, version)
            self.checked = started

    def current(self) -> None:
        """Blocking form of `ensure`, for code already in a worker thread."""
        if time.monotonic() - self.checked > self.max_age:
            self.refresh()

    async def ensure(self, run: Run) -> None:
        """Fresh enough for an access decision: wait when stale, else refresh in the background when due."""
        age = time.monotonic() - self.checked
        if age > self.max_age:
            await run(self.refresh)
        elif age > self.max_age / 2 and self._pending is None:
            self._pending = asyncio.ensure_future(run(self.refresh))
            self._pending.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._pending = None
        if not task.cancelled() and task.exception() is not None:
            self.checked = -1e9  # the next request waits for a good check instead

    def tiers_used(self) -> frozenset[str]:
        return self.tables.used

    def tier(self, identifier: str) -> str | None:
        """The tier of an image under a catalogued collection's folder, None outside them.

        Pages the catalogue does not know (yet) take their document's or collection's tier: never
        public by default."""
        parts = identifier.split("/")
        tables = self.tables
        collection = tables.collections.get(parts[0])
        if collection is None:
            return None
        if len(parts) >= 2:
            if len(parts) == 3 and (found := tables.images.get((parts[0], parts[1], parts[2]))):
                return found
            if found := tables.documents.get((parts[0], parts[1])):
                return found
        return collection

    def alias_tiers(self, identifier: str) -> list[str]:
        """Tiers of catalogued collections and overrides spelled otherwise than `identifier` but alike once
        case and Unicode form are folded: on a share that folds names (SMB, macOS) the file this spelling
        opens may be theirs, so the spelling is never given less than they have."""
        parts = tuple(identifier.split("/"))
        folded = self.tables.folded
        if not folded:
            return []
        keys = tuple(fold(part) for part in parts[:3])
        return [tier for n in range(1, len(keys) + 1) for exact, tier in folded.get(keys[:n], ())
                if exact != parts[:n]]

    def token(self, ident: str) -> bool | None:
        """True for a known, unrevoked token, False for a revoked one, None when not (yet) known here."""
        revoked = self.tables.revoked.get(ident)
        return None if revoked is None else not revoked
