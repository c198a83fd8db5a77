"""The runtime every HTTP service shares, built once per process before any of them (web/app.py).

Two thread pools (pixel work; file-system and catalogue work, kept apart so that slow renders never
hold up cheap requests), the base URL a request's documents are addressed from, the trusted proxies
and allowed hosts that URL depends on, and the signing secret, read once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from iiif_server.config import Settings
from iiif_server.errors import IIIFServerError
from iiif_server.runtime.addresses import in_any, parse_address, trusted_proxies
from iiif_server.runtime.hosts import AllowedHosts

FORWARDED_PROTOS = ("http", "https")


def load_secret(secret: str | None, secret_file: Path | None, data_dir: Path) -> str:
    """The signing key: given, read from a file, or created once in the data directory."""
    if secret:
        return secret
    path = secret_file or data_dir / "secret.key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"the key in {path} is shorter than 32 characters")
        return key
    if secret_file is not None:
        raise FileNotFoundError(f"secret key file {path} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(tmp, path)  # never replaces a key another process wrote first
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ThreadPoolExecutor(settings.thread_count, thread_name_prefix="iiif-image")
        self.io_pool = ThreadPoolExecutor(min(32, max(4, settings.thread_count)), thread_name_prefix="iiif-io")
        self.proxies = trusted_proxies(settings)
        self.hosts = AllowedHosts(settings.allowed_hosts, settings.base_url)
        self.base = settings.base_url.rstrip("/") if settings.base_url else ""
        self.secret = load_secret(settings.secret_key, settings.secret_key_file, settings.data_dir)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Pixel work (decode, scale, encode) in the image pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """File-system and catalogue work, kept apart from slow pixel work."""
        return await asyncio.get_running_loop().run_in_executor(self.io_pool, fn, *args)

    def limited(self, slots: int, wait: float) -> Callable[..., Awaitable[Any]]:
        """`run_io` for work whose cost a client chooses (searches): at most `slots` at once in this process, so
        that it never takes the I/O pool from tiles and pages; a request that waits longer than `wait` seconds
        for a slot is answered 503 with Retry-After."""
        gate = asyncio.Semaphore(slots)

        async def run(fn: Callable[..., Any], *args: Any) -> Any:
            try:
                await asyncio.wait_for(gate.acquire(), wait)
            except TimeoutError:
                raise IIIFServerError("the server is busy with other searches: try again in a moment", 503,
                                      {"Retry-After": "2", "Cache-Control": "no-store"}) from None
            try:
                return await self.run_io(fn, *args)
            finally:
                gate.release()

        return run

    def base_url(self, request: Request) -> str:
        return self.base_of(request.scope, request.headers.get)

    def base_of(self, scope: Scope, header: Callable[[str], str | None]) -> str:
        """The URL the client used up to the path: the configured base URL, else the request's scheme and
        Host (a trusted proxy's X-Forwarded-Proto and -Host). `header`: a request header by lower-case name."""
        if self.base:
            return self.base
        scheme = scope.get("scheme", "http")
        host = self.hosts.normal(header("host") or "", scope.get("server")) or "localhost"
        if self.proxies and self.from_trusted_proxy(scope):
            proto = (header("x-forwarded-proto") or "").split(",")[0].strip().lower()
            scheme = proto if proto in FORWARDED_PROTOS else scheme
            host = self.hosts.forwarded(header("x-forwarded-host") or "") or host
        return f"{scheme}://{host}"

    def from_trusted_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.proxies or not client:
            return False
        peer = parse_address(client[0])
        return peer is not None and in_any(peer, self.proxies)

    def shutdown(self) -> None:
        """Let the pools' threads go (tests build many apps in one process)."""
        self.pool.shutdown(wait=False)
        self.io_pool.shutdown(wait=False)
