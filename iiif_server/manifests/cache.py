"""The document cache: serialised documents with their ETag and compressed forms, bounded by bytes.

An entry is kept under what it is (kind, collection, document, view, base URL) together with the
revision it was built from: a newer revision replaces it, so superseded documents leave at once
instead of waiting to age out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from iiif_server.runtime.compression import ENCODINGS, MIN_SIZE, compress


def content_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@dataclass(frozen=True)
class Document:
    body: bytes
    private: bool  # shows restricted material: never stored by shared caches
    etag: str
    encoded: dict[str, bytes]  # the body in each offered Content-Encoding, when worth it
    modified: float | None = None  # when what it shows last changed (Last-Modified), a POSIX time

    @classmethod
    def build(cls, body: bytes, private: bool, modified: float | None = None) -> Document:
        """Hash and compress once (in a worker thread), not per request."""
        encoded = {e: compress(body, e) for e in ENCODINGS} if len(body) >= MIN_SIZE else {}
        return cls(body, private, content_etag(body), encoded, modified)

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(v) for v in self.encoded.values())


class DocumentCache:
    """Least recently used out, bounded by the bytes of bodies and their compressed forms."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[Hashable, Document]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, what: Hashable, revision: Hashable) -> Document | None:
        item = self._items.get(what)
        if item is None or item[0] != revision:
            return None
        self._items.move_to_end(what)
        return item[1]

    def put(self, what: Hashable, revision: Hashable, doc: Document) -> None:
        old = self._items.pop(what, None)
        if old is not None:
            self.size -= old[1].size
        if doc.size > self.max_bytes // 4:
            return  # one huge document must not flush everything else
        self._items[what] = (revision, doc)
        self.size += doc.size
        while self.size > self.max_bytes and self._items:
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= dropped.size
