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
TRUSTED_MEMO = 256  # peers whose trust is remembered, per process
BASES_MEMO = 1024  # (Host, forwarded headers, peer) -> base URL, remembered per process


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
        self._trusted: dict[str, bool] = {}  # peer address -> whether it is a trusted proxy
        self._bases: dict[tuple[Any, ...], object] = {}  # see hit_base
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
        host = self.hosts.normal(header("host") or "", scope.get("server"))
        if self.proxies and self.from_trusted_proxy(scope):
            return self._base(scope, host, header("x-forwarded-proto"), header("x-forwarded-host"))
        return self._base(scope, host, None, None)

    def hit_base(self, scope: Scope, host: bytes | None, forwarded_host: bytes | None,
                 forwarded_proto: bytes | None) -> str | None:
        """`base_of` for the hit path, which answers ahead of the host check (runtime/hosts.py) and so does it
        too: None where that check refuses the request (the full path then says why). The headers' raw values.
        Remembered per process: a site has few names, and parsing them cost more than a tile's lookup."""
        client = scope.get("client") if forwarded_host or forwarded_proto else None  # the peer counts only then
        key = (host, forwarded_host, forwarded_proto, client[0] if client else None, scope.get("server"),
               scope.get("scheme"))
        found = self._bases.get(key, self)
        if found is self:
            if len(self._bases) >= BASES_MEMO:
                self._bases.clear()
            found = self._bases[key] = self._hit_base(scope, host, forwarded_host, forwarded_proto)
        return found  # type: ignore[return-value]

    def _hit_base(self, scope: Scope, host: bytes | None, forwarded_host: bytes | None,
                  forwarded_proto: bytes | None) -> str | None:
        shown = None
        if host:
            shown = self.hosts.normal(host.decode("latin-1"), scope.get("server"))
            if shown is None:
                return None
        if not (forwarded_host or forwarded_proto) or not self.from_trusted_proxy(scope):
            return self.base or self._base(scope, shown, None, None)
        forwarded = forwarded_host.decode("latin-1") if forwarded_host else None
        if forwarded and not self.hosts.default:
            first = forwarded.split(",")[0].strip()
            if first and not self.hosts.allows(first, None):
                return None
        proto = forwarded_proto.decode("latin-1") if forwarded_proto else None
        return self.base or self._base(scope, shown, proto, forwarded)

    def _base(self, scope: Scope, shown: str | None, proto: str | None, forwarded_host: str | None) -> str:
        """Scheme and host: the request's, or what a trusted proxy forwards (`proto`, `forwarded_host`)."""
        scheme = scope.get("scheme", "http")
        if proto:
            proto = proto.split(",")[0].strip().lower()
            scheme = proto if proto in FORWARDED_PROTOS else scheme
        host = (self.hosts.forwarded(forwarded_host) if forwarded_host else None) or shown or "localhost"
        return f"{scheme}://{host}"

    def from_trusted_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.proxies or not client:
            return False
        known = self._trusted.get(client[0])
        if known is None:  # a proxy's few addresses, remembered: parsing one costs more than the rest of a hit
            peer = parse_address(client[0])
            known = peer is not None and in_any(peer, self.proxies)
            if len(self._trusted) >= TRUSTED_MEMO:
                self._trusted.clear()
            self._trusted[client[0]] = known
        return known

    def shutdown(self) -> None:
        """Let the pools' threads go (tests build many apps in one process)."""
        self.pool.shutdown(wait=False)
        self.io_pool.shutdown(wait=False)
