"""Routes of search across documents, and the pages a researcher reads in a browser.

    GET /iiif/search/collections/{collection}?q=   a collection's manifests with their hits (Search 2.0
    GET /iiif/search/collections?q=                AnnotationPage; targets name their manifest), and the same
                                                   over every collection
    GET /iiif/search?q=                            the catalogue: collections and documents by label,
                                                   summary and metadata (HTML, or JSON with format=json
                                                   or Accept: application/json)
    GET /iiif/view/{collection}/{document}         a plain viewer: one page, its hits highlighted

Every answer depends on who asks (hidden material is left out, not marked): `Cache-Control: private`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.models import Collection, Document, effective_tier
from iiif_server.manifests.presentation import Urls
from iiif_server.manifests.routes import not_found
from iiif_server.search import across
from iiif_server.search.across import Across, Described, DocumentHits
from iiif_server.search.results import Hit, cursor_number
from iiif_server.search.routes import CONTEXT_2, PRIVATE, SearchService, readable
from iiif_server.search.store import TextStore

Run = Callable[..., Awaitable[Any]]
HTML_HEADERS = {"Cache-Control": "private, max-age=0", "Vary": "Accept, Authorization, Cookie"}
VIEW_SIZE = 1200  # longer side of the page image the viewer shows


def collection_service(base: str, collection: str | None) -> dict[str, Any]:
    """The `service` entry of a collection (None: the top collection) that searches its documents' text."""
    url = f"{base}/iiif/search/collections" + (f"/{quote(collection)}" if collection else "")
    return {"id": url, "type": "SearchService2"}


