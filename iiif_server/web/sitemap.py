"""For search engines: `/robots.txt`, and a sitemap index (`/sitemap.xml`) of sitemap files of at most
URLS_PER_FILE URLs each: one of the collection pages (every collection that is not hidden: their descriptions
are public), and per collection, files of its public documents' viewer pages by position range.

A documents file is generated in chunks of CHUNK documents read by key (db/sitemaps.py) and streamed,
compressed as it goes where the client accepts it: memory stays that of one chunk, whatever the collection's
size. Each URL's `lastmod` is the end time of its last activity in the change stream. A file's Last-Modified is
its collection's last change, so a crawler's If-Modified-Since is answered 304 without reading the documents.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from iiif_server.auth.policy import Policy
from iiif_server.db import sitemaps
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.ingest import utc
from iiif_server.manifests.answer import http_date, not_modified_since
from iiif_server.manifests.base import Urls, nav_date
from iiif_server.runtime.compression import accepted

URLS_PER_FILE = 50_000  # the sitemaps protocol's limit per file
CHUNK = 5_000  # documents read and written at a time
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XML = "application/xml; charset=utf-8"
CACHE = {"Cache-Control": "public, max-age=3600"}
DISALLOWED = ("/staff/", "/iiif/auth/", "/iiif/search", "/iiif/view/", "/iiif/discovery/")

Run = Callable[..., Awaitable[Any]]


PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")  # what quote(..., safe="") leaves as it is


def document_entries(prefix: str, rows: Any) -> str:
    """The entries of documents whose viewer pages are `prefix` + identifier (the prefix escaped once, the
    identifiers quoted only when they need it: a file is 50,000 of these)."""
    prefix = escape(prefix)
    return "".join(f"<url><loc>{prefix}{ident if PLAIN.fullmatch(ident) else quote(ident, safe='')}</loc>"
                   + (f"<lastmod>{w3c(when)}</lastmod>" if when is not None else "") + "</url>\n"
                   for ident, when in rows)


def w3c(when: dt.datetime) -> str:
    """A UTC time as the sitemaps protocol writes it; what the catalogue returns is UTC already (or naive UTC)."""
    offset = when.utcoffset()
    if offset:
        when = when.astimezone(dt.UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}Z"


def url_entry(loc: str, lastmod: Any) -> str:
    when = nav_date(lastmod) if lastmod is not None else None
    return f"<url><loc>{escape(loc)}</loc>" + (f"<lastmod>{when}</lastmod>" if when else "") + "</url>\n"


class Sitemaps:
    def __init__(self, catalogue: Catalogue, policy: Policy, base_url: Callable[[Request], str], run: Run) -> None:
        self.catalogue = catalogue
        self.policy = policy
        self.base_url = base_url
        self.run = run

    def routes(self) -> list[Route]:
        return [
            Route("/robots.txt", self.robots, methods=["GET", "HEAD"]),
            Route("/sitemap.xml", self.index, methods=["GET", "HEAD"]),
            Route("/sitemaps/collections-{n:int}.xml", self.collections, methods=["GET", "HEAD"]),
            Route("/sitemaps/documents/{cid}/{n:int}.xml", self.documents, methods=["GET", "HEAD"]),
        ]

    async def robots(self, request: Request) -> Response:
        lines = ["User-agent: *", *(f"Disallow: {path}" for path in DISALLOWED), "",
                 f"Sitemap: {self.base_url(request)}/sitemap.xml", ""]
        return PlainTextResponse("\n".join(lines), headers=CACHE)

    def _listed(self, entry: sitemaps.CollectionEntry) -> bool:
        return entry.tier not in self.policy.hidden

    def _public(self, tier: str) -> bool:
        return not self.policy.restricted(tier)

    def files(self, base: str) -> list[tuple[str, Any]]:
        """Blocking: every sitemap file's URL with its last change."""
        entries = [e for e in sitemaps.collections(self.catalogue) if self._listed(e)]
        out: list[tuple[str, Any]] = []
        for n in range(0, max(1, len(entries)), URLS_PER_FILE):
            chunk = entries[n:n + URLS_PER_FILE]
            out.append((f"{base}/sitemaps/collections-{n // URLS_PER_FILE}.xml",
                        max((e.updated for e in chunk), default=None)))
        for e in entries:
            if e.last is None:
                continue
            if self._public(e.tier):
                numbers = list(range(e.last // URLS_PER_FILE + 1))
            else:
                numbers = sitemaps.public_ranges(self.catalogue, e.id, self.policy.tiers.public, URLS_PER_FILE)
            out += [(f"{base}/sitemaps/documents/{e.id}/{n}.xml", e.updated) for n in numbers]
        return out

    async def index(self, request: Request) -> Response:
        files = await self.run(self.files, self.base_url(request))
        body = [f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{NS}">\n']
        for loc, when in files:
            body.append(f"<sitemap><loc>{escape(loc)}</loc>"
                        + (f"<lastmod>{nav_date(when)}</lastmod>" if when is not None else "") + "</sitemap>\n")
        body.append("</sitemapindex>\n")
        return Response("".join(body), media_type=XML, headers=CACHE)

    async def collections(self, request: Request) -> Response:
        n = request.path_params["n"]
        entries = [e for e in await self.run(sitemaps.collections, self.catalogue) if self._listed(e)]
        chunk = entries[n * URLS_PER_FILE:(n + 1) * URLS_PER_FILE]
        if not chunk and n > 0:
            return PlainTextResponse("not found\n", status_code=404)
        urls = Urls(self.base_url(request))
        body = [f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}">\n']
        body += [url_entry(urls.collection_page(e.id), e.changed or e.updated) for e in chunk]
        body.append("</urlset>\n")
        return Response("".join(body), media_type=XML, headers=CACHE)

    async def documents(self, request: Request) -> Response:
        cid, n = request.path_params["cid"], request.path_params["n"]
        coll = await self.run(self.catalogue.collection, cid)
        last = await self.run(self.catalogue.last_position, cid) if coll is not None else None
        if coll is None or last is None or coll.tier in self.policy.hidden or n > last // URLS_PER_FILE:
            return PlainTextResponse("not found\n", status_code=404)
        modified = utc(coll.updated).timestamp()
        headers = {**CACHE, "Last-Modified": http_date(modified)}
        if not_modified_since(modified, request):
            return Response(status_code=304, headers=headers)
        urls = Urls(self.base_url(request))
        collection_public = self._public(coll.tier)
        public = self.policy.tiers.public
        first, stop = n * URLS_PER_FILE, min((n + 1) * URLS_PER_FILE, last + 1)

        async def chunks() -> AsyncIterator[str]:
            yield f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}">\n'
            for start in range(first, stop, CHUNK):
                rows = await self.run(sitemaps.public_documents, self.catalogue, cid, collection_public, public,
                                      start, min(start + CHUNK, stop))
                yield document_entries(urls.document_page(cid, ""), rows)
            yield "</urlset>\n"

        headers["Vary"] = "Accept-Encoding"
        if request.method == "HEAD":
            return Response(b"", media_type=XML, headers=headers)
        encoding = accepted(request.headers.get("accept-encoding", ""))
        if encoding is None:
            return StreamingResponse(chunks(), media_type=XML, headers=headers)
        return StreamingResponse(packed(chunks(), encoding), media_type=XML,
                                 headers={**headers, "Content-Encoding": encoding})


async def packed(parts: AsyncIterator[str], encoding: str) -> AsyncIterator[bytes]:
    """Compressed a part at a time: gzip (level 6) or brotli (quality 5, as the documents are)."""
    if encoding == "br":
        import brotli

        packer: Any = brotli.Compressor(quality=5)
        add, end = packer.process, packer.finish
    else:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
        add, end = packer.compress, packer.flush
    async for part in parts:
        out = add(part.encode())
        if out:
            yield out
    yield end()
