"""Compression of JSON documents: gzip always, brotli where the client asks and it is installed.

Documents are compressed once, when cached, never per request; images are never compressed
(JPEG, PNG and WebP already are).
"""

from __future__ import annotations

import gzip

try:
    import brotli
except ImportError:  # optional: gzip alone is fine
    brotli = None

MIN_SIZE = 1024  # below this the headers cost more than compression saves
ENCODINGS = ("br", "gzip") if brotli is not None else ("gzip",)


def accepted(accept_encoding: str) -> str | None:
    """The best encoding we offer that the request's Accept-Encoding allows (q=0 refuses)."""
    allowed: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[name.strip()] = q
    for encoding in ENCODINGS:
        if allowed.get(encoding, allowed.get("*", 0.0)) > 0:
            return encoding
    return None


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br" and brotli is not None:
        return bytes(brotli.compress(body, quality=5))
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    raise ValueError(f"unknown encoding {encoding!r}")