class AcrossService:
    def __init__(self, store: TextStore, policy: Policy, base_url: Callable[[Request], str], run: Run) -> None:
        self.store = store
        self.across = Across(store)
        self.policy = policy
        self.base_url = base_url
        self.run = run
        # the people a query finds, shown first (set by the application): (query, access, base) -> people
        self.people_for: Callable[[str, Access, str], list[dict[str, Any]]] | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/search/collections", self.collection_search, methods=["GET", "HEAD"]),
            Route("/iiif/search/collections/{collection}", self.collection_search, methods=["GET", "HEAD"]),
            Route("/iiif/search", self.catalogue_search, methods=["GET", "HEAD"]),
            Route("/iiif/view/{collection}/{document}", self.view, methods=["GET", "HEAD"]),
        ]

    async def _access(self, request: Request) -> Access:
        await self.policy.fresh(self.run)
        return await self.policy.access_async(request, self.run)

    @staticmethod
    def _json(request: Request, body: dict[str, Any]) -> Response:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(b"" if request.method == "HEAD" else data, media_type="application/json",
                        headers={**PRIVATE, **({"Content-Length": str(len(data))} if request.method == "HEAD" else {})})

    # -- a collection's manifests with their hits ---------------------------------------

    def _collections(self, access: Access, collection: str | None) -> list[str] | None:
        """The collections to search that the requester may see; None: the named one is not there for them."""
        if collection is not None:
            coll = self.store.catalogue.collection(collection)
            if coll is None or not self.policy.visible(access, coll.tier, coll.id):
                return None
            return [coll.id]
        return [c.id for c in self.store.catalogue.collections() if self.policy.visible(access, c.tier, c.id)]

    async def collection_search(self, request: Request) -> Response:
        collection = request.path_params.get("collection")
        access = await self._access(request)
        collections = await self.run(self._collections, access, collection)
        if collections is None:
            return not_found()
        q = request.query_params.get("q", "")[:200]
        after = across.parse_cursor(request.query_params.get("after", ""))
        found, next_cursor = await self.run(self.across.search, q, collections, self.policy, access, after)
        urls = Urls(self.base_url(request))
        service = collection_service(urls.base, collection)["id"]
        page = f"{service}?{urlencode({'q': q, **({'after': request.query_params['after']} if after else {})})}"
        first = f"{service}?{urlencode({'q': q})}"
        body: dict[str, Any] = {"@context": CONTEXT_2, "id": page, "type": "AnnotationPage",
                                # paged: the page is part of the collection of all, which names its first page
                                # (Content Search 2.0, 4.2.2); no total: counting would read every document
                                "partOf": {"id": first, "type": "AnnotationCollection",
                                           "first": {"id": first, "type": "AnnotationPage"}}}
        ignored = SearchService._ignored(request)
        if ignored:
            body["ignored"] = ignored
        body["items"] = [a for doc in found for a in _annotations(urls, doc)]
        if next_cursor:
            body["next"] = {"id": f"{service}?{urlencode({'q': q, 'after': next_cursor})}", "type": "AnnotationPage"}
        return self._json(request, body)

    # -- the catalogue ---------------------------------------------------------------

    async def catalogue_search(self, request: Request) -> Response:
        access = await self._access(request)
        q = request.query_params.get("q", "")[:200]
        after = cursor_number(request.query_params.get("after") or "0")
        found, next_pk = await self.run(self.across.described, q, self.policy, access, after) if q.strip() \
            else ([], None)
        urls = Urls(self.base_url(request))
        next_url = f"{urls.base}/iiif/search?{urlencode({'q': q, 'after': next_pk})}" if next_pk else None
        people = await self.run(self.people_for, q, access, urls.base) \
            if self.people_for is not None and q.strip() and not after and "text_after" not in request.query_params \
            else []
        wants_json = request.query_params.get("format") == "json" or (
            "application/json" in request.headers.get("accept", "") and "text/html" not in
            request.headers.get("accept", ""))
        if wants_json:
            body: dict[str, Any] = {"query": q, "items": [_described(urls, d) for d in found]}
            if people:
                body["people"] = [{"id": p["url"], "name": _person_name(p)} for p in people]
            if next_url:
                body["next"] = next_url + "&format=json"
            return self._json(request, body)
        # the page also lists documents whose pages' text holds the words (the collection search's first page)
        text_after = request.query_params.get("text_after")
        texts: list[DocumentHits] = []
        text_next = None
        if q.strip() and (text_after is not None or not after):
            if text_after is not None:
                found, next_url = [], None
            collections = await self.run(self._collections, access, None)
            texts, cursor = await self.run(self.across.search, q, collections or [], self.policy, access,
                                           across.parse_cursor(text_after or ""))
            if cursor:
                text_next = f"{urls.base}/iiif/search?{urlencode({'q': q, 'text_after': cursor})}"
        return HTMLResponse(_results_page(urls, q, found, next_url, texts, text_next, people), headers=HTML_HEADERS)

    # -- the viewer page --------------------------------------------------------------

    def _document(self, access: Access, cid: str, did: str, page: str | None,
                  q: str) -> tuple[str, list[Any], Any, list[Hit]] | None:
        """(label, pages, the page shown, its hits for q) of a document the requester may see."""
        with self.store.catalogue.sessions() as session:
            row = session.execute(select(Document.pk, Document.label, Document.tier, Collection.tier)
                                  .join(Collection).where(Document.collection_id == cid, Document.ident == did)).first()
            if row is None:
                return None
            target = self.store.target_of(session, row[0], row[3], row[2])
        if not self.policy.visible(access, effective_tier(row[2], row[3]), cid):
            return None
        # a document's label is content: named by its identifier to those not cleared for it, as its manifest
        # does; and only the pages this requester may open (a restricted page's name, often a person's, its
        # place and size are content too)
        label = (row[1] or did) if self.policy.cleared(access, effective_tier(row[2], row[3]), cid) else did
        pages = [p for p in self.store.catalogue.pages(cid, did)
                 if self.policy.cleared(access, effective_tier(p.tier, p.doc_tier, row[3]), cid)]
        if not pages:
            return None
        shown = next((p for p in pages if p.ident == page), pages[0])
        hits: list[Hit] = []
        scope = readable(self.policy, access, cid, target)
        if q.strip() and scope is not None:
            hits = self.store.search(row[0], q, scope[0], limit=200, count=False)[0]
            if page is None and hits:
                shown = next((p for p in pages if p.ident == hits[0].page), shown)
        return label, pages, shown, hits

    async def view(self, request: Request) -> Response:
        cid, did = request.path_params["collection"], request.path_params["document"]
        q = request.query_params.get("q", "")[:200]
        access = await self._access(request)
        found = await self.run(self._document, access, cid, did, request.query_params.get("page"), q)
        if found is None:
            return not_found()
        label, pages, shown, hits = found
        return HTMLResponse(_viewer_page(Urls(self.base_url(request)), cid, did, label, pages, shown, hits, q),
                            headers=HTML_HEADERS)


