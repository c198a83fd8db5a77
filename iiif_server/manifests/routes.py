"""Presentation and Change Discovery over HTTP: route -> catalogue -> builder -> cache -> response.

Documents are cached per process under a key taken from the catalogue (the
collection's revision, or the catalogue version): a change made by any
replica or by ingest changes the key, so no replica serves a stale document.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..tiles.service import etag_matches
from . import discovery, presentation
from .catalogue import Catalogue, PageRow

JSON_LD = 'application/ld+json;profile="{}"'
CACHE_ENTRIES = 256

Run = Callable[..., Awaitable[Any]]


def content_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class DocumentCache:
    """Serialised documents with their ETags, least recently used out."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, str] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[Any, ...], body: bytes) -> tuple[bytes, str]:
        item = (body, content_etag(body))
        self._items[key] = item
        while len(self._items) > self.entries:
            self._items.popitem(last=False)
        return item


class PresentationService:
    def __init__(self, catalogue: Catalogue, institution: presentation.Institution,
                 base_url: Callable[[Request], str], run: Run) -> None:
        self.catalogue = catalogue
        self.institution = institution
        self.base_url = base_url
        self.run = run
        self.cache = DocumentCache()

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/presentation/collections", self.top, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/collection", self.collection, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/manifest", self.collection_manifest, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/{document}/manifest", self.manifest, methods=["GET", "HEAD"]),
            Route("/iiif/discovery/activity/all-changes", self.activity_stream, methods=["GET", "HEAD"]),
            Route("/iiif/discovery/activity/page/{n:int}", self.activity_page, methods=["GET", "HEAD"]),
        ]

    async def _serve(self, request: Request, key: tuple[Any, ...] | None, build: Callable[[], bytes | None],
                     context: str) -> Response:
        urls = presentation.Urls(self.base_url(request))
        item = self.cache.get((*key, urls.base)) if key is not None else None
        if item is None:
            body = await self.run(build)
            if body is None:
                return PlainTextResponse("not found\n", status_code=404)
            item = self.cache.put((*key, urls.base), body) if key is not None else (body, content_etag(body))
        body, etag = item
        jsonld = "application/ld+json" in request.headers.get("accept", "")
        media = JSON_LD.format(context) if jsonld else "application/json"
        if jsonld:  # two representations (Vary: Accept), so two validators
            etag = etag[:-1] + '-ld"'
        headers = {"Cache-Control": "public, max-age=60", "Vary": "Accept", "ETag": etag}
        if etag_matches(etag, request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)

    async def top(self, request: Request) -> Response:
        urls = presentation.Urls(self.base_url(request))
        version = await self.run(self.catalogue.version)

        def build() -> bytes:
            return presentation.top_collection(urls, self.institution, list(self.catalogue.collections()))

        return await self._serve(request, ("top", version), build, presentation.CONTEXT)

    async def _revision(self, collection: str) -> int | None:
        return await self.run(self.catalogue.revision, collection)

    async def collection(self, request: Request) -> Response:
        cid = request.path_params["collection"]
        revision = await self._revision(cid)
        if revision is None:
            return PlainTextResponse(f"no collection {cid!r}\n", status_code=404)
        urls = presentation.Urls(self.base_url(request))

        def build() -> bytes | None:
            coll = self.catalogue.collection(cid)
            if coll is None:
                return None
            documents = list(self.catalogue.documents(cid))
            first: dict[str, PageRow] = {}
            for page in self.catalogue.pages(cid):
                first.setdefault(page.document, page)
            return presentation.collection(urls, self.institution, coll, documents, first)

        return await self._serve(request, ("collection", cid, revision), build, presentation.CONTEXT)

    async def collection_manifest(self, request: Request) -> Response:
        cid = request.path_params["collection"]
        revision = await self._revision(cid)
        if revision is None:
            return PlainTextResponse(f"no collection {cid!r}\n", status_code=404)
        urls = presentation.Urls(self.base_url(request))

        def build() -> bytes | None:
            coll = self.catalogue.collection(cid)
            if coll is None:
                return None
            documents = list(self.catalogue.documents(cid))
            return presentation.manifest(urls, self.institution, coll, self.catalogue.pages(cid),
                                         documents=documents)

        return await self._serve(request, ("manifest", cid, revision), build, presentation.CONTEXT)

    async def manifest(self, request: Request) -> Response:
        cid, did = request.path_params["collection"], request.path_params["document"]
        revision = await self._revision(cid)
        if revision is None:
            return PlainTextResponse(f"no collection {cid!r}\n", status_code=404)
        urls = presentation.Urls(self.base_url(request))

        def build() -> bytes | None:
            coll = self.catalogue.collection(cid)
            document = self.catalogue.document(cid, did)
            if coll is None or document is None:
                return None
            return presentation.manifest(urls, self.institution, coll, self.catalogue.pages(cid, did),
                                         document=document)

        return await self._serve(request, ("document", cid, did, revision), build, presentation.CONTEXT)

    async def activity_stream(self, request: Request) -> Response:
        urls = presentation.Urls(self.base_url(request))
        total, _ = await self.run(self.catalogue.activities, 0, 0, True)
        size = discovery.PAGE_SIZE
        return await self._serve(request, None, lambda: discovery.collection_document(urls, total, size),
                                 discovery.CONTEXT)

    async def activity_page(self, request: Request) -> Response:
        n = request.path_params["n"]
        urls = presentation.Urls(self.base_url(request))
        size = discovery.PAGE_SIZE
        total, rows = await self.run(self.catalogue.activities, n * size, size, True)
        if n >= discovery.pages_for(total, size):
            return PlainTextResponse(f"no page {n}\n", status_code=404)
        return await self._serve(request, None, lambda: discovery.page_document(urls, n, total, rows, size),
                                 discovery.CONTEXT)
