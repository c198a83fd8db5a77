"""IIIF Change Discovery API 1.0: the activity stream partner archives harvest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .catalogue import Activity
from .presentation import Urls, nav_date

CONTEXT = "http://iiif.io/api/discovery/1/context.json"
PAGE_SIZE = 1000


def stream_url(urls: Urls) -> str:
    return f"{urls.base}/iiif/discovery/activity/all-changes"


def page_url(urls: Urls, n: int) -> str:
    return f"{urls.base}/iiif/discovery/activity/page/{n}"


def _object(urls: Urls, a: Activity) -> dict[str, str]:
    if a.object_type == "Collection":
        return {"id": urls.collection(a.collection_id), "type": "Collection"}
    if a.document_ident:
        return {"id": urls.manifest(a.collection_id, a.document_ident), "type": "Manifest"}
    return {"id": urls.collection_manifest(a.collection_id), "type": "Manifest"}


def pages_for(total: int, size: int | None = None) -> int:
    return max(1, -(-total // (size or PAGE_SIZE)))  # PAGE_SIZE read now, not when this was defined


def collection_document(urls: Urls, total: int, size: int | None = None) -> bytes:
    last = pages_for(total, size) - 1
    doc = {
        "@context": CONTEXT,
        "id": stream_url(urls),
        "type": "OrderedCollection",
        "totalItems": total,
        "first": {"id": page_url(urls, 0), "type": "OrderedCollectionPage"},
        "last": {"id": page_url(urls, last), "type": "OrderedCollectionPage"},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def page_document(urls: Urls, n: int, total: int, activities: Sequence[Activity], size: int | None = None) -> bytes:
    size = size or PAGE_SIZE
    last = pages_for(total, size) - 1
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": page_url(urls, n),
        "type": "OrderedCollectionPage",
        "startIndex": n * size,
        "partOf": {"id": stream_url(urls), "type": "OrderedCollection"},
    }
    if n > 0:
        doc["prev"] = {"id": page_url(urls, n - 1), "type": "OrderedCollectionPage"}
    if n < last:
        doc["next"] = {"id": page_url(urls, n + 1), "type": "OrderedCollectionPage"}
    doc["orderedItems"] = [
        {"type": a.type, "object": _object(urls, a), "endTime": nav_date(a.end_time)} for a in activities
    ]
    return json.dumps(doc, separators=(",", ":")).encode()
