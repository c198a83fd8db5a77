"""The Image API over HTTP: route -> parse -> source -> process -> cache -> response.

The identifier travels percent-encoded (`%2F` for `/`), so the path is split
from the raw, undecoded request path and each part decoded on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..config import Settings
from .cache import MemoryCache
from .info import PROFILE_URI, info_document
from .pipeline import Encoding, process, writable_formats
from .request import FORMATS, Limits, RequestError, parse, resolve
from .sources import FileSystemSource, Source

LD_JSON = 'application/ld+json;profile="{}"'
IMAGE_MAX_AGE = "public, max-age=86400"


def error_response(exc: RequestError) -> Response:
    return PlainTextResponse(exc.message + "\n", status_code=exc.status)


class ImageService:
    """Everything the Image API needs, built once per process."""

    def __init__(self, settings: Settings, source: FileSystemSource) -> None:
        self.settings = settings
        self.source = source
        self.limits = Limits(settings.max_width, settings.max_height, settings.max_area)
        self.encoding = Encoding(jpeg_quality=settings.jpeg_quality)
        self.formats = writable_formats()
        self.cache = MemoryCache(settings.cache_mb * 1024 * 1024)
        self.pool = ThreadPoolExecutor(settings.thread_count, thread_name_prefix="iiif-image")
        self.proxies = settings.proxy_networks()
        self._inflight: dict[Any, asyncio.Future[bytes]] = {}

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def base_url(self, request: Request) -> str:
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/")
        scheme, host = request.url.scheme, request.headers.get("host", "localhost")
        if self._from_trusted_proxy(request):
            scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
            host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
        return f"{scheme}://{host}"

    def _from_trusted_proxy(self, request: Request) -> bool:
        if not self.proxies or request.client is None:
            return False
        try:
            peer = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
            peer = peer.ipv4_mapped
        return any(peer in net for net in self.proxies)

    def service_id(self, request: Request, version: int, identifier: str) -> str:
        return f"{self.base_url(request)}/iiif/{version}/{quote(identifier, safe='')}"

    async def open(self, identifier: str) -> Source:
        return await self.run(self.source.open, identifier)

    async def handle(self, request: Request, version: int) -> Response:
        raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
        rest = raw.split(f"/iiif/{version}/".encode(), 1)[-1]
        parts = [unquote(p.decode("latin-1"), errors="strict") for p in rest.split(b"/")]
        try:
            if len(parts) == 1:
                return await self.redirect(request, version, parts[0])
            if len(parts) == 2 and parts[1] == "info.json":
                return await self.info(request, version, parts[0])
            if len(parts) == 5:
                return await self.image(request, version, parts[0], parts[1:])
            raise RequestError("not an Image API URL; a '/' inside an identifier is sent as %2F", 404)
        except RequestError as exc:
            return error_response(exc)

    async def redirect(self, request: Request, version: int, identifier: str) -> Response:
        await self.open(identifier)  # 404 for an unknown identifier
        return RedirectResponse(self.service_id(request, version, identifier) + "/info.json", status_code=303)

    async def info(self, request: Request, version: int, identifier: str) -> Response:
        source = await self.open(identifier)
        doc = info_document(source, self.service_id(request, version, identifier), version, self.limits, self.formats)
        body = json.dumps(doc, separators=(",", ":")).encode()
        accept = request.headers.get("accept", "")
        media = LD_JSON.format(doc["@context"]) if "application/ld+json" in accept else "application/json"
        headers = {"Cache-Control": IMAGE_MAX_AGE, "Vary": "Accept", "Link": f'<{PROFILE_URI[version]}>;rel="profile"'}
        return self._conditional(request, body, media, headers)

    async def image(self, request: Request, version: int, identifier: str, params: list[str]) -> Response:
        parsed = parse(version, *params)
        if parsed.format not in self.formats:
            raise RequestError(f"format {parsed.format!r} is not supported by this server", 501)
        source = await self.open(identifier)
        plan = resolve(parsed, source.width, source.height, self.limits)
        canonical = plan.canonical(version, source.width, source.height, self.limits)
        key = (source.path, source.stamp, canonical)
        body = self.cache.get(key)
        if body is None:
            body = await self._once(key, lambda: self.run(process, source, plan, self.encoding))
            self.cache.put(key, body)
        base = self.service_id(request, version, identifier)
        headers = {
            "Cache-Control": IMAGE_MAX_AGE,
            "Link": f'<{PROFILE_URI[version]}>;rel="profile", <{base}/{canonical}>;rel="canonical"',
        }
        return self._conditional(request, body, FORMATS[plan.format], headers)

    async def _once(self, key: Any, work: Callable[[], Awaitable[bytes]]) -> bytes:
        """Run `work` once for concurrent requests of the same key."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            del self._inflight[key]

    @staticmethod
    def _conditional(request: Request, body: bytes, media: str, headers: dict[str, str]) -> Response:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        headers = {**headers, "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)
