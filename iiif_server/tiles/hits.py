"""The hit path: public images answered from the response cache, or from a stored tile already in the page
cache, on the event loop, without Starlette's request machinery, thread hops or header building; and
other public images of a file already open rendered in the image threads, without Starlette either.

Mixed into `ImageService` (service.py), whose caches, memo and access policy it reads; the full path there
answers everything else, and decides access for all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from iiif_server.errors import RequestError
from iiif_server.runtime import metrics
from iiif_server.runtime.base import Runtime
from iiif_server.runtime.singleflight import SingleFlight
from iiif_server.tiles.answers import Ready, canonical_tail, decode_segment, image_etag, profile_head
from iiif_server.tiles.cache import MemoryCache
from iiif_server.tiles.hot import OpenSources, open_checked
from iiif_server.tiles.pipeline import (
    Encoding,
    StoredTile,
    assemble_stored,
    from_stored,
    locate_stored,
)
from iiif_server.tiles.request import FORMATS, Limits, Plan, parse, resolve
from iiif_server.tiles.sources import Source, SourceStore

if TYPE_CHECKING:
    from iiif_server.auth.services import AuthServices


# a request whose stored tiles hold up to this many pixels (and no larger an output) is made on the event loop:
# up to 2 ms of decoding, scaling and encoding (nine 256 x 256 tiles: any thumbnail up to !400,400 of a
# portrait scan), spared the ~0.2 ms of CPU that handing it to an image thread and back costs
LOOP_DECODE_PIXELS = 600_000


@dataclass(frozen=True, slots=True)
class Hit:
    """A request the hit path answers: the stored response, its Link header, how it was made."""

    ready: Ready
    link: str
    outcome: str  # cache_hit or passthrough or decoded
    identifier: str


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


URLS_REMEMBERED = 4096  # image URLs (and Host headers) whose parts are remembered per worker, then forgotten at once
URL_BYTES_REMEMBERED = 512  # longer ones are parsed every time: at most 2 MiB remembered


def _named(raw: bytes) -> tuple[int, str, tuple[str, ...]] | tuple[()] | None:
    """An image URL's version, identifier and four parameters, decoded; () for one the hit path leaves to the full
    path (kept, so the next is a lookup too); None for anything else (not kept: any path may be asked)."""
    if raw.startswith(b"/iiif/3/"):
        version = 3
    elif raw.startswith(b"/iiif/2/"):
        version = 2
    else:
        return None
    parts = raw[8:].split(b"/")
    if len(parts) != 5:
        return None
    try:  # decode_segment's result, sparing unquote where nothing is quoted
        identifier, *params = (p.decode() if b"%" not in p else decode_segment(p) for p in parts)
    except (RequestError, UnicodeDecodeError):
        return ()
    return version, identifier, tuple(params)


class HitPath:
    """The hit path's part of `ImageService` (which provides the attributes below)."""

    cache: MemoryCache
    spellings: MemoryCache
    hot: OpenSources
    source: SourceStore
    urls: dict[bytes, tuple[int, str, tuple[str, ...]] | tuple[()]]  # raw path -> `_named`
    encoding: Encoding
    formats: Any
    limits: Limits
    runtime: Runtime
    auth: AuthServices | None
    public_cache_header: bytes
    run_io: Any
    run: Any
    renders: SingleFlight[Any]
    process_traced: Any  # (source, plan, encoding) -> (body, sent as stored): the full path's render

    async def _stored_on_loop(self, source: Source, version: int, identifier: str,
                              params: tuple[str, ...]) -> tuple[Ready, str] | None:
        """Another spelling of a cached request, a public request for exactly one stored tile whose bytes
        are in the page cache, or any other public image request (rendered in the image threads), answered
        as the full path answers it (same parse, plan, canonical form and single-flight renders), with its
        outcome; None where the full path must answer (errors, formats this server lacks).

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
        elif spelling.plan.out_w * spelling.plan.out_h <= LOOP_DECODE_PIXELS:
            # a thumbnail, an edge tile: a pool thread would also wait ~10 ms for the GIL while this loop
            # serves stored tiles; None where the tiles are not all in the page cache or too many
            try:
                body = from_stored(source, spelling.plan, self.encoding, self._read_nowait, LOOP_DECODE_PIXELS)
            except Exception:  # noqa: BLE001 - a damaged tile: the full path renders again, and says what went wrong
                return None
            outcome = "decoded"
        else:
            body = None
        if body is None:
            # a region, a large thumbnail: rendered here rather than after Starlette's routing and a second parse,
            # which cost as much as the render itself on a small thumbnail
            found = await self._render(source, spelling)
            if found is not None:
                self.cache.put(url, found[0])
            return found
        ready = Ready(body, spelling.media, spelling.etag, spelling.link_head, spelling.link_tail)
        self.cache.put(spelling.key, ready)
        metrics.render_time(outcome, time.perf_counter() - started)
        self.cache.put(url, ready)
        return ready, outcome

    async def _render(self, source: Source, spelling: Spelling) -> tuple[Ready, str] | None:
        """A render in the image threads, shared with identical requests of either path; None on an error
        (the full path renders again, and says what went wrong)."""

        async def render() -> tuple[Ready, str]:
            started = time.perf_counter()
            body, stored = await self.run(self.process_traced, source, spelling.plan, self.encoding)
            outcome = "passthrough" if stored else "decoded"
            metrics.render_time(outcome, time.perf_counter() - started)
            ready = Ready(body, spelling.media, spelling.etag, spelling.link_head, spelling.link_tail)
            self.cache.put(spelling.key, ready)
            return ready, outcome

        try:
            found: tuple[Ready, str] = await self.renders.run(spelling.key, render)
        except Exception:  # noqa: BLE001 - the full path renders again, answers and logs what went wrong
            return None
        return found

    def _spell(self, source: Source, version: int, identifier: str, params: tuple[str, ...]) -> Spelling | None:
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
        """A GET of public material answered from the response cache, a stored tile already in the page
        cache, or a render in the image threads, without Starlette's request machinery or header building;
        None where the full path must answer (anything else: restricted material, a source not current in
        the hot memo, conditional and HEAD requests, errors).

        The access decision is the full path's: material whose tier is restricted never gets here, and
        what is cached under a request's own URL was stored only for public material."""
        if scope["method"] != "GET":
            return None
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        raw = raw.split(b"?", 1)[0]
        root = scope.get("root_path", "")
        if root and raw.startswith(root.encode()):
            raw = raw[len(root) :]
        named = self.urls.get(raw)
        if named is None:
            named = _named(raw)
            if named is None:
                return None
            if len(raw) <= URL_BYTES_REMEMBERED:
                if len(self.urls) >= URLS_REMEMBERED:
                    self.urls.clear()
                self.urls[raw] = named
        host = forwarded_host = forwarded_proto = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                return None
            if name == b"host":
                host = value
            elif name == b"x-forwarded-host":
                forwarded_host = forwarded_host or value
            elif name == b"x-forwarded-proto":
                forwarded_proto = forwarded_proto or value
        if not named:
            return None  # not an image URL the hit path answers
        # the host check and the base URL, a trusted proxy's headers read as the full path reads them
        base = self.runtime.hit_base(scope, host, forwarded_host, forwarded_proto)
        if base is None:
            return None  # a host the server does not answer to: the full path's 400
        version, identifier, params = named
        if self.auth is not None:
            policy = self.auth.policy
            await policy.fresh(self.run_io)
            if policy.restricted(policy.tier_of(identifier)):
                return None
        opened = self.hot.get(identifier)
        if opened is None:
            if not self.hot.due(identifier):
                return None
            try:  # the second's full lookup, as the full path would make it (in the I/O pool)
                opened = await self.run_io(open_checked, self.source, identifier)
            except Exception:  # noqa: BLE001 - the full path looks again, and says what went wrong
                return None
            self.hot.put(identifier, opened)
        source = opened.source
        outcome = "cache_hit"
        ready: Ready | None = self.cache.get((source.path, source.stamp, version, *params))
        if ready is None:
            found = await self._stored_on_loop(source, version, identifier, params)
            if found is None:
                return None
            ready, outcome = found
        return Hit(ready, ready.link_head + base + ready.link_tail, outcome, identifier)

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
