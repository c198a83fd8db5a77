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
from urllib.parse import quote, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import Scope

from iiif_server.auth.policy import Access, Verdict, collection_of
from iiif_server.errors import RequestError
from iiif_server.runtime import metrics, observe
from iiif_server.runtime.base import Runtime
from iiif_server.runtime.singleflight import SingleFlight
from iiif_server.tiles import placeholder
from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.hot import Opened, OpenSources, open_checked
from iiif_server.tiles.info import PROFILE_URI, info_document
from iiif_server.tiles.pipeline import (
    Encoding,
    StoredTile,
    assemble_stored,
    from_stored,
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

RESTRICTED_HEADERS = {"Cache-Control": "private, max-age=0", "Vary": "Accept, Authorization, Cookie"}
REFUSED_HEADERS = {"Cache-Control": "private, no-store", "Vary": "Accept, Authorization, Cookie"}
DENIED = {
    Verdict.LOGIN: "this image is restricted: sign in or use the reading room",
    Verdict.DENY: "your access does not cover this image",
}
LD_JSON = 'application/ld+json;profile="{}"'
MAX_ERROR_TEXT = 200
log = logging.getLogger("iiif_server")


class AccessRefused(RequestError):
    """401/403 for restricted material: the answer depends on the credentials, so never stored."""


def error_response(exc: RequestError, private_404: bool = False) -> Response:
    """A short plain-text reason; messages may quote (long, hostile) request text.

    `private_404`: "not found" depends on clearance (hidden material answers it too), so never stored."""
    text = exc.message if len(exc.message) <= MAX_ERROR_TEXT else exc.message[: MAX_ERROR_TEXT - 3] + "..."
    headers = {"X-Content-Type-Options": "nosniff"}
    if isinstance(exc, AccessRefused) or (private_404 and exc.status == 404):
        headers.update(REFUSED_HEADERS)
    return PlainTextResponse(text + "\n", status_code=exc.status, headers=headers)


def wants_image(request: Request) -> bool:
    """A browser's image load (an <img>, a tile) rather than a script or a client asking for anything:
    browsers name image types before */* in Accept."""
    accept = request.headers.get("accept", "").lower()
    return accept.startswith("image/")


def within_degraded_limit(plan: Plan, full_w: int, full_h: int, limit: int) -> bool:
    """Whether a request shows no more detail than the whole image at `limit` px on its longer side.

    The scale counts, not the output size: a small output of a small region at full
    resolution is full-resolution detail, and tiles of those would rebuild the master.
    """
    scale = max(plan.out_w / plan.w, plan.out_h / plan.h)
    return max(full_w, full_h) * scale <= limit + 0.5  # half a pixel for the rounding of sizes


def decode_segment(segment: bytes) -> str:
    """One percent-encoded path segment as text; RequestError if it is not UTF-8."""
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError("the URL path is not valid percent-encoded UTF-8") from exc


def etag_matches(etag: str, if_none_match: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2) of an ETag with an If-None-Match list."""
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip() for t in if_none_match.split(","))
    return etag in (t[2:] if t.startswith("W/") else t for t in tags)


def process_traced(source: Source, plan: Plan, enc: Encoding) -> tuple[bytes, bool]:
    """`process`, and whether it sent a stored tile as stored (in the same worker thread)."""
    body = process(source, plan, enc)
    return body, was_passthrough()


LOOP_TILE_PIXELS = 512 * 512  # stored tiles up to this size may be decoded on the event loop (edge tiles)
READY_OVERHEAD = 512  # bytes a cached response costs besides its body (header values, key, objects)


@dataclass(frozen=True, slots=True)
class Ready:
    """An image response as the cache keeps it: the body and its header values, computed once.

    The Link header is `link_head + base URL + link_tail`: the base URL depends on the request."""

    body: bytes
    media: bytes
    etag: str
    link_head: str
    link_tail: str
    length: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", str(len(self.body)).encode())

    def __len__(self) -> int:
        return len(self.body) + READY_OVERHEAD


@dataclass(frozen=True, slots=True)
class Hit:
    """A request the hit path answers: the stored response, its Link header, how it was made."""

    ready: Ready
    link: str
    outcome: str  # cache_hit or passthrough or decoded
    identifier: str
    host: str | None  # the Host header, for the host check outside


@dataclass(frozen=True, slots=True)
class Spelling:
    """What one image URL of public material resolves to, short of its pixels."""

    key: tuple[Any, tuple[int, int], str]  # the response cache's key: file, stamp, canonical request
    plan: Plan
    tile: StoredTile | None  # the stored tile it names exactly, if any
    media: bytes
    etag: str
    link_head: str
    link_tail: str


SPELLING_BYTES = 600  # what one remembered URL costs (its key, plan and header values)
SPELLINGS_BUDGET = 4 << 20  # per worker process: some 7,000 URLs


def image_etag(stamp: tuple[int, int], canonical: str, media: str) -> str:
    """Names the content (the file's stamp and the canonical request): no hash of the body."""
    validator = f"{stamp[0]}:{stamp[1]}:{canonical}".encode()
    return '"' + hashlib.blake2b(media.encode() + b"\0" + validator, digest_size=12).hexdigest() + '"'


def profile_head(version: int) -> str:
    """The Link header up to the base URL: the profile, then the canonical link's opening."""
    return f'<{PROFILE_URI[version]}>;rel="profile", <'


def canonical_tail(version: int, identifier: str, canonical: str) -> str:
    return f"/iiif/{version}/{quote(identifier, safe='')}/{canonical}>;rel=\"canonical\""


@dataclass(frozen=True)
class Gate:
    tier: str
    access: Access
    verdict: Verdict


class ImageService:
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
            doc["service"] = self.auth.descriptions(self.base_url(request), identifier, gate.access, gate.tier)
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

    def _stored_on_loop(self, source: Source, version: int, identifier: str,
                        params: list[str]) -> tuple[Ready, str] | None:
        """Another spelling of a cached request, or a public request for exactly one stored tile whose bytes
        are in the page cache, answered as the full path answers it (same parse, plan and canonical form),
        with its outcome; None for anything else.

        What a URL resolves to (its canonical key, the stored tile, the header values) is remembered in
        `spellings`: the next request for it is a lookup, a read and a send. No pixels are kept there."""
        url = (source.path, source.stamp, version, *params)
        spelling: Spelling | None = self.spellings.get(url)
        if spelling is None:
            spelling = self._spell(source, version, identifier, params)
            if spelling is None:
                return None
            self.spellings.put(url, spelling)
        ready: Ready | None = self.cache.get(spelling.key)
        if ready is not None:
            self.cache.put(url, ready)
            return ready, "cache_hit"
        started = time.perf_counter()
        tile = spelling.tile
        if tile is not None:
            data = self.hot.read_nowait(source, tile.offset, tile.count)
            body = assemble_stored(source, tile, data) if data is not None else None
            outcome = "passthrough"
        elif source.tile_width * source.tile_height <= LOOP_TILE_PIXELS:
            # an edge tile: a quarter of a millisecond of decoding and encoding here, against ~10 ms of
            # waiting for the GIL in a pool thread while this loop serves stored tiles
            body = from_stored(source, spelling.plan, self.encoding, self._read_nowait, one_tile=True)
            outcome = "decoded"
        else:
            return None
        if body is None:
            return None
        ready = Ready(body, spelling.media, spelling.etag, spelling.link_head, spelling.link_tail)
        self.cache.put(spelling.key, ready)
        metrics.render_time(outcome, time.perf_counter() - started)
        self.cache.put(url, ready)
        return ready, outcome

    def _spell(self, source: Source, version: int, identifier: str, params: list[str]) -> Spelling | None:
        """What an image URL of public material resolves to; None where the full path must say why not."""
        try:
            parsed = parse(version, *params)
            if parsed.format not in self.formats:
                return None
            plan = resolve(parsed, source.width, source.height, self.limits)
        except RequestError:
            return None
        canonical = plan.canonical(version, source.width, source.height, self.limits)
        key = (source.path, source.stamp, canonical)
        media = FORMATS[plan.format]
        tile = locate_stored(source, plan, self.encoding.jpeg_quality)
        return Spelling(key, plan, tile, media.encode(), image_etag(source.stamp, canonical, media),
                        profile_head(version), canonical_tail(version, identifier, canonical))

    def _read_nowait(self, source: Source, tile: StoredTile) -> bytes | None:
        return self.hot.read_nowait(source, tile.offset, tile.count)

    async def find_hit(self, scope: Scope) -> Hit | None:
        """A GET of public material answered from the response cache, or a stored tile already in the page
        cache, without Starlette's request machinery, thread hops or header building; None where the full
        path must answer (anything else: restricted material, a source not current in the hot memo,
        conditional and HEAD requests, proxied requests, errors, renders).

        The access decision is the full path's: material whose tier is restricted never gets here, and
        what is cached under a request's own URL was stored only for public material."""
        if scope["method"] != "GET":
            return None
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        raw = raw.split(b"?", 1)[0]
        root = scope.get("root_path", "")
        if root and raw.startswith(root.encode()):
            raw = raw[len(root) :]
        if raw.startswith(b"/iiif/3/"):
            version = 3
        elif raw.startswith(b"/iiif/2/"):
            version = 2
        else:
            return None
        parts = raw[8:].split(b"/")
        if len(parts) != 5:
            return None
        host = forwarded = forwarded_host = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                return None
            if name == b"host":
                host = value
            elif name.startswith(b"x-forwarded-"):
                forwarded = True
                forwarded_host = forwarded_host or name == b"x-forwarded-host"
        if self.runtime.proxies and (forwarded_host or (forwarded and not self.runtime.base)):
            return None  # the base URL or the host check reads a proxy's headers: the full path does
        try:  # decode_segment's result, sparing unquote where nothing is quoted
            identifier, *params = (p.decode() if b"%" not in p else decode_segment(p) for p in parts)
        except (RequestError, UnicodeDecodeError):
            return None
        if self.auth is not None:
            policy = self.auth.policy
            await policy.fresh(self.run_io)
            if policy.restricted(policy.tier_of(identifier)):
                return None
        opened = self.hot.get(identifier)
        if opened is None:
            return None
        source = opened.source
        outcome = "cache_hit"
        ready: Ready | None = self.cache.get((source.path, source.stamp, version, *params))
        if ready is None:
            found = self._stored_on_loop(source, version, identifier, params)
            if found is None:
                return None
            ready, outcome = found
        text_host = host.decode("latin-1") if host else None
        base = self.runtime.base or f"{scope.get('scheme', 'http')}://{text_host or 'localhost'}"
        return Hit(ready, ready.link_head + base + ready.link_tail, outcome, identifier, text_host)

    def hit_headers(self, hit: Hit) -> list[tuple[bytes, bytes]]:
        """The full path's headers of a public image, CORS aside."""
        ready = hit.ready
        return [
            (b"cache-control", self.public_cache_header),
            (b"link", hit.link.encode()),
            (b"etag", ready.etag.encode()),
            (b"content-length", ready.length),
            (b"content-type", ready.media),
        ]

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