def _annotations(urls: Urls, doc: DocumentHits) -> list[dict[str, Any]]:
    manifest = {"id": urls.manifest(doc.collection, doc.document), "type": "Manifest",
                "label": across.label_value(doc.label)}
    items = []
    for hit in doc.hits:
        anno = f"{urls.base}/iiif/search/annotation/{quote(doc.collection)}/{quote(doc.document)}/{hit.id}"
        for n, (x, y, w, h) in enumerate(hit.boxes):
            items.append({
                "id": anno if n == 0 else f"{anno}-{n}", "type": "Annotation", "motivation": "supplementing",
                "body": {"type": "TextualBody", "value": hit.text, "format": "text/plain"},
                "target": {"type": "SpecificResource",
                           "source": {"id": urls.canvas(doc.collection, doc.document, hit.page), "type": "Canvas",
                                      "partOf": [manifest]},
                           "selector": {"type": "FragmentSelector", "conformsTo": "http://www.w3.org/TR/media-frags/",
                                        "value": f"xywh={x},{y},{w},{h}"}}})
    return items


def _view_url(urls: Urls, collection: str, document: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{urls.base}/iiif/view/{quote(collection)}/{quote(document)}" + (f"?{query}" if query else "")


def _described(urls: Urls, d: Described) -> dict[str, Any]:
    if d.document is None:
        return {"id": urls.collection(d.collection), "type": "Collection", "label": across.label_value(d.label),
                **({"summary": across.label_value(d.summary)} if d.summary else {})}
    return {"id": urls.manifest(d.collection, d.document), "type": "Manifest", "label": across.label_value(d.label),
            **({"summary": across.label_value(d.summary)} if d.summary else {}),
            "partOf": [{"id": urls.collection(d.collection), "type": "Collection"}],
            "viewer": _view_url(urls, d.collection, d.document)}


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
a{color:#0645ad}li{margin:.6rem 0}.small{color:#555;font-size:.9em}form{margin:1rem 0}
input[type=search]{width:24rem;max-width:80%;padding:.3rem}
.page{position:relative;display:inline-block;max-width:100%}.page img{display:block;max-width:100%;height:auto}
.hit{position:absolute;outline:3px solid #e8a100;background:rgba(255,200,0,.25)}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _person_name(person: dict[str, Any]) -> str:
    return f"{person['surname']}, {person['given_names']}" if person["given_names"] else person["surname"]


def _people(q: str, people: list[dict[str, Any]]) -> str:
    """The people a query finds, first: name, birth, transport, a link to their page and to more of them."""
    e = html.escape
    parts = ['<h2>People</h2><ul id="people">']
    for p in people:
        portrait = p.get("portrait")
        thumb = f'<img src="{e(portrait.thumbnail)}" alt="" height="48"> ' if portrait and portrait.readable else ""
        born = f" born {e(p['birth_date'])}" if p.get("birth_date") else ""
        parts.append(f'<li>{thumb}<a class="person" href="{e(p["url"])}">{e(_person_name(p))}</a>'
                     f'<span class="small">{born}{" · transport " + e(p["transport"]) if p.get("transport") else ""}'
                     f"</span></li>")
    parts.append(f'</ul><p><a href="/persons?{urlencode({"q": q})}">More people</a></p>')
    return "".join(parts)


def _results_page(urls: Urls, q: str, found: list[Described], next_url: str | None,
                  texts: list[DocumentHits] | None = None, text_next: str | None = None,
                  people: list[dict[str, Any]] | None = None) -> str:
    e = html.escape
    parts = ['<h1>Search the catalogue</h1><form action="" method="get">'
             f'<input type="search" name="q" value="{e(q)}" aria-label="words"> <button>Search</button></form>']
    if people:
        parts.append(_people(q, people))
    if texts:
        parts.append("<h2>In the text of the pages</h2><ul>")
        for doc in texts:
            snippets = "; ".join(
                f'<a href="{e(_view_url(urls, doc.collection, doc.document, page=h.page, q=q))}">{e(h.text)}</a>'
                f" (page {e(h.page)})" for h in doc.hits)
            parts.append(f'<li><a href="{e(_view_url(urls, doc.collection, doc.document, q=q))}">{e(doc.label)}</a> '
                         f'<span class="small">({e(doc.collection)}; <a href="'
                         f'{e(urls.manifest(doc.collection, doc.document))}">IIIF manifest</a>)</span>'
                         f'<br><span class="small">{snippets}</span></li>')
        parts.append("</ul>")
        if text_next:
            parts.append(f'<p><a rel="next" href="{e(text_next)}">More documents with these words</a></p>')
    if q.strip() and (found or not texts):
        parts.append("<h2>In titles and descriptions</h2>" if texts else "")
        parts.append("<ul>" if found else "<p>Nothing found.</p>")
        for d in found:
            summary = f'<br><span class="small">{e(d.summary)}</span>' if d.summary else ""
            if d.document is None:
                link = e(urls.collection(d.collection))
                parts.append(f'<li>Collection <a href="{link}">{e(d.label)}</a>{summary}</li>')
            else:
                parts.append(f'<li><a href="{e(_view_url(urls, d.collection, d.document))}">{e(d.label)}</a> '
                             f'<span class="small">({e(d.collection)}; '
                             f'<a href="{e(urls.manifest(d.collection, d.document))}">IIIF manifest</a>)</span>'
                             f"{summary}</li>")
        parts.append("</ul>" if found else "")
        if next_url:
            parts.append(f'<p><a rel="next" href="{e(next_url)}">More results</a></p>')
    return _page(f"Search: {q}" if q else "Search", "".join(parts))


def _viewer_page(urls: Urls, cid: str, did: str, label: str, pages: list[Any], shown: Any, hits: list[Hit],
                 q: str) -> str:
    e = html.escape
    index = next(n for n, p in enumerate(pages) if p.ident == shown.ident)
    image = f"{urls.image_service(cid, did, shown.ident)}/full/!{VIEW_SIZE},{VIEW_SIZE}/0/default.jpg"
    pw, ph = shown.width, shown.height
    boxes = "".join(
        f'<div class="hit" title="{e(hit.text)}" style="left:{100 * x / pw:.3f}%;top:{100 * y / ph:.3f}%;'
        f'width:{100 * w / pw:.3f}%;height:{100 * h / ph:.3f}%"></div>'
        for hit in hits if hit.page == shown.ident for x, y, w, h in hit.boxes)
    nav = []
    if index > 0:
        previous = e(_view_url(urls, cid, did, page=pages[index - 1].ident, q=q))
        nav.append(f'<a rel="prev" href="{previous}">previous</a>')
    nav.append(f"page {index + 1} of {len(pages)} ({e(shown.label or shown.ident)})")
    if index + 1 < len(pages):
        nav.append(f'<a rel="next" href="{e(_view_url(urls, cid, did, page=pages[index + 1].ident, q=q))}">next</a>')
    listing = "".join(
        f'<li><a href="{e(_view_url(urls, cid, did, page=hit.page, q=q))}">{e(hit.text)}</a> '
        f'<span class="small">{e(hit.before)} … {e(hit.after)} (page {e(hit.page)})</span></li>' for hit in hits)
    body = (f"<h1>{e(label)}</h1>"
            f'<p class="small"><a href="{e(urls.manifest(cid, did))}">IIIF manifest</a> (open it in Mirador or '
            f'Universal Viewer) · <a href="{e(urls.base)}/iiif/search">search the catalogue</a></p>'
            f'<form action="" method="get"><input type="search" name="q" value="{e(q)}" aria-label="words in this '
            f'document"> <button>Find in this document</button></form>'
            f'{"<ul>" + listing + "</ul>" if listing else ("<p>Nothing found.</p>" if q.strip() else "")}'
            f'<p>{" · ".join(nav)}</p><div class="page"><img src="{e(image)}" alt="{e(shown.label or shown.ident)}" '
            f'width="{shown.width}" height="{shown.height}">{boxes}</div>')
    return _page(label, body)
