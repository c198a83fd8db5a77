"""The people's pages: a page per person (HTML, and JSON-LD), and finding a person by name.

    GET /persons?q=&year=&within=&place=&transport=   people by name (the tiers of Content Search), filtered
                                                      by birth year (± within), birth place and transport;
                                                      HTML, or JSON with format=json
    GET /persons/{id}                                 a person: portraits, name, dates and places, transport
                                                      and number, their line on the list, the public documents
                                                      that mention them, a citation, viewer links
    GET /persons/{id}.json                            the same as schema.org Person (JSON-LD)

A hidden person is 404 to everyone but staff. A page is built once per catalogue state and per clearance, and
kept (bounded by bytes) with its ETag; one that depends on clearance is `private`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import LINE, PORTRAIT
from iiif_server.db.people import People
from iiif_server.errors import RequestError
from iiif_server.manifests.cache import Document, DocumentCache
from iiif_server.manifests.presentation import Institution, Urls
from iiif_server.manifests.routes import not_found
from iiif_server.search.across import Across
from iiif_server.search.persons import PAGE, Filters, PersonSearch, tier_words
from iiif_server.search.store import TextStore
from iiif_server.tiles.answers import etag_matches
from iiif_server.web.home import ENV
from iiif_server.web.people import PersonView, citation, json_ld, restricted, script_json, shown, transport_url

Run = Callable[..., Awaitable[Any]]
CACHE_BYTES = 16 * 1024 * 1024
MENTIONS = 10  # other documents listed on a person's page
SITE_SEARCH = 5  # people shown first by the site search
PUBLIC = {"Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding, Authorization, Cookie"}
PRIVATE = {"Cache-Control": "private, max-age=0", "Vary": "Accept-Encoding, Authorization, Cookie"}
ANONYMOUS = Access(None, None)
YEARS = range(1800, 2101)


def access_key(access: Access | None) -> tuple[Any, ...]:
    """What of a request decides what a person's page shows it."""
    if access is None:
        return ()
    grant = access.grant
    return (access.network_tier, grant.tier if grant else None, grant.collections if grant else (),
            grant.kiosk if grant else False)


