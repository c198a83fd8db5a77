"""Presentation and Change Discovery over HTTP: route -> catalogue -> builder -> cache -> response.

Documents are cached per process under a key taken from the catalogue (the
collection's revision, or the catalogue version): a change made by any
replica or by ingest changes the key, so no replica serves a stale document.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..auth.policy import Access
from ..tiles.service import etag_matches
from . import discovery, presentation
from .catalogue import Catalogue, PageRow, effective_tier
from .catalogue import Collection as CollectionRow
from .presentation import ServicesFor

if TYPE_CHECKING:
    from ..auth.services import AuthServices

JSON_LD = 'application/ld+json;profile="{}"'
CACHE_ENTRIES = 256

Run = Callable[..., Awaitable[Any]]
Built = tuple[bytes, bool]  # a serialised document, and whether it shows restricted material


def content_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class DocumentCache:
    """Serialised documents with their ETags, least recently used out."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[tuple[Any, ...], tuple[bytes, str, bool]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, str, bool] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[Any, ...], body: bytes, private: bool = False) -> tuple[bytes, str, bool]:
        item = (body, content_etag(body), private)
        self._items[key] = item
        while len(self._items) > self.entries:
            self._items.popitem(last=False)
        return item


@dataclass(frozen=True)
class View:
    """What one request may see of one collection; part of the cache key."""

    access: Access | None
    clearance: str | None
    kiosk: bool

    @property
    def key(self) -> tuple[str | None, bool]:
        return self.clearance, self.kiosk


