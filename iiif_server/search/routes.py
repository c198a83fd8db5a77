"""IIIF Content Search 1.0 and 2.0 (with autocomplete) on every document manifest that has text.

Access: the document must be visible to the requester (else the same 404 as a hidden manifest),
and only pages whose tier the requester's clearance allows give hits, terms or counts. An answer
about a document with any restricted page depends on who asks: `Cache-Control: private`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.models import effective_tier
from iiif_server.manifests.presentation import Urls
from iiif_server.manifests.routes import not_found
from iiif_server.search.results import Hit, Pages, Target, parse_cursor
from iiif_server.search.store import TextStore

Run = Callable[..., Awaitable[Any]]
PAGE_SIZE = 100
CONTEXT_1 = ["http://iiif.io/api/presentation/2/context.json", "http://iiif.io/api/search/1/context.json"]
CONTEXT_2 = "http://iiif.io/api/search/2/context.json"
PUBLIC = {"Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding"}
# the query parameters both specifications define that this server does not implement: ignored, and said so
# (`ignored`: Content Search 1.0 section 3.4.1 and 4.3, 2.0 section 4.2.4 and 5.2)
UNIMPLEMENTED = ("motivation", "date", "user")
AUTOCOMPLETE_MIN = "min"  # autocomplete's fewest occurrences (implemented)
PRIVATE = {"Cache-Control": "private, max-age=0", "Vary": "Accept-Encoding, Authorization, Cookie"}


def service_base(base: str, collection: str, document: str) -> str:
    return f"{base}/iiif/search/{{}}/{quote(collection)}/{quote(document)}"


def services(base: str, collection: str, document: str) -> list[dict[str, Any]]:
    """The manifest's `service` entries of a document that has text."""
    url = service_base(base, collection, document)
    return [
        # Content Search 1.0's blocks need @context, @id and profile (section 3.1, 6.1); id and type as Presentation
        # 3.0 has them (and no @type, which would make them two kinds of service to its schema)
        {"@context": "http://iiif.io/api/search/1/context.json", "@id": url.format(1) + "/search",
         "id": url.format(1) + "/search", "type": "SearchService1", "profile": "http://iiif.io/api/search/1/search",
         "service": [{"@id": url.format(1) + "/autocomplete", "id": url.format(1) + "/autocomplete",
                      "type": "AutoCompleteService1", "profile": "http://iiif.io/api/search/1/autocomplete"}]},
        {"id": url.format(2) + "/search", "type": "SearchService2",
         "service": [{"id": url.format(2) + "/autocomplete", "type": "AutoCompleteService2"}]},
    ]


class Found(NamedTuple):
    urls: Urls
    collection: str
    document: str
    q: str
    after: str
    hits: list[Hit]
    total: int
    more: bool
    restricted: bool  # the answer depends on clearance: never in a shared cache
    url: str  # the search service's URL
    ignored: list[str]  # parameters received and not implemented


def readable(policy: Policy, access: Access, collection: str, target: Target) -> tuple[Pages, bool] | None:
    """The pages of a document this requester may read, and whether the answer depends on who asks;
    None when the document itself is hidden from them."""
    tiers = policy.tiers
    clearance = access.clearance(tiers, collection)
    doc_tier = effective_tier(target.document_tier, target.collection_tier)
    if not policy.visible(access, doc_tier, collection):
        return None
    restricted = policy.restricted(doc_tier) or any(policy.restricted(t) for t in target.page_tiers.values())
    if tiers.allows(clearance, doc_tier):
        pages = Pages(True, denied=tuple(pk for pk, t in target.page_tiers.items() if not tiers.allows(clearance, t)))
    else:
        pages = Pages(False, allowed=tuple(pk for pk, t in target.page_tiers.items() if tiers.allows(clearance, t)))
    return pages, restricted


