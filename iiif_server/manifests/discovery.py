"""IIIF Change Discovery API 1.0: the activity stream partner archives harvest.

Pages are addressed by key, not by offset: page n holds the public activities whose ids
lie in [n*S+1, (n+1)*S] (S = PAGE_SIZE ids). Ids also go to restricted activities, so a
page may hold fewer than S items, or none; it is served all the same so that the
prev/next chain holds. The last page is the one of the highest activity id; every page
before it is complete and never changes again, so it is cached for long, here and by
any shared cache. `startIndex` is left out: it could only be known by counting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from iiif_server.manifests.presentation import Urls, nav_date

CONTEXT = "http://iiif.io/api/discovery/1/context.json"
PAGE_SIZE = 1000
COMPLETE_MAX_AGE = 365 * 24 * 3600  # a complete page never changes
OPEN_MAX_AGE = 10  # the stream and its last page change with every recorded activity


def stream_url(urls: Urls) -> str:
    return f"{urls.base}/iiif/discovery/activity/all-changes"


def page_url(urls: Urls, n: int) -> str:
    return f"{urls.base}/iiif/discovery/activity/page/{n}"


def _object(urls: Urls, a: Any) -> dict[str, str]:
    if a.object_type == "Collection":
        return {"id": urls.collection(a.collection_id), "type": "Collection"}
    if a.document_ident:
        return {"id": urls.manifest(a.collection_id, a.document_ident), "type": "Manifest"}
    return {"id": urls.collection_manifest(a.collection_id), "type": "Manifest"}


def page_size(size: int | None = None) -> int:
    return size or PAGE_SIZE  # PAGE_SIZE read now, not when this was defined


def id_range(n: int, size: int | None = None) -> tuple[int, int]:
    """The activity ids page n covers, both ends included."""
    size = page_size(size)
    return n * size + 1, (n + 1) * size


def last_page(top: int, size: int | None = None) -> int:
    """The page of the highest activity id (page 0, empty, while there is none)."""
    return max(0, (top - 1) // page_size(size))


def collection_document(urls: Urls, total: int, top: int, size: int | None = None) -> bytes:
    doc = {
        "@context": CONTEXT,
        "id": stream_url(urls),
        "type": "OrderedCollection",
        "totalItems": total,
        "first": {"id": page_url(urls, 0), "type": "OrderedCollectionPage"},
        "last": {"id": page_url(urls, last_page(top, size)), "type": "OrderedCollectionPage"},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def page_document(urls: Urls, n: int, top: int, activities: Sequence[Any], size: int | None = None) -> bytes:
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": page_url(urls, n),
        "type": "OrderedCollectionPage",
        "partOf": {"id": stream_url(urls), "type": "OrderedCollection"},
    }
    if n > 0:
        doc["prev"] = {"id": page_url(urls, n - 1), "type": "OrderedCollectionPage"}
    if n < last_page(top, size):
        doc["next"] = {"id": page_url(urls, n + 1), "type": "OrderedCollectionPage"}
    stream = {"id": stream_url(urls), "type": "OrderedCollection"}
    doc["orderedItems"] = [activity(urls, a, stream) for a in activities]
    return json.dumps(doc, separators=(",", ":")).encode()


def activity(urls: Urls, a: Any, stream: dict[str, str]) -> dict[str, Any]:
    """One activity. A change of tier into or out of public is an Add to or a Remove from this stream (2.1.4: a
    change of permissions, not a creation or a deletion): an Add names the stream as its `target` and a Remove
    as its `origin`, which is how a harvester's page algorithm (3.5.2) knows they concern it."""
    item: dict[str, Any] = {"type": a.type, "object": _object(urls, a)}
    if a.type == "Add":
        item["target"] = stream
    elif a.type == "Remove":
        item["origin"] = stream
    item["endTime"] = nav_date(a.end_time)
    return item

