"""The Image API over HTTP: route -> parse -> source -> process -> cache -> response.

The identifier travels percent-encoded (`%2F` for `/`), so the path is split
from the raw, undecoded request path and each part decoded on its own.

Pixel work runs in one thread pool; file-system and metadata work (opening a
source for info.json, listing, health) in another, so that slow renders never
hold up the cheap requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from iiif_server.auth.policy import Access, Verdict, collection_of
from iiif_server.errors import RequestError
from iiif_server.runtime import metrics, observe
from iiif_server.runtime.base import Runtime
from iiif_server.runtime.singleflight import SingleFlight
from iiif_server.tiles import placeholder
from iiif_server.tiles.answers import (
    LD_JSON,
    REFUSED_HEADERS,
    RESTRICTED_HEADERS,
    AccessRefused,
    Ready,
    canonical_tail,
    decode_segment,
    error_response,
    etag_matches,
    image_etag,
    profile_head,
    wants_image,
    within_degraded_limit,
)
from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.hits import SPELLING_BYTES, SPELLINGS_BUDGET, HitPath
from iiif_server.tiles.hot import Opened, OpenSources, open_checked
from iiif_server.tiles.info import PROFILE_URI, info_document
from iiif_server.tiles.pipeline import (
    Encoding,
    assemble_stored,
    locate_stored,
    process,
    self_test,
    was_passthrough,
    writable_formats,
)
from iiif_server.tiles.request import FORMATS, Limits, Plan, parse, resolve
from iiif_server.tiles.sources import Source, SourceStore, check_identifier, unknown

if TYPE_CHECKING:
    from iiif_server.auth.services import AuthServices

DENIED = {
    Verdict.LOGIN: "this image is restricted: sign in or use the reading room",
    Verdict.DENY: "your access does not cover this image",
}
log = logging.getLogger("iiif_server")


def process_traced(source: Source, plan: Plan, enc: Encoding) -> tuple[bytes, bool]:
    """`process`, and whether it sent a stored tile as stored (in the same worker thread)."""
    body = process(source, plan, enc)
    return body, was_passthrough()


@dataclass(frozen=True)
class Gate:
    tier: str
    access: Access
    verdict: Verdict


class ImageService(HitPath):
    """Everything the Image API needs, built once per process."""

    def __init__(self, runtime: Runtime, source: SourceStore, auth: AuthServices | None = None) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.auth = auth
        self.public_cache = f"public, max-age={settings.max_age}"
        self.settings = settings
        self.source = source
        self.limits = Limits(settings.max_width, settings.max_height, settings.max_area)
        self.encoding = Encoding(jpeg_quality=settings.jpeg_quality)
        self.formats, self.broken_formats = self_test(writable_formats())
        for fmt, why in self.broken_formats.items():
            log.error("libvips cannot encode %s: %s", fmt, why)
        self.cache = MemoryCache(settings.cache_mb * 1024 * 1024)
        self.renders: SingleFlight[Any] = SingleFlight()  # concurrent identical requests share one render
        self.hot = OpenSources()
        self.spellings = MemoryCache(SPELLINGS_BUDGET, cost=lambda _: SPELLING_BYTES)
        self.public_cache_header = self.public_cache.encode()
        self.run, self.run_io, self.base_url = runtime.run, runtime.run_io, runtime.base_url
        self.process_traced = process_traced  # the hit path renders as the full path does
        self.urls = {}

    def service_id(self, request: Request, version: int, identifier: str) -> str:
        return f"{self.base_url(request)}/iiif/{version}/{quote(identifier, safe='')}"

    async def opened(self, identifier: str) -> Opened:
        """The source, from memory when current (no thread hop), else looked up in the I/O pool."""
        found = self.hot.get(identifier)
        if found is None:
            found = await self.run_io(open_checked, self.source, identifier)
            self.hot.put(identifier, found)  # files only: an object store keeps its own (TTL) memory
        return found

    async def open(self, identifier: str) -> Source:
        return (await self.opened(identifier)).source

    async def handle(self, request: Request, version: int) -> Response:
        try:
            parts = self._path_parts(request, version)
            if len(parts) == 1:
                observe.note_identifier(parts[0], "redirect")
                return await self.redirect(request, version, parts[0])
            if len(parts) == 2 and parts[1] == "info.json":
                observe.note_identifier(parts[0], "info")
                return await self.info(request, version, parts[0])
            observe.note_identifier(parts[0])
            if len(parts) == 5:
                try:
                    return await self.image(request, version, parts[0], parts[1:])
                except AccessRefused as exc:
                    shown = await self._padlock(request, version, parts[0], parts[1:], exc.status)
                    if shown is None:
                        raise
                    return shown
            raise RequestError("not an Image API URL; a '/' inside an identifier is sent as %2F", 404)
        except RequestError as exc:
            if exc.status >= 500:  # the file or libvips failed: the operator needs the cause
                log.error("%s on %s: %s", exc.status, request.url.path, exc.message, exc_info=exc)
            return error_response(exc, private_404=bool(self.auth and self.auth.policy.hidden))

    async def _padlock(self, request: Request, version: int, identifier: str, params: list[str],
                       status: int) -> Response | None:
        """A refused whole image loaded by a browser as an image (an <img> thumbnail: UV 4 builds them from
        the image service, never from the manifest's thumbnail) gets the placeholder at the size asked for,
        so it shows a padlock instead of a broken image. Tiles (regions), large sizes and other clients
        keep the plain refusal; the status still says refused and the headers keep it out of shared caches."""
        if params[0] not in ("full", "square") or not wants_image(request):
            return None
        try:
            source = await self.open(identifier)
            plan = resolve(parse(version, *params), source.width, source.height, self.limits)
        except RequestError:
            return None
        if max(plan.out_w, plan.out_h) > placeholder.MAX_SIDE:
            return None
        body = await self.run(placeholder.sized, plan.out_w, plan.out_h)
        return Response(body, status_code=status, media_type="image/png",
                        headers={**REFUSED_HEADERS, "X-Content-Type-Options": "nosniff"})

    @staticmethod
    def _path_parts(request: Request, version: int) -> list[str]:
        """The decoded segments after `/iiif/{version}/`, split on the raw path's slashes.

        Routing matched the decoded path; the raw one must carry the same prefix
        literally, or an encoded prefix (`/iiif%2F3%2F...`) would shift the split.
        """
        raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
        raw = raw.split(b"?", 1)[0]  # ASGI excludes the query; some servers do not
        root = request.scope.get("root_path", "").encode()
        if root and raw.startswith(root):
            raw = raw[len(root) :]
        prefix = f"/iiif/{version}/".encode()
        if not raw.startswith(prefix):
            raise RequestError("not an Image API URL", 404)
        return [decode_segment(p) for p in raw[len(prefix) :].split(b"/")]

    async def redirect(self, request: Request, version: int, identifier: str) -> Response:
        await self.gate(request, identifier)  # hidden material: 404 as for an unknown identifier
        await self.open(identifier)  # 404 for an unknown identifier
        return RedirectResponse(self.service_id(request, version, identifier) + "/info.json", status_code=303)

    async def gate(self, request: Request, identifier: str) -> Gate | None:
        """Policy: None for public material, else the request's access and the verdict."""
        if self.auth is None:
            return None
        policy = self.auth.policy
        await policy.fresh(self.run_io)
        tier = policy.tier_of(identifier)
        if not policy.restricted(tier):
            return None
        if policy.raised(identifier):
            # restricted only as another spelling of restricted material: the spelling itself must name a
            # file, else it answers as unknown, as it would on a file system that does not fold names
            await self.open(identifier)
        access = await policy.access_async(request, self.run_io)
        collection = collection_of(identifier)
        if not policy.visible(access, tier, collection):
            # hidden from this requester: exactly what an unknown identifier answers, no login offered
            check_identifier(identifier)
            raise unknown(identifier)
        verdict = policy.verdict(access, tier, collection)
        observe.note_access(access, access.clearance(policy.tiers, collection), tier, verdict)
        return Gate(tier, access, verdict)

    async def info(self, request: Request, version: int, identifier: str) -> Response:
        gate = await self.gate(request, identifier)
        source = await self.open(identifier)
        service_id = self.service_id(request, version, identifier)
        doc = info_document(source, service_id, version, self.limits, self.formats)
        headers = {
            "Cache-Control": self.public_cache,
            "Vary": "Accept",
            "Link": f'<{PROFILE_URI[version]}>;rel="profile"',
        }
        status = 200
        if gate is not None and self.auth is not None:
            doc["service"] = self.auth.descriptions(self.base_url(request), identifier, gate.access, gate.tier,
                                                    signed_in=True)
            headers.update(RESTRICTED_HEADERS)
            if gate.verdict not in (Verdict.ALLOW,):
                # Auth 1.0: without access, info.json answers 401 (or 403) and names the services
                status = 401 if not gate.access.has_credentials else 403
        body = json.dumps(doc, separators=(",", ":")).encode()
        accept = request.headers.get("accept", "")
        media = LD_JSON.format(doc["@context"]) if "application/ld+json" in accept else "application/json"
        if status != 200:
            return Response(body, status_code=status, media_type=media, headers=headers)
        return self._conditional(request, body, media, headers)

    async def image(self, request: Request, version: int, identifier: str, params: list[str]) -> Response:
        parsed = parse(version, *params)
        if parsed.format not in self.formats:
            raise RequestError(f"format {parsed.format!r} is not supported by this server", 501)
        gate = await self.gate(request, identifier)
        if gate is not None and gate.verdict in (Verdict.LOGIN, Verdict.DENY):
            raise AccessRefused(DENIED[gate.verdict], 401 if gate.verdict is Verdict.LOGIN else 403)
        opened = await self.opened(identifier)
        source = opened.source
        plan = resolve(parsed, source.width, source.height, self.limits)
        if gate is not None and gate.verdict is Verdict.DEGRADE:
            limit = self.auth.policy.degraded_limit(gate.tier) if self.auth else None
            if limit is None or not within_degraded_limit(plan, source.width, source.height, limit):
                status = 403 if gate.access.has_credentials else 401
                raise AccessRefused(f"without access this image is served up to {limit} pixels", status)
        canonical = plan.canonical(version, source.width, source.height, self.limits)
        key = (source.path, source.stamp, canonical)
        ready: Ready | None = self.cache.get(key)
        outcome = "cache_hit"
        if ready is None and (tile := locate_stored(source, plan, self.encoding.jpeg_quality)) is not None:
            started = time.perf_counter()
            data = self.hot.read_nowait(source, tile.offset, tile.count)  # a file's page cache, on the loop
            body = assemble_stored(source, tile, data) if data is not None else None
            if body is not None:  # kept and counted as a render's result is
                ready = self._ready(key, body, plan.format, version, identifier)
                outcome = "passthrough"
                metrics.render_time(outcome, time.perf_counter() - started)
        if ready is None:

            async def render() -> tuple[Ready, str]:
                started = time.perf_counter()
                result, stored = await self.run(process_traced, source, plan, self.encoding)
                outcome = "passthrough" if stored else "decoded"
                metrics.render_time(outcome, time.perf_counter() - started)
                return self._ready(key, result, plan.format, version, identifier), outcome

            ready, outcome = await self.renders.run(key, render)
        observe.note_outcome(outcome)
        if gate is None:  # public: the next identical URL is answered by `answer_hit`
            self.cache.put((source.path, source.stamp, version, *params), ready)
        link = ready.link_head + self.base_url(request) + ready.link_tail
        headers = {"Cache-Control": self.public_cache, "Link": link}
        if gate is not None:
            headers.update(RESTRICTED_HEADERS)
        return self._conditional(request, ready.body, FORMATS[plan.format], headers, etag=ready.etag)

    def _ready(self, key: tuple[Any, tuple[int, int], str], body: bytes, fmt: str, version: int,
               identifier: str) -> Ready:
        """A rendered (or stored) image as the cache keeps it, its header values computed once."""
        _, stamp, canonical = key
        media = FORMATS[fmt]
        ready = Ready(body, media.encode(), image_etag(stamp, canonical, media), profile_head(version),
                      canonical_tail(version, identifier, canonical))
        self.cache.put(key, ready)
        return ready

    @staticmethod
    def _conditional(request: Request, body: bytes, media: str, headers: dict[str, str],
                     etag: str | None = None) -> Response:
        """`etag`: computed by the caller (an image's names its file stamp and canonical request), else a
        hash of the body."""
        # the media type is part of the representation: info.json comes as two
        if etag is None:
            etag = '"' + hashlib.blake2b(media.encode() + b"\0" + body, digest_size=12).hexdigest() + '"'
        headers = {**headers, "ETag": etag}
        if etag_matches(etag, request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            return Response(b"", media_type=media, headers={**headers, "Content-Length": str(len(body))})
        return Response(body, media_type=media, headers=headers)