class SearchService:
    def __init__(self, store: TextStore, policy: Policy, base_url: Callable[[Request], str], run: Run) -> None:
        self.store = store
        self.policy = policy
        self.base_url = base_url
        self.run = run

    def routes(self) -> list[Route]:
        return [Route(f"/iiif/search/{v}/{{collection}}/{{document}}/{what}", getattr(self, f"{what}_{v}"),
                      methods=["GET", "HEAD"]) for v in (1, 2) for what in ("search", "autocomplete")]

    async def _scope(self, request: Request) -> tuple[Target, Pages, bool] | None:
        """The document's text as this requester may read it, and whether the answer depends on who asks;
        None for a document that does not exist, has no text, or is hidden from them."""
        cid, did = request.path_params["collection"], request.path_params["document"]
        target = await self.run(self.store.target, cid, did)
        if target is None:
            return None
        await self.policy.fresh(self.run)
        access = await self.policy.access_async(request, self.run)
        scope = readable(self.policy, access, cid, target)
        return None if scope is None else (target, *scope)

    @staticmethod
    def _query(request: Request) -> tuple[str, str]:
        q = request.query_params.get("q", "")[:200]
        after = "{}.{}".format(*parse_cursor(request.query_params.get("after", "")))
        return q, "" if after == "0.0" else after

    @staticmethod
    def _ignored(request: Request) -> list[str]:
        """The parameters the specifications define that were sent and are not implemented, in request order."""
        return [name for name in dict.fromkeys(request.query_params.keys()) if name in UNIMPLEMENTED]

    @staticmethod
    def _respond(request: Request, body: dict[str, Any], restricted: bool) -> Response:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = PRIVATE if restricted else PUBLIC
        if request.method == "HEAD":
            return Response(b"", media_type="application/json", headers={**headers, "Content-Length": str(len(data))})
        return Response(data, media_type="application/json", headers=headers)

    def _urls(self, request: Request) -> tuple[Urls, str, str, str]:
        cid, did = request.path_params["collection"], request.path_params["document"]
        base = self.base_url(request)
        return Urls(base), service_base(base, cid, did), cid, did

    @staticmethod
    def _page_url(service: str, q: str, after: str = "") -> str:
        params = {"q": q, **({"after": str(after)} if after else {})}
        return f"{service}?{urlencode(params)}"

    async def _search(self, request: Request, version: int) -> Found | None:
        """The hits of one page of a search, from the pages this requester may see; None: 404."""
        scope = await self._scope(request)
        if scope is None:
            return None
        target, pages, restricted = scope
        urls, service, cid, did = self._urls(request)
        q, after = self._query(request)
        hits, total, more = await self.run(self.store.search, target.document_pk, q, pages, after, PAGE_SIZE)
        return Found(urls, cid, did, q, after, hits, total, more, restricted, service.format(version) + "/search",
                     self._ignored(request))

    async def search_1(self, request: Request) -> Response:
        found_page = await self._search(request, 1)
        if found_page is None:
            return not_found()
        urls, cid, did, q, after, hits, total, more, restricted, url, ignored = found_page
        within: dict[str, Any] = {"@type": "sc:Layer", "total": total, "first": self._page_url(url, q)}
        if ignored:
            within["ignored"] = ignored
        body: dict[str, Any] = {
            "@context": CONTEXT_1, "@id": self._page_url(url, q, after), "@type": "sc:AnnotationList",
            "within": within, "resources": [], "hits": [],
        }
        if more:
            body["next"] = self._page_url(url, q, hits[-1].cursor)
        for hit in hits:
            annos = _annotation_ids(urls, cid, did, hit)
            for anno, box in zip(annos, hit.boxes, strict=True):
                body["resources"].append({
                    "@id": anno, "@type": "oa:Annotation", "motivation": "sc:painting",
                    "resource": {"@type": "cnt:ContentAsText", "chars": hit.text},
                    "on": _on(urls, cid, did, hit.page, box)})
            before, match, after_ = _context(hit)
            found: dict[str, Any] = {"@type": "search:Hit", "annotations": annos, "match": match}
            if before:
                found["before"] = before
            if after_:
                found["after"] = after_
            body["hits"].append(found)
        return self._respond(request, body, restricted)

    async def search_2(self, request: Request) -> Response:
        found_page = await self._search(request, 2)
        if found_page is None:
            return not_found()
        urls, cid, did, q, after, hits, total, more, restricted, url, ignored = found_page
        items, notes = [], []
        for hit in hits:
            annos = _annotation_ids(urls, cid, did, hit)
            for anno, box in zip(annos, hit.boxes, strict=True):
                items.append({"id": anno, "type": "Annotation", "motivation": "supplementing",
                              "body": {"type": "TextualBody", "value": hit.text, "format": "text/plain"},
                              "target": _on(urls, cid, did, hit.page, box)})
            notes += _notes(annos, hit)
        first = {"id": self._page_url(url, q), "type": "AnnotationPage"}
        body: dict[str, Any] = {
            "@context": CONTEXT_2, "id": self._page_url(url, q, after), "type": "AnnotationPage",
            "partOf": {"id": self._page_url(url, q), "type": "AnnotationCollection", "total": total, "first": first},
        }
        if ignored:
            body["ignored"] = ignored
        body["items"] = items
        if notes:
            body["annotations"] = [{"type": "AnnotationPage", "items": notes}]
        if more:
            body["next"] = {"id": self._page_url(url, q, hits[-1].cursor), "type": "AnnotationPage"}
        return self._respond(request, body, restricted)

    async def _complete(self, request: Request) -> tuple[list[tuple[str, int]], bool, str, list[str]] | None:
        scope = await self._scope(request)
        if scope is None:
            return None
        target, pages, restricted = scope
        q = request.query_params.get("q", "")[:200]
        least = request.query_params.get(AUTOCOMPLETE_MIN, "")
        least_n = int(least) if least.isascii() and least.isdigit() and len(least) <= 6 else 1
        terms = await self.run(self.store.complete, target.document_pk, q, pages, 10, max(1, least_n))
        return terms, restricted, q, self._ignored(request)

    async def autocomplete_1(self, request: Request) -> Response:
        found = await self._complete(request)
        if found is None:
            return not_found()
        terms, restricted, q, ignored = found
        _, service, _, _ = self._urls(request)
        body: dict[str, Any] = {"@context": "http://iiif.io/api/search/1/context.json",
                                "@id": self._page_url(service.format(1) + "/autocomplete", q),
                                "@type": "search:TermList"}
        if ignored:
            body["ignored"] = ignored
        body["terms"] = [{"match": t, "url": self._page_url(service.format(1) + "/search", t), "count": n}
                         for t, n in terms]
        return self._respond(request, body, restricted)

    async def autocomplete_2(self, request: Request) -> Response:
        found = await self._complete(request)
        if found is None:
            return not_found()
        terms, restricted, q, ignored = found
        _, service, _, _ = self._urls(request)
        body: dict[str, Any] = {"@context": CONTEXT_2, "id": self._page_url(service.format(2) + "/autocomplete", q),
                                "type": "TermPage"}
        if ignored:
            body["ignored"] = ignored
        body["items"] = [{"value": t, "total": n, "service": [
            {"id": self._page_url(service.format(2) + "/search", t), "type": "SearchService2"}]} for t, n in terms]
        return self._respond(request, body, restricted)


