"""Change Discovery over HTTP: the stream and its pages (manifests/discovery.py builds them), each client
held to a rate (runtime/ratelimit.py): over it, 429 with Retry-After, never stored by shared caches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iiif_server.db.catalogue import Catalogue
from iiif_server.manifests import discovery, presentation
from iiif_server.manifests.answer import respond
from iiif_server.manifests.cache import Document, DocumentCache
from iiif_server.runtime.ratelimit import RateLimit

CACHE_BYTES = 32 * 1024 * 1024
# complete pages never change, the open end does
FINAL = "final"
FINAL_PAGE = f"public, max-age={discovery.COMPLETE_MAX_AGE}, immutable"
OPEN_STREAM = f"public, max-age={discovery.OPEN_MAX_AGE}"

Run = Callable[..., Awaitable[Any]]


class DiscoveryService:
    def __init__(self, catalogue: Catalogue, base_url: Callable[[Request], str], run: Run,
                 limit: RateLimit | None = None, client: Callable[[Request], str | None] | None = None,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.catalogue = catalogue
        self.base_url = base_url
        self.run = run
        self.limit = limit
        self.client = client or (lambda request: request.client.host if request.client else None)
        self.cache = DocumentCache(cache_bytes)

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/discovery/activity/all-changes", self.activity_stream, methods=["GET", "HEAD"]),
            Route("/iiif/discovery/activity/page/{n:int}", self.activity_page, methods=["GET", "HEAD"]),
        ]

    def limited(self, request: Request) -> Response | None:
        """429 when this client is over its rate (None: go on)."""
        if self.limit is None:
            return None
        wait = self.limit.wait(self.client(request) or "")
        if not wait:
            return None
        return PlainTextResponse(f"too many requests: wait {wait} s (the stream is limited per client)\n",
                                 status_code=429, headers={"Retry-After": str(wait), "Cache-Control": "no-store"})

    async def activity_stream(self, request: Request) -> Response:
        if (refused := self.limited(request)) is not None:
            return refused
        urls = presentation.Urls(self.base_url(request))
        total, top = await self.run(self.catalogue.activity_bounds)
        doc = Document.build(discovery.collection_document(urls, total, top, discovery.PAGE_SIZE), False)
        return respond(request, doc, discovery.CONTEXT, OPEN_STREAM)

    async def activity_page(self, request: Request) -> Response:
        """Page n by its id range; a complete page (the highest id lies beyond it) is final."""
        if (refused := self.limited(request)) is not None:
            return refused
        n = request.path_params["n"]
        urls = presentation.Urls(self.base_url(request))
        size = discovery.PAGE_SIZE
        what = ("activity-page", n, size, urls.base)
        doc = self.cache.get(what, FINAL)
        if doc is not None:
            return respond(request, doc, discovery.CONTEXT, FINAL_PAGE)
        top, rows = await self.run(self.catalogue.activities, *discovery.id_range(n, size), True)
        last = discovery.last_page(top, size)
        if n > last:
            return PlainTextResponse(f"no page {n}\n", status_code=404)
        doc = await self.run(lambda: Document.build(discovery.page_document(urls, n, top, rows, size), False))
        if n < last:
            self.cache.put(what, FINAL, doc)
            return respond(request, doc, discovery.CONTEXT, FINAL_PAGE)
        return respond(request, doc, discovery.CONTEXT, OPEN_STREAM)