def respond(request: Request, doc: Document, media: str) -> Response:
    headers = {**(PRIVATE if doc.private else PUBLIC), "ETag": doc.etag}
    if etag_matches(doc.etag, request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(b"", media_type=media, headers={**headers, "Content-Length": str(len(doc.body))})
    return Response(doc.body, media_type=media, headers=headers)


def parse_filters(params: Any) -> Filters:
    """The search's filters from a query string; RequestError (400) for a value that is none."""
    year = within = None
    if params.get("year"):
        text = params["year"].strip()
        if not (text.isascii() and text.isdigit() and int(text) in YEARS):
            raise RequestError(f"year {text[:20]!r} is not a year between {YEARS.start} and {YEARS.stop - 1}")
        year = int(text)
    if params.get("within"):
        text = params["within"].strip()
        if not (text.isascii() and text.isdigit() and int(text) <= 20):
            raise RequestError(f"within {text[:20]!r} is not a number of years from 0 to 20")
        within = int(text)
    return Filters(year=year, within=within or 0, place=params.get("place", "").strip()[:100],
                   transport=params.get("transport", "").strip()[:50])


class PersonPages:
    def __init__(self, catalogue: Catalogue, policy: Policy | None, base_url: Callable[[Request], str], run: Run,
                 search_run: Run, institution: Institution, people: People | None = None,
                 finder: PersonSearch | None = None) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.base_url = base_url
        self.run = run
        self.search_run = search_run  # bounded like every search (a client chooses its cost)
        self.institution = institution
        self.people = people or People(catalogue)
        self.finder = finder or PersonSearch(catalogue)
        self.across = Across(TextStore(catalogue))
        self.cache = DocumentCache(CACHE_BYTES)

    def routes(self) -> list[Route]:
        return [
            Route("/persons", self.search, methods=["GET", "HEAD"]),
            Route("/persons/{pid}.json", self.person_json, methods=["GET", "HEAD"]),
            Route("/persons/{pid}", self.person_html, methods=["GET", "HEAD"]),
        ]

    async def _access(self, request: Request) -> Access | None:
        if self.policy is None:
            return None
        await self.policy.fresh(self.run)
        return await self.policy.access_async(request, self.run)

    def staff(self, access: Access | None) -> bool:
        policy = self.policy
        return policy is None or (access is not None and policy.tiers.allows(
            access.clearance(policy.tiers, None), policy.tiers.names[-1]))

    # -- a person ---------------------------------------------------------------------------------------

    def view(self, pid: str, access: Access | None, base: str) -> PersonView | None:
        """Blocking: the person as this requester may see them; None: no such person, or hidden from them."""
        person = self.people.person(pid)
        if person is None or (person.hidden and not self.staff(access)):
            return None
        urls = Urls(base)
        links = self.people.links(pid)
        labels = {c.id: c.label or c.id for c in self.catalogue.collections()}
        view = PersonView(person, urls.person(pid))
        for link in links:
            found = shown(urls, link, self.policy, access, labels)
            if found is not None:
                (view.portraits if link.kind == PORTRAIT else view.lines).append(found)
        view.private = person.hidden or restricted(self.policy, links)
        view.mentions = self.mentions(person, {(s.link.collection, s.link.document) for s in
                                               view.portraits + view.lines})
        return view

    def mentions(self, person: Any, linked: set[tuple[str, str]]) -> list[Any]:
        """Public documents whose text names the person (surname and first given name in one entry, or the
        surname alone, exactly as written), other than those linked to them."""
        if self.policy is None:
            return []
        policy = self.policy
        public = [c.id for c in self.catalogue.collections() if not policy.restricted(c.tier)
                  and c.tier not in policy.hidden]
        given = person.given_names.split()
        query = f"{person.surname} {given[0]}" if given else person.surname
        found, _ = self.across.search(query, public, policy, ANONYMOUS, None)
        kept = []
        for doc in found:
            # every word of several (a phrase or one entry); one word alone only as written: a lone surname's variants
            # name too many other people
            hits = doc.hits if given else [h for h in doc.hits if h.tier == 0]
            if hits and (doc.collection, doc.document) not in linked:
                kept.append(doc)
        return kept[:MENTIONS]

    async def _person(self, request: Request, fmt: str) -> Response:
        pid = request.path_params["pid"]
        if len(pid) > 100:
            return not_found()
        access = await self._access(request)
        base = self.base_url(request)
        revision = await self.run(self.people.revisions)  # one thread hop, one read
        what = ("person", pid, fmt, access_key(access), base)
        doc = self.cache.get(what, revision)
        if doc is None:
            view = await self.run(self.view, pid, access, base)
            if view is None:
                return not_found()
            body = self.render(view, fmt, base)
            doc = Document.build(body, view.private)
            self.cache.put(what, revision, doc)
        return respond(request, doc, "application/ld+json" if fmt == "json" else "text/html; charset=utf-8")

    def render(self, view: PersonView, fmt: str, base: str) -> bytes:
        urls = Urls(base)
        data = json_ld(view, urls)
        if fmt == "json":
            return json.dumps(data, ensure_ascii=False, indent=1).encode()
        page = ENV.get_template("person.html").render(
            view=view, ld=script_json(data), citation=citation(view, self.institution, dt.date.today()),
            transport=transport_url(base, view.person.transport) if view.person.transport else None, urls=urls)
        return page.encode()

    async def person_html(self, request: Request) -> Response:
        return await self._person(request, "html")

    async def person_json(self, request: Request) -> Response:
        return await self._person(request, "json")

    # -- finding a person -------------------------------------------------------------------------------

    def found(self, query: str, filters: Filters, after: str, access: Access | None,
              base: str) -> tuple[list[dict[str, Any]], str, bool]:
        """Blocking: a page of people with their portrait and line as this requester may see them, the next
        cursor, and whether the answer depends on who asks."""
        results, cursor = self.finder.search(query, filters, after, PAGE)
        ids = [r.entry.id for r in results]
        urls = Urls(base)
        labels = {c.id: c.label or c.id for c in self.catalogue.collections()} if ids else {}
        portraits = self.people.first_links(ids, PORTRAIT)
        lines = self.people.first_links(ids, LINE)
        private = restricted(self.policy, [*portraits.values(), *lines.values()])
        items = []
        for r in results:
            e = r.entry
            portrait, line = portraits.get(e.id), lines.get(e.id)
            items.append({
                "id": e.id, "url": urls.person(e.id), "surname": e.surname, "given_names": e.given_names,
                "birth_date": e.birth_date, "birth_place": e.birth_place, "transport": e.transport,
                "number": e.number, "match": tier_words(r.tier),
                "portrait": shown(urls, portrait, self.policy, access, labels) if portrait else None,
                "line": shown(urls, line, self.policy, access, labels) if line else None})
        return items, cursor, private

    def first_found(self, query: str, access: Access | None, base: str) -> list[dict[str, Any]]:
        """Blocking: the first people a query finds, for the site search (which shows them first)."""
        return self.found(query, Filters(), "", access, base)[0][:SITE_SEARCH]

    async def search(self, request: Request) -> Response:
        params = request.query_params
        query = params.get("q", "")[:200]
        filters = parse_filters(params)
        after = params.get("after", "")[:400]
        access = await self._access(request)
        base = self.base_url(request)
        items, cursor, private = await self.search_run(self.found, query, filters, after, access, base) \
            if query.strip() else ([], "", False)
        kept = {k: v for k, v in params.items() if k in ("q", "year", "within", "place", "transport") and v}
        next_url = f"{base}/persons?{urlencode({**kept, 'after': cursor})}" if cursor else None
        headers = PRIVATE if private else PUBLIC
        if params.get("format") == "json" or "application/json" in request.headers.get("accept", ""):
            body = {"query": query, "items": [_item_json(i) for i in items]}
            if next_url:
                body["next"] = next_url + "&format=json"
            return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json",
                            headers=headers)
        page = ENV.get_template("persons.html").render(q=query, filters=filters, items=items, next_url=next_url,
                                                       transports=transport_url)
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)


def _item_json(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in ("portrait", "line") and v is not None}
    for kind in ("portrait", "line"):
        s = item[kind]
        if s is not None:
            out[kind] = {"image": s.image, "viewer": s.viewer} if s.readable else {
                "in the reading room": s.collection_label}
    return out