def _context(hit: Hit) -> tuple[str, str, str]:
    """(before, match, after) of a 1.0 hit: the words of its line around an ALTO hit; a whole entry (a CSV row) as
    its match, as the viewers list it (2.0 highlights the matched words within it)."""
    if hit.whole:
        return "", hit.text, ""
    return hit.before, hit.text, hit.after


def _notes(annos: list[str], hit: Hit) -> list[dict[str, Any]]:
    """Content Search 2.0's annotations about a hit (section 4.3): an ALTO hit's words are the annotation, with the
    words of their line as context (`contextualizing`, 4.3.1); in a whole entry (a CSV row) each matched word is
    highlighted within the annotation's text (`highlighting`, 4.3.2)."""
    if hit.whole:
        spans = hit.spans or ((0, len(hit.text)),)
        return [{"id": f"{annos[0]}/hit/{n}" if n else f"{annos[0]}/hit", "type": "Annotation",
                 "motivation": "highlighting",
                 "target": {"type": "SpecificResource", "source": annos[0], "selector": [
                     {"type": "TextQuoteSelector", "prefix": hit.text[:a], "exact": hit.text[a:b],
                      "suffix": hit.text[b:]}]}} for n, (a, b) in enumerate(spans)]
    selector = {"type": "TextQuoteSelector", "prefix": hit.before + " " if hit.before else "",
                "exact": hit.text, "suffix": " " + hit.after if hit.after else ""}
    targets = [{"type": "SpecificResource", "source": anno, "selector": [selector]} for anno in annos]
    return [{"id": annos[0] + "/hit", "type": "Annotation", "motivation": "contextualizing",
             "target": targets[0] if len(targets) == 1 else targets}]


def _annotation_ids(urls: Urls, collection: str, document: str, hit: Hit) -> list[str]:
    """One annotation per box: a phrase over two lines is highlighted on each."""
    anno = f"{urls.base}/iiif/search/annotation/{quote(collection)}/{quote(document)}/{hit.id}"
    return [anno if n == 0 else f"{anno}-{n}" for n in range(len(hit.boxes))]


def _on(urls: Urls, collection: str, document: str, page: str, box: tuple[int, int, int, int]) -> str:
    x, y, w, h = box
    return f"{urls.canvas(collection, document, page)}#xywh={x},{y},{w},{h}"