class PresentationService:
    def __init__(self, catalogue: Catalogue, institution: presentation.Institution,
                 base_url: Callable[[Request], str], run: Run, auth: AuthServices | None = None) -> None:
        self.catalogue = catalogue
        self.institution = institution
        self.base_url = base_url
        self.run = run
        self.auth = auth
        self.cache = DocumentCache()
        self.pages = discovery.PageCache()  # complete Change Discovery pages

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/presentation/collections", self.top, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/collection", self.collection, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/manifest", self.collection_manifest, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/{document}/manifest", self.manifest, methods=["GET", "HEAD"]),
            Route("/iiif/discovery/activity/all-changes", self.activity_stream, methods=["GET", "HEAD"]),
            Route("/iiif/discovery/activity/page/{n:int}", self.activity_page, methods=["GET", "HEAD"]),
        ]

    # -- access ------------------------------------------------------------------

    async def _access(self, request: Request) -> Access | None:
        if self.auth is None:
            return None
        return await self.run(self.auth.policy.access, request)

    def _view(self, access: Access | None, collection: str | None) -> View:
        if self.auth is None or access is None:
            return View(None, None, False)
        policy = self.auth.policy
        return View(access, access.clearance(policy.tiers, collection), access.network_tier is not None)

    def _visible(self, view: View, tier: str, collection: str | None) -> bool:
        if self.auth is None or view.access is None:
            return True
        return self.auth.policy.visible(view.access, tier, collection)

    def _restricted(self, tier: str) -> bool:
        return self.auth is not None and self.auth.policy.restricted(tier)

    def _pages(self, view: View, coll: CollectionRow, document: str | None = None) -> tuple[list[PageRow], bool]:
        """The pages this view may see, and whether any of them is restricted."""
        pages, restricted = [], self._restricted(coll.tier)
        for page in self.catalogue.pages(coll.id, document):
            tier = effective_tier(page.tier, page.doc_tier, coll.tier)
            if self._visible(view, tier, coll.id):
                pages.append(page)
                restricted = restricted or self._restricted(tier)
        return pages, restricted

    def _services_for(self, base: str, view: View, coll: CollectionRow) -> ServicesFor | None:
        if self.auth is None or view.access is None:
            return None
        auth, access = self.auth, view.access

        def services(page: PageRow) -> list[dict[str, Any]] | None:
            tier = effective_tier(page.tier, page.doc_tier, coll.tier)
            if not self._restricted(tier):
                return None
            return auth.descriptions(base, f"{coll.id}/{page.document}/{page.ident}", access, tier)

        return services

    # -- responses ------------------------------------------------------------------

    async def _serve(self, request: Request, key: tuple[Any, ...] | None, build: Callable[[], Built | None],
                     context: str) -> Response:
        urls = presentation.Urls(self.base_url(request))
        item = self.cache.get((*key, urls.base)) if key is not None else None
        if item is None:
            built = await self.run(build)
            if built is None:
                return PlainTextResponse("not found\n", status_code=404)
            body, private = built
            item = self.cache.put((*key, urls.base), body, private) if key is not None else (
                body, content_etag(body), private)
        body, etag, private = item
        jsonld = "application/ld+json" in request.headers.get("accept", "")
        media = JSON_LD.format(context) if jsonld else "application/json"
        if jsonld:  # two representations (Vary: Accept), so two validators
            etag = etag[:-1] + '-ld"'
        headers = {"Cache-Control": "public, max-age=60", "Vary": "Accept", "ETag": etag}
        if private:
            headers.update({"Cache-Control": "private, max-age=0", "Vary": "Accept, Authorization, Cookie"})
        if etag_matches(etag, request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)

    async def top(self, request: Request) -> Response:
        urls = presentation.Urls(self.base_url(request))
        version = await self.run(self.catalogue.version)
        access = await self._access(request)

        def build() -> Built:
            collections = self.catalogue.collections()
            shown = [c for c in collections if self._visible(self._view(access, c.id), c.tier, c.id)]
            return presentation.top_collection(urls, self.institution, shown), len(shown) != len(collections)

        # the listing differs by what is hidden from whom: one entry per clearance set
        key = ("top", version, self._view(access, None).key, access.grant.collections if access and access.grant
               else ())
        return await self._serve(request, key, build, presentation.CONTEXT)

    async def _in_collection(self, request: Request, kind: str, document: str | None,
                             build: Callable[[CollectionRow, View, presentation.Urls], Built | None]) -> Response:
        """A document about one collection: 404 when it does not exist or is hidden from this request,
        else built (in a worker thread) and cached under the collection's revision and the view."""
        cid = request.path_params["collection"]
        revision = await self.run(self.catalogue.revision, cid)
        if revision is None:
            return PlainTextResponse(f"no collection {cid!r}\n", status_code=404)
        view = self._view(await self._access(request), cid)
        urls = presentation.Urls(self.base_url(request))

        def checked() -> Built | None:
            coll = self.catalogue.collection(cid)
            if coll is None or not self._visible(view, coll.tier, cid):
                return None
            return build(coll, view, urls)

        return await self._serve(request, (kind, cid, document, revision, view.key), checked, presentation.CONTEXT)

    async def collection(self, request: Request) -> Response:
        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            pages, restricted = self._pages(view, coll)
            first: dict[str, PageRow] = {}
            for page in pages:
                first.setdefault(page.document, page)
            documents = [d for d in self.catalogue.documents(coll.id) if d.ident in first]
            return presentation.collection(urls, self.institution, coll, documents, first), restricted

        return await self._in_collection(request, "collection", None, build)

    async def collection_manifest(self, request: Request) -> Response:
        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            pages, restricted = self._pages(view, coll)
            if not pages:
                return None
            body = presentation.manifest(urls, self.institution, coll, pages,
                                         documents=list(self.catalogue.documents(coll.id)),
                                         services_for=self._services_for(urls.base, view, coll))
            return body, restricted

        return await self._in_collection(request, "manifest", None, build)

    async def manifest(self, request: Request) -> Response:
        did = request.path_params["document"]

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            document = self.catalogue.document(coll.id, did)
            if document is None or not self._visible(view, effective_tier(document.tier, coll.tier), coll.id):
                return None
            pages, restricted = self._pages(view, coll, did)
            if not pages:
                return None
            body = presentation.manifest(urls, self.institution, coll, pages, document=document,
                                         services_for=self._services_for(urls.base, view, coll))
            return body, restricted

        return await self._in_collection(request, "document", did, build)

    async def activity_stream(self, request: Request) -> Response:
        urls = presentation.Urls(self.base_url(request))
        total, top = await self.run(self.catalogue.activity_bounds)
        body = discovery.collection_document(urls, total, top, discovery.PAGE_SIZE)
        return _discovery_response(request, body, content_etag(body), discovery.OPEN_MAX_AGE)

    async def activity_page(self, request: Request) -> Response:
        """Page n by its id range; a complete page (the highest id lies beyond it) is final."""
        n = request.path_params["n"]
        urls = presentation.Urls(self.base_url(request))
        size = discovery.PAGE_SIZE
        key = (n, size, urls.base)
        cached = self.pages.get(key)
        if cached is not None:
            return _discovery_response(request, *cached, discovery.COMPLETE_MAX_AGE)
        top, rows = await self.run(self.catalogue.activities, *discovery.id_range(n, size), True)
        last = discovery.last_page(top, size)
        if n > last:
            return PlainTextResponse(f"no page {n}\n", status_code=404)
        body = discovery.page_document(urls, n, top, rows, size)
        etag = content_etag(body)
        if n < last:
            self.pages.put(key, body, etag)
            return _discovery_response(request, body, etag, discovery.COMPLETE_MAX_AGE)
        return _discovery_response(request, body, etag, discovery.OPEN_MAX_AGE)


def _discovery_response(request: Request, body: bytes, etag: str, max_age: int) -> Response:
    """The stream is public-only: any cache may keep it, complete pages for good."""
    jsonld = "application/ld+json" in request.headers.get("accept", "")
    media = JSON_LD.format(discovery.CONTEXT) if jsonld else "application/json"
    if jsonld:  # two representations (Vary: Accept), so two validators
        etag = etag[:-1] + '-ld"'
    control = f"public, max-age={max_age}" + (", immutable" if max_age == discovery.COMPLETE_MAX_AGE else "")
    headers = {"Cache-Control": control, "Vary": "Accept", "ETag": etag}
    if etag_matches(etag, request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)
