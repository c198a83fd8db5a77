"""A built document as an HTTP answer: its representation (JSON or JSON-LD, compressed or not), its validators
(ETag, Last-Modified) and the conditional requests they answer with 304, and who may keep it."""

from __future__ import annotations

import email.utils
import time

from starlette.requests import Request
from starlette.responses import Response

from iiif_server.manifests.cache import Document
from iiif_server.runtime import observe
from iiif_server.runtime.compression import accepted
from iiif_server.tiles.answers import etag_matches

JSON_LD = 'application/ld+json;profile="{}"'
PRIVATE = "private, max-age=0"


def http_date(seconds: float) -> str:
    return email.utils.formatdate(int(seconds), usegmt=True)


def not_modified_since(modified: float | None, request: Request) -> bool:
    """If-Modified-Since (RFC 9110 13.1.3), asked only without If-None-Match: nothing changed after that
    second. A change within the current second is never vouched for, so two changes in one second cannot
    hide the second one behind the first one's date."""
    since = request.headers.get("if-modified-since")
    if modified is None or since is None or "if-none-match" in request.headers:
        return False
    try:
        parsed = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored
    if parsed.tzinfo is None:
        return False
    return int(modified) <= parsed.timestamp() and int(modified) < int(time.time())


def respond(request: Request, doc: Document, context: str, public: str = "public, max-age=60",
            media: str | None = None) -> Response:
    """`public`: the Cache-Control of a document that is the same for everybody; `media`: a media type other
    than JSON (then no JSON-LD variant)."""
    jsonld = media is None and "application/ld+json" in request.headers.get("accept", "")
    media = media or (JSON_LD.format(context) if jsonld else "application/json")
    etag = doc.etag[:-1] + '-ld"' if jsonld else doc.etag  # two representations (Vary: Accept)
    encoding = accepted(request.headers.get("accept-encoding", "")) if doc.encoded else None
    body = doc.encoded.get(encoding, doc.body) if encoding else doc.body
    headers = {"Cache-Control": public, "Vary": "Accept, Accept-Encoding"}
    if doc.private:
        observe.note_private_document()
        headers.update({"Cache-Control": PRIVATE, "Vary": "Accept, Accept-Encoding, Authorization, Cookie"})
    if encoding and body is not doc.body:
        headers["Content-Encoding"] = encoding
        etag = etag[:-1] + f'-{encoding}"'  # each encoding is its own representation
    headers["ETag"] = etag
    if doc.modified is not None:
        headers["Last-Modified"] = http_date(doc.modified)
    if etag_matches(etag, request.headers.get("if-none-match", "")) or not_modified_since(doc.modified, request):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(b"", media_type=media, headers={**headers, "Content-Length": str(len(body))})
    return Response(body, media_type=media, headers=headers)
