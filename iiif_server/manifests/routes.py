"""Presentation over HTTP: route -> catalogue -> builder -> cache -> response (Change Discovery: stream.py).

Documents are cached per process under a key taken from the catalogue (the
collection's revision, or the catalogue version): a change made by any
replica or by ingest changes the key, so no replica serves a stale document.

A collection that is not hidden is described to everyone; what it holds is listed only to those cleared for
it: its documents, the parts of a large one and their labels, its whole manifest. A restricted document's own
manifest stays reachable by its URL, so that a viewer can offer the sign-in, but without its description.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iiif_server.auth.policy import Access
from iiif_server.db.catalogue import Catalogue, DocumentEntry, PageRow
from iiif_server.db.ingest import utc
from iiif_server.db.models import Collection as CollectionRow
from iiif_server.db.models import effective_tier
from iiif_server.manifests import dublincore, presentation
from iiif_server.manifests.answer import respond
from iiif_server.manifests.cache import Document, DocumentCache
from iiif_server.manifests.presentation import CANVAS_LIMIT, NamesFor, Part, ServicesFor, ThumbFor
from iiif_server.runtime import observe
from iiif_server.runtime.singleflight import SingleFlight
from iiif_server.tiles import placeholder

if TYPE_CHECKING:
    from iiif_server.auth.services import AuthServices

CACHE_BYTES = 64 * 1024 * 1024
PART_SIZE = 1000  # documents listed by one Collection; larger collections are split into parts
XML = "application/xml; charset=utf-8"

Run = Callable[..., Awaitable[Any]]
# a serialised document, whether it depends on who asks, and when what it shows last changed (POSIX time)
Built = tuple[bytes, bool, float | None]


def modified(coll: CollectionRow) -> float:
    """When a document about this collection last changed: the collection's `updated` moves with every change
    of its revision (Catalogue.touch), which every change to what it holds makes."""
    return utc(coll.updated).timestamp()


def not_found() -> Response:
    """One answer for unknown and hidden alike, never stored by shared caches: no existence oracle."""
    return PlainTextResponse("not found\n", status_code=404,
                             headers={"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"})


class TooLarge(Exception):
    def __init__(self, collection: str, pages: int) -> None:
        super().__init__(collection)
        self.collection, self.pages = collection, pages


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
                 base_url: Callable[[Request], str], run: Run, auth: AuthServices | None = None,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.catalogue = catalogue
        self.institution = institution
        self.base_url = base_url
        self.run = run
        self.auth = auth
        self.cache = DocumentCache(cache_bytes)
        self.builds: SingleFlight[Document | None] = SingleFlight()
        # a document's own services (Content Search when it has text), set by the application
        self.document_services: Callable[[str, str, str, int], list[dict[str, Any]] | None] | None = None
        # the confirmed names on the pages of a document (or of a whole collection), set by the application:
        # (collection, document or None) -> {(document, page): [(person id, link id, name, box)]}
        self.page_names: Callable[[str, str | None], dict[tuple[str, str], list[Any]]] | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/presentation/collections", self.top, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/collection", self.collection, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/collection/{part:int}", self.part, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/manifest", self.collection_manifest, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/dc.xml", self.collection_record, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/{document}/manifest", self.manifest, methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/{document}/canvas/{page}/names", self.names,
                  methods=["GET", "HEAD"]),
            Route("/iiif/presentation/{collection}/{document}/dc.xml", self.document_record, methods=["GET", "HEAD"]),
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
        clearance = access.clearance(policy.tiers, collection)
        observe.note_access(access, clearance)
        return View(access, clearance, access.network_tier is not None)

    def _visible(self, view: View, tier: str, collection: str | None) -> bool:
        if self.auth is None or view.access is None:
            return True
        return self.auth.policy.visible(view.access, tier, collection)

    def _cleared(self, view: View, tier: str) -> bool:
        """Whether this view may open material of `tier`: what is listed to it, and described."""
        if self.auth is None or view.clearance is None:
            return True
        return self.auth.policy.tiers.allows(view.clearance, tier)

    def _restricted(self, tier: str) -> bool:
        return self.auth is not None and self.auth.policy.restricted(tier)

    def _pages(self, view: View, coll: CollectionRow, document: str | None = None) -> tuple[list[PageRow], bool]:
        """The pages this view may see, and whether any of them is restricted. Of the whole collection (no
        `document`), only those of the documents it is cleared for: the others are not listed to it."""
        pages, restricted = [], self._restricted(coll.tier)
        for page in self.catalogue.pages(coll.id, document):
            tier = effective_tier(page.tier, page.doc_tier, coll.tier)
            doc_tier = effective_tier(page.doc_tier, coll.tier)
            restricted = restricted or self._restricted(tier)  # hidden or shown: the body depends on who asks
            if self._visible(view, tier, coll.id) and (document is not None or self._cleared(view, doc_tier)):
                pages.append(page)
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

    def _readable(self, view: View, tier: str, collection: str) -> bool:
        """Whether the view is cleared for the page itself (its image and the words on it), not only shown it."""
        if self.auth is None or view.access is None:
            return True
        policy = self.auth.policy
        return policy.tiers.allows(view.access.clearance(policy.tiers, collection), tier)

    def _names_for(self, base: str, view: View, coll: CollectionRow, document: str | None) -> NamesFor | None:
        """The name annotations of the pages this view may read (a name on a restricted list is its content)."""
        if self.page_names is None:
            return None
        found = self.page_names(coll.id, document)
        if not found:
            return None
        urls = presentation.Urls(base)

        def names(page: PageRow) -> list[dict[str, Any]] | None:
            on_page = found.get((page.document, page.ident))
            if not on_page or not self._readable(view, effective_tier(page.tier, page.doc_tier, coll.tier), coll.id):
                return None
            return [presentation.names_page(urls, coll.id, page, on_page)]

        return names

    def _thumb_for(self, base: str, view: View, coll: CollectionRow) -> ThumbFor | None:
        """Restricted pages the view is not cleared for: the degraded thumbnail where the tier has one,
        else the public placeholder (viewers fetch thumbnails without credentials)."""
        if self.auth is None or view.access is None:
            return None
        policy, access, urls = self.auth.policy, view.access, presentation.Urls(base)

        def thumb(page: PageRow) -> dict[str, Any] | None:
            tier = effective_tier(page.tier, page.doc_tier, coll.tier)
            if not self._restricted(tier) or policy.tiers.allows(access.clearance(policy.tiers, coll.id), tier):
                return None
            limit = policy.degraded_limit(tier)
            if limit:
                return presentation.degraded_thumbnail(urls, coll.id, page, limit)
            return placeholder.thumbnail(base)

        return thumb

    # -- responses ------------------------------------------------------------------

    async def _serve(self, request: Request, key: Hashable | None, build: Callable[[], Built | None],
                     context: str, revision: Hashable = None, media: str | None = None) -> Response:
        """A document from the cache, else built once (in a worker thread) for all who wait for it.

        `key` names the document (None: not cached), `revision` the catalogue state it reflects."""
        urls = presentation.Urls(self.base_url(request))
        what = (key, urls.base) if key is not None else None
        doc = self.cache.get(what, revision) if what is not None else None
        if doc is None:

            def made() -> Document | None:
                built = build()
                return Document.build(*built) if built is not None else None

            async def work() -> Document | None:
                result: Document | None = await self.run(made)
                if result is not None and what is not None:
                    self.cache.put(what, revision, result)
                return result

            doc = await self.builds.run((what, revision), work) if what is not None else await work()
            if doc is None:
                return not_found()
        return respond(request, doc, context, media=media)

    async def top(self, request: Request) -> Response:
        urls = presentation.Urls(self.base_url(request))
        version = await self.run(self.catalogue.version)
        access = await self._access(request)

        def build() -> Built:
            collections = self.catalogue.collections()
            shown = [c for c in collections if self._visible(self._view(access, c.id), c.tier, c.id)]
            # private when some entry is shown to some requesters only, whether this one sees it or not
            depends = self.auth is not None and any(c.tier in self.auth.policy.hidden for c in collections)
            latest = max((modified(c) for c in shown), default=None)
            return presentation.top_collection(urls, self.institution, shown), depends, latest

        # the listing differs by what is hidden from whom: one entry per clearance set
        key = ("top", self._view(access, None).key, access.grant.collections if access and access.grant else ())
        return await self._serve(request, key, build, presentation.CONTEXT, version)

    async def _in_collection(self, request: Request, kind: str, document: str | None,
                             build: Callable[[CollectionRow, View, presentation.Urls], Built | None],
                             media: str | None = None, own_tier: bool = False) -> Response:
        """A document about one collection: 404 when it does not exist or is hidden from this request,
        else built (in a worker thread) and cached under the collection's revision and the view. `own_tier`:
        about one of its documents, whose own tier decides (`build` checks it): a document given a tier of its
        own is as visible as its images, whatever its collection's."""
        cid = request.path_params["collection"]
        revision = await self.run(self.catalogue.revision, cid)
        if revision is None:
            return not_found()
        view = self._view(await self._access(request), cid)
        urls = presentation.Urls(self.base_url(request))

        def checked() -> Built | None:
            coll = self.catalogue.collection(cid)
            if coll is None or (not own_tier and not self._visible(view, coll.tier, cid)):
                return None
            return build(coll, view, urls)

        return await self._serve(request, (kind, cid, document, view.key), checked, presentation.CONTEXT, revision,
                                 media)

    def _entries(self, view: View, coll: CollectionRow, first: int, stop: int) -> tuple[list[DocumentEntry], bool]:
        """The documents at positions [first, stop) this view is cleared for (a thumbnail only where the page
        is visible too), and whether any of them is restricted."""
        shown, restricted = [], self._restricted(coll.tier)
        for entry in self.catalogue.entries(coll.id, first, stop):
            tier = effective_tier(entry.tier, coll.tier)
            restricted = restricted or self._restricted(tier)  # listed or not: the body depends on who asks
            if not self._cleared(view, tier):
                continue
            page = entry.first
            if page is not None:
                page_tier = effective_tier(page.tier, entry.tier, coll.tier)
                restricted = restricted or self._restricted(page_tier)
                if not self._visible(view, page_tier, coll.id):
                    entry = DocumentEntry(entry.ident, entry.label, entry.tier, entry.position, None)
            shown.append(entry)
        return shown, restricted

    def _parts(self, view: View, coll: CollectionRow, last: int, numbers: range) -> list[Part]:
        """Parts of a large collection that hold a document this view is cleared for, labelled by their first and
        last documents where it is cleared for them (a part of other documents only is not listed: it would
        say they exist)."""

        def span(n: int) -> tuple[int, int]:
            return (n - 1) * PART_SIZE, min(last + 1, n * PART_SIZE)

        overrides = self.catalogue.overrides_by_part(coll.id, PART_SIZE)

        def seen(n: int) -> bool:
            own = overrides.get(n - 1, {})
            size = span(n)[1] - span(n)[0]
            inheriting = size - sum(own.values())
            return (inheriting > 0 and self._cleared(view, coll.tier)) or any(
                count and self._cleared(view, tier) for tier, count in own.items())

        shown = [n for n in numbers if seen(n)]

        labels = self.catalogue.at_positions(coll.id, [p for n in shown for p in (span(n)[0], span(n)[1] - 1)])

        def label(position: int) -> str | None:
            found = labels.get(position)
            if found is None or not self._cleared(view, effective_tier(found[1], coll.tier)):
                return None
            return found[0]

        return [Part(n, *span(n), label(span(n)[0]), label(span(n)[1] - 1)) for n in shown]

    async def collection(self, request: Request) -> Response:
        """The documents' manifests, or for a large collection its parts (each a Collection)."""

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            last = self.catalogue.last_position(coll.id)
            public = not self._restricted(coll.tier)
            if last is not None and last >= PART_SIZE:
                parts = self._parts(view, coll, last, range(1, last // PART_SIZE + 2))
                return presentation.collection_of_parts(urls, self.institution, coll, parts, public), self._restricted(
                    coll.tier) or bool(self.auth and self.auth.policy.hidden), modified(coll)
            entries, restricted = self._entries(view, coll, 0, PART_SIZE)
            thumbs = self._thumb_for(urls.base, view, coll)
            return presentation.collection(urls, self.institution, coll, entries, thumbs, public), restricted, modified(
                coll)

        return await self._in_collection(request, "collection", None, build)

    async def part(self, request: Request) -> Response:
        number = request.path_params["part"]

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            last = self.catalogue.last_position(coll.id)
            if last is None or last < PART_SIZE or not 1 <= number <= last // PART_SIZE + 1:
                return None
            found = self._parts(view, coll, last, range(number, number + 1))
            if not found:
                return None  # only hidden documents: as a part that does not exist
            part = found[0]
            entries, restricted = self._entries(view, coll, part.first, part.stop)
            thumbs = self._thumb_for(urls.base, view, coll)
            return presentation.collection_part(urls, self.institution, coll, part, entries, thumbs), restricted, (
                modified(coll))

        return await self._in_collection(request, "part", str(number), build)

    async def collection_manifest(self, request: Request) -> Response:
        """One manifest of every page: only while that stays small (CANVAS_LIMIT pages)."""

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            if coll.image_count > CANVAS_LIMIT:
                raise TooLarge(coll.id, coll.image_count)
            pages, restricted = self._pages(view, coll)
            if not pages:
                return None
            documents = [e for n in range(0, (self.catalogue.last_position(coll.id) or 0) + 1, PART_SIZE)
                         for e in self.catalogue.entries(coll.id, n, n + PART_SIZE)]
            body = presentation.manifest(urls, self.institution, coll, pages, documents=documents,
                                         services_for=self._services_for(urls.base, view, coll),
                                         thumb_for=self._thumb_for(urls.base, view, coll),
                                         names_for=self._names_for(urls.base, view, coll, None),
                                         public=not self._restricted(coll.tier))
            return body, restricted, modified(coll)

        try:
            return await self._in_collection(request, "manifest", None, build)
        except TooLarge as exc:
            urls = presentation.Urls(self.base_url(request))
            return PlainTextResponse(
                f"collection {exc.collection!r} has {exc.pages} pages, more than one manifest holds "
                f"({CANVAS_LIMIT}); each document has its own manifest, listed by {urls.collection(exc.collection)}\n",
                status_code=404, headers={"Link": f'<{urls.collection(exc.collection)}>;rel="alternate"'})

    async def manifest(self, request: Request) -> Response:
        did = request.path_params["document"]

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            document = self.catalogue.document(coll.id, did)
            tier = effective_tier(document.tier, coll.tier) if document is not None else coll.tier
            if document is None or not self._visible(view, tier, coll.id):
                return None
            pages, restricted = self._pages(view, coll, did)
            if not pages:
                return None
            withheld = not self._cleared(view, tier)
            own = (self.document_services(urls.base, coll.id, did, document.pk)
                   if self.document_services and not withheld else None)
            body = presentation.manifest(urls, self.institution, coll, pages, document=document,
                                         services_for=self._services_for(urls.base, view, coll),
                                         thumb_for=self._thumb_for(urls.base, view, coll), services=own,
                                         names_for=self._names_for(urls.base, view, coll, did),
                                         withheld=withheld)
            return body, restricted or self._restricted(tier), modified(coll)

        return await self._in_collection(request, "document", did, build, own_tier=True)

    async def names(self, request: Request) -> Response:
        """The names on one list page, as the AnnotationPage its canvas embeds (404 where there are none, or
        where the page or its names are not for this requester)."""
        did, pid = request.path_params["document"], request.path_params["page"]

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            document = self.catalogue.document(coll.id, did)
            if document is None or not self._visible(view, effective_tier(document.tier, coll.tier), coll.id):
                return None
            pages, restricted = self._pages(view, coll, did)
            page = next((p for p in pages if p.ident == pid), None)
            names_for = self._names_for(urls.base, view, coll, did)
            found = names_for(page) if page is not None and names_for is not None else None
            if not found:
                return None
            body = {"@context": presentation.CONTEXT, **found[0]}
            tier = effective_tier(document.tier, coll.tier)
            return (json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                    restricted or self._restricted(tier), modified(coll))

        return await self._in_collection(request, "names", f"{did}/{pid}", build)

    async def collection_record(self, request: Request) -> Response:
        """The collection's description as a Dublin Core record (oai_dc): as public as the collection's
        description, which is everyone's unless its tier is hidden."""

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            public = not self._restricted(coll.tier)
            body = dublincore.collection_record(urls, self.institution, coll, public)
            return body, bool(self.auth and coll.tier in self.auth.policy.hidden), modified(coll)

        return await self._in_collection(request, "dc", None, build, XML)

    async def document_record(self, request: Request) -> Response:
        """A document's Dublin Core record (oai_dc), for those cleared for the document only."""
        did = request.path_params["document"]

        def build(coll: CollectionRow, view: View, urls: presentation.Urls) -> Built | None:
            document = self.catalogue.document(coll.id, did)
            tier = effective_tier(document.tier, coll.tier) if document is not None else coll.tier
            if document is None or not self._cleared(view, tier):
                return None
            body = dublincore.document_record(urls, self.institution, coll, document)
            return body, self._restricted(tier) or self._restricted(coll.tier), modified(coll)

        return await self._in_collection(request, "dc", did, build, XML, own_tier=True)
