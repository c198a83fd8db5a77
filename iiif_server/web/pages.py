"""The pages for people: the overview `/` (web/home.py), a page per collection, and the viewer pages.

`/collections/{c}` describes a collection as its IIIF Collection does (manifests/described.py gives both the
same pairs) and, to those cleared for them, lists its documents in pages of PAGE by position, as the console
does. `/view/{c}/{d}` is a document in Mirador; `/view/{c}` the collection with its first document open.
A page is public where every requester gets the same one, else private; a hidden collection, and a document
of a hidden tier, are unknown to those without clearance. A restricted document's viewer page, for one not
cleared for it, names it only by its identifier (already in its URL) and lets the viewer offer the sign-in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.catalogue import Catalogue, DocumentEntry
from iiif_server.db.models import Collection, Document, effective_tier
from iiif_server.manifests.base import Institution, Urls
from iiif_server.manifests.described import collection_pairs
from iiif_server.runtime import observe
from iiif_server.tiles.sources import SourceStore
from iiif_server.web import home

PAGE = 50  # documents per page of a collection
LOOK_AHEAD = 200  # documents `/view/{c}` looks through for the first one the requester may open
NOT_FOUND = {"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"}

Run = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Row:
    """A document as the collection page lists it."""

    ident: str
    label: str
    position: int
    thumbnail: str | None


def not_found() -> Response:
    return PlainTextResponse("not found\n", status_code=404, headers=NOT_FOUND)


class PublicPages:
    def __init__(self, catalogue: Catalogue, policy: Policy, inst: Institution, base_url: Callable[[Request], str],
                 run: Run, source: SourceStore, viewer_url: str) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.inst = inst
        self.base_url = base_url
        self.run = run
        self.source = source
        self.viewer_url = viewer_url
        self.listing = home.Listing(catalogue)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.overview, methods=["GET", "HEAD"]),
            Route("/collections/{cid}", self.collection, methods=["GET", "HEAD"]),
            Route("/view/{cid}", self.collection_viewer, methods=["GET", "HEAD"]),
            Route("/view/{cid}/{doc}", self.document_viewer, methods=["GET", "HEAD"]),
            Route("/view.js", self.viewer_script, methods=["GET", "HEAD"]),
        ]

    # -- who asks ------------------------------------------------------------------------------------------

    async def _access(self, request: Request) -> Access:
        await self.policy.fresh(self.run)
        return await self.policy.access_async(request, self.run)

    def _cleared(self, access: Access, tier: str, collection: str) -> bool:
        return self.policy.tiers.allows(access.clearance(self.policy.tiers, collection), tier)

    def _uniform(self, coll: Collection) -> bool:
        """Whether every requester sees the same of this collection: public, with nothing of a tier of its own."""
        return not self.policy.restricted(coll.tier) and coll.id not in self.policy.snapshot.tables.overridden

    def _shown(self, access: Access, private: bool) -> None:
        """A page that shows restricted material to a requester with a credential: audited like a manifest."""
        observe.note_access(access, access.clearance(self.policy.tiers, None))
        if private:
            observe.note_private_document()

    # -- the overview --------------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        await self.policy.fresh(self.run)
        colls = await self.run(self.listing.collections, self.policy.snapshot.tables.version)
        shown = home.overview(self.policy, colls)
        after = request.query_params.get("after", "")[:200]
        cards, more = await self.run(home.cards, self.listing.first_pages, self.policy, self.inst, shown, after)
        images = [] if after else await self.run(home.public_images, self.policy, colls, self.source)
        title = f"Collections of {self.inst.provider}" if self.inst.provider else "Collections"
        return HTMLResponse(home.render(cards, images, self.base_url(request), after, more, title, self.site),
                            headers=home.PUBLIC)

    @property
    def site(self) -> str:
        return self.inst.provider or "Collections"

    # -- a collection ----------------------------------------------------------------------------------------

    def rows(self, access: Access, coll: Collection, first: int) -> list[Row]:
        """Blocking: the documents at positions [first, first + PAGE) this requester is cleared for."""
        out = []
        for entry in self.catalogue.entries(coll.id, first, first + PAGE):
            if self._cleared(access, effective_tier(entry.tier, coll.tier), coll.id):
                thumb = self._thumb(access, coll, entry)
                out.append(Row(entry.ident, entry.label or entry.ident, entry.position, thumb))
        return out

    def _thumb(self, access: Access, coll: Collection, entry: DocumentEntry) -> str | None:
        page = entry.first
        if page is None or not self._cleared(access, effective_tier(page.tier, entry.tier, coll.tier), coll.id):
            return None
        return f"/iiif/3/{quote(f'{coll.id}/{entry.ident}/{page.ident}', safe='')}/full/!120,120/0/default.jpg"

    async def collection(self, request: Request) -> Response:
        cid = request.path_params["cid"]
        access = await self._access(request)
        coll = await self.run(self.catalogue.collection, cid)
        if coll is None or not self.policy.visible(access, coll.tier, coll.id):
            return not_found()
        public = not self.policy.restricted(coll.tier)
        cleared = self._cleared(access, coll.tier, coll.id)
        first = _int(request.query_params.get("from"))
        last = await self.run(self.catalogue.last_position, cid)
        rows = await self.run(self.rows, access, coll, first)
        uniform = self._uniform(coll)
        self._shown(access, not uniform)
        urls = Urls(self.base_url(request))
        pager = {"prev": max(0, first - PAGE) if first > 0 else None,
                 "next": first + PAGE if last is not None and first + PAGE <= last else None}
        label = coll.label or coll.id
        body = home.ENV.get_template("collection.html").render(
            title=f"{label} · {self.site}", site=self.site, coll=coll, label=label, public=public,
            pairs=collection_pairs(coll, self.inst, public), cleared=cleared, rows=rows, pager=pager, first=first,
            urls=urls, record=self.inst.record(coll.id, coll.record),
            canonical=urls.collection_page(coll.id) + (f"?from={first}" if first else ""),
            description=coll.summary or f"{label}: {self.inst.access(coll.tier, public)}",
            manifest=coll.image_count <= home.CANVAS_LIMIT,
            attribution=coll.required_statement or self.inst.attribution)
        return HTMLResponse(body, headers=home.PUBLIC if uniform else home.PRIVATE)

    # -- the viewer pages -------------------------------------------------------------------------------------

    def first_document(self, access: Access, coll: Collection) -> str | None:
        """Blocking: the first document by position that this requester may open (among the first LOOK_AHEAD)."""
        with self.catalogue.sessions() as session:
            rows = session.execute(select(Document.ident, Document.tier).where(Document.collection_id == coll.id)
                                   .order_by(Document.position).limit(LOOK_AHEAD)).all()
        return next((ident for ident, tier in rows if self._cleared(access, effective_tier(tier, coll.tier), coll.id)),
                    None)

    async def collection_viewer(self, request: Request) -> Response:
        """A collection in Mirador: its first document open, the collection in Mirador's catalogue; for those not
        cleared for the collection, its page, which says where it can be consulted."""
        cid = request.path_params["cid"]
        access = await self._access(request)
        coll = await self.run(self.catalogue.collection, cid)
        if coll is None or not self.policy.visible(access, coll.tier, coll.id):
            return not_found()
        urls = Urls(self.base_url(request))
        if not self._cleared(access, coll.tier, coll.id):
            return RedirectResponse(urls.collection_page(cid), 303, headers=home.PRIVATE)
        first = await self.run(self.first_document, access, coll)
        label = coll.label or coll.id
        body = home.ENV.get_template("viewer.html").render(
            title=label, heading=label, manifest=urls.manifest(cid, first) if first is not None else None,
            collection_url=urls.collection(cid), page=urls.collection_page(cid), viewer_url=self.viewer_url,
            canonical=urls.document_page(cid, first) if first is not None else urls.collection_page(cid),
            description=coll.summary or label, index=False)
        return HTMLResponse(body, headers=home.viewer_headers(self.viewer_url, self._uniform(coll)))

    async def document_viewer(self, request: Request) -> Response:
        cid, did = request.path_params["cid"], request.path_params["doc"]
        access = await self._access(request)
        coll = await self.run(self.catalogue.collection, cid)
        doc = await self.run(self.catalogue.document, cid, did) if coll is not None else None
        if coll is None or doc is None:
            return not_found()
        tier = effective_tier(doc.tier, coll.tier)
        if not self.policy.visible(access, tier, coll.id):
            return not_found()
        urls = Urls(self.base_url(request))
        cleared = self._cleared(access, tier, coll.id)
        label = (doc.label or doc.ident) if cleared else doc.ident
        public = not self.policy.restricted(tier)
        self._shown(access, not public)
        body = home.ENV.get_template("viewer.html").render(
            title=f"{label} · {coll.label or coll.id}", heading=label, manifest=urls.manifest(cid, did),
            collection_url=urls.collection(cid), page=urls.collection_page(cid), viewer_url=self.viewer_url,
            canonical=urls.document_page(cid, did), index=public,
            description=(doc.summary if cleared else None) or f"{label}, in {coll.label or coll.id}")
        return HTMLResponse(body, headers=home.viewer_headers(self.viewer_url, public))

    async def viewer_script(self, request: Request) -> Response:
        return Response(home.VIEWER_SCRIPT, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})


def _int(text: str | None) -> int:
    """A position from the query: ASCII digits, at most ten of them; anything else is the first page."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        return 0
    return min(int(text), 2**31 - 1)
