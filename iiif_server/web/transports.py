"""The transports: each with its people in list order and their portraits, as pages and IIIF Collections.

    GET /transports                 every transport: number, date, destination, people, with a portrait
    GET /transports/{t}?after=      its people in list order with their portraits, 100 a page (by key)
    GET /iiif/transports            Presentation 3.0 Collection of the transports' Collections
    GET /iiif/transports/{t}        Collection of the portrait manifests of its people, in list order

A transport is bounded by what one train held (at most a few thousand people), so its Collection lists it
whole. Hidden people are left out for everyone; a portrait in a restricted tier is shown only to those
cleared for it (and the answer is then private), in a hidden tier not at all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from iiif_prezi3 import Collection as CollectionModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import PORTRAIT
from iiif_server.db.people import People
from iiif_server.errors import RequestError
from iiif_server.manifests.cache import Document, DocumentCache
from iiif_server.manifests.presentation import CONTEXT, Institution, Urls, lang_map, name_label, thumbnail_size
from iiif_server.manifests.routes import not_found
from iiif_server.web.home import ENV
from iiif_server.web.people import restricted, shown, transport_url
from iiif_server.web.persons import access_key, respond

Run = Callable[..., Awaitable[Any]]
WALL = 100  # people a page of a transport
BATCH = 500  # people read at once for a transport's Collection
CACHE_BYTES = 16 * 1024 * 1024
JSON_LD = f'application/ld+json;profile="{CONTEXT}"'


def parse_after(value: str) -> tuple[str, str] | None:
    """`number key|person id` of the last person of the previous page; RequestError for anything else."""
    if not value:
        return None
    key, sep, pid = value.rpartition("|")
    if not sep or not pid or len(value) > 600:
        raise RequestError(f"not a cursor this server gave: {value[:40]!r}")
    return key, pid


class TransportPages:
    def __init__(self, catalogue: Catalogue, policy: Policy | None, base_url: Callable[[Request], str], run: Run,
                 institution: Institution, people: People | None = None) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.base_url = base_url
        self.run = run
        self.institution = institution
        self.people = people or People(catalogue)
        self.cache = DocumentCache(CACHE_BYTES)

    def routes(self) -> list[Route]:
        return [
            Route("/transports", self.listing, methods=["GET", "HEAD"]),
            Route("/transports/{tid}", self.wall, methods=["GET", "HEAD"]),
            Route("/iiif/transports", self.top_collection, methods=["GET", "HEAD"]),
            Route("/iiif/transports/{tid}", self.collection, methods=["GET", "HEAD"]),
        ]

    async def _access(self, request: Request) -> Access | None:
        if self.policy is None:
            return None
        await self.policy.fresh(self.run)
        return await self.policy.access_async(request, self.run)

    async def _serve(self, request: Request, what: tuple[Any, ...], build: Callable[[], tuple[bytes, bool] | None],
                     media: str) -> Response:
        revision = await self.run(self.people.revisions)  # one thread hop, one read
        key = (*what, self.base_url(request))
        doc = self.cache.get(key, revision)
        if doc is None:
            built = await self.run(build)
            if built is None:
                return not_found()
            doc = Document.build(*built)
            self.cache.put(key, revision, doc)
        return respond(request, doc, media)

    # -- pages -----------------------------------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        base = self.base_url(request)

        def build() -> tuple[bytes, bool]:
            rows = self.people.transports()
            page = ENV.get_template("transports.html").render(rows=rows, url=lambda t: transport_url(base, t))
            return page.encode(), False

        return await self._serve(request, ("transports",), build, "text/html; charset=utf-8")

    async def wall(self, request: Request) -> Response:
        tid = request.path_params["tid"]
        after = parse_after(request.query_params.get("after", ""))
        access = await self._access(request)
        base = self.base_url(request)

        def build() -> tuple[bytes, bool] | None:
            transport = self.people.transport(tid)
            if transport is None:
                return None
            people = self.people.people_of(tid, after, WALL + 1)
            more = people[WALL - 1] if len(people) > WALL else None
            people = people[:WALL]
            portraits = self.people.first_links([p.id for p in people], PORTRAIT)
            urls = Urls(base)
            labels = {c.id: c.label or c.id for c in self.catalogue.collections()}
            cards = [(p, shown(urls, portraits[p.id], self.policy, access, labels) if p.id in portraits else None)
                     for p in people]
            next_url = f"{transport_url(base, tid)}?after={quote(f'{more.number_key}|{more.id}', safe='')}" \
                if more else None
            page = ENV.get_template("transport.html").render(
                transport=transport, cards=cards, next_url=next_url, first=after is None, urls=urls,
                name=name_label, collection=f"{base}/iiif/transports/{quote(tid, safe='')}")
            return page.encode(), restricted(self.policy, list(portraits.values()))

        return await self._serve(request, ("wall", tid, after, access_key(access)), build, "text/html; charset=utf-8")

    # -- IIIF Collections ------------------------------------------------------------------------------

    def _collection(self, ident: str, label: str, summary: str | None, part_of: str | None,
                    items: list[dict[str, Any]]) -> bytes:
        lang = self.institution.language
        fields: dict[str, Any] = {"id": ident, "label": lang_map(label, lang), "items": []}
        if summary:
            fields["summary"] = lang_map(summary, lang)
        if part_of:
            fields["partOf"] = [{"id": part_of, "type": "Collection"}]
        doc = json.loads(CollectionModel(**fields).jsonld())
        doc["items"] = items
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    async def top_collection(self, request: Request) -> Response:
        base = self.base_url(request)

        def build() -> tuple[bytes, bool]:
            items = [{"id": f"{base}/iiif/transports/{quote(t.id, safe='')}", "type": "Collection",
                      "label": lang_map(f"Transport {t.id}", self.institution.language)}
                     for t in self.people.transports()]
            return self._collection(f"{base}/iiif/transports", "Transports", None, None, items), False

        return await self._serve(request, ("iiif-transports",), build, JSON_LD if _ld(request) else "application/json")

    async def collection(self, request: Request) -> Response:
        tid = request.path_params["tid"]
        access = await self._access(request)
        base = self.base_url(request)

        def build() -> tuple[bytes, bool] | None:
            transport = self.people.transport(tid)
            if transport is None:
                return None
            urls = Urls(base)
            labels: dict[str, str] = {}
            items: list[dict[str, Any]] = []
            by_manifest: dict[str, dict[str, Any]] = {}
            links = []
            after = None
            while True:
                people = self.people.people_of(tid, after, BATCH)
                portraits = self.people.first_links([p.id for p in people], PORTRAIT)
                for person in people:
                    link = portraits.get(person.id)
                    if link is None:
                        continue
                    links.append(link)
                    seen = shown(urls, link, self.policy, access, labels)
                    if seen is None:
                        continue
                    name = name_label(person.surname, person.given_names)
                    manifest = urls.manifest(link.collection, link.document)
                    if manifest in by_manifest:  # one photograph of several people: one entry, their names
                        by_manifest[manifest]["label"]["none"][0] += f"; {name}"
                        continue
                    ref: dict[str, Any] = {"id": manifest, "type": "Manifest", "label": {"none": [name]}}
                    if seen.readable and seen.thumbnail:
                        tw, th = thumbnail_size(link.width, link.height)
                        ref["thumbnail"] = [{"id": seen.thumbnail, "type": "Image", "format": "image/jpeg",
                                             "width": tw, "height": th}]
                    by_manifest[manifest] = ref
                    items.append(ref)
                if len(people) < BATCH:
                    break
                after = (people[-1].number_key, people[-1].id)
            summary = f"{transport.people} people, {transport.portraits} with a portrait" + (
                f"; {transport.date}" if transport.date else "") + (
                f", to {transport.destination}" if transport.destination else "")
            body = self._collection(f"{base}/iiif/transports/{quote(tid, safe='')}", f"Transport {tid}", summary,
                                    f"{base}/iiif/transports", items)
            return body, restricted(self.policy, links)

        return await self._serve(request, ("iiif-transport", tid, access_key(access)), build,
                                 JSON_LD if _ld(request) else "application/json")


def _ld(request: Request) -> bool:
    return "application/ld+json" in request.headers.get("accept", "")
