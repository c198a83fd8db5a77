"""Which Host headers the server answers to.

Without a base URL the request's host becomes the ids, service URLs and redirects of what is
served; a forged one must never get that far (nor into a shared cache keyed on the path alone).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from iiif_server.runtime.addresses import IPNetwork, in_any, parse_address

LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
DEFAULT_PORTS = frozenset({"80", "443"})
# RFC 3986 authority without userinfo: an IP literal, an IPv4 address or a registered name, then a port
_AUTHORITY = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
                        r"(?::([0-9]{1,5}))?")


def split_host(value: str) -> tuple[str, str | None] | None:
    """`name[:port]` -> (lower-case name, port or None), IPv6 literals in brackets; None for anything that is
    not an RFC 3986 authority without userinfo (`[::1]@evil.example`, `[::1].evil`, `a/b`, `a:b:c` ...)."""
    match = _AUTHORITY.fullmatch(value.strip().lower())
    if match is None:
        return None
    name, port = match.group(1), match.group(2)
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
    if port is not None and int(port) > 65535:
        return None
    return name, port


class AllowedHosts:
    """`allowed`: names (with no port, or a default one: 80, 443) or name:port; empty: with a base URL any host
    (it is not used), else loopback names and the address the client connected to, on any port."""

    def __init__(self, allowed: Sequence[str], base_url: str | None) -> None:
        self.names: set[str] = set()
        self.exact: set[tuple[str, str]] = set()
        for entry in allowed:
            parsed = split_host(entry)
            if parsed is None:
                raise ValueError(f"allowed host {entry!r} is not a host name or address with an optional port")
            name, port = parsed
            if port is None:
                self.names.add(name)
            else:
                self.exact.add((name, port))
        self.default = not allowed
        # with a base URL and no list, the Host reaches nothing served: a proxy may send any
        self.any = self.default and bool(base_url)
        if self.default:
            self.names |= LOOPBACK

    def normal(self, host: str, server: tuple[str, int | None] | None) -> str | None:
        """The host as it may appear in what is served (lower case, a default port dropped), or None when the
        server does not answer to it. With a base URL and no list, any well-formed host (it is used nowhere)."""
        parsed = split_host(host)
        if parsed is None:
            return None
        name, port = parsed
        shown = name if port is None or port in DEFAULT_PORTS else f"{name}:{port}"
        if self.any:
            return shown
        if (port is not None and (name, port) in self.exact) or (
                name in self.names and (self.default or port is None or port in DEFAULT_PORTS)):
            return shown
        if self.default and server is not None:
            connected = str(server[0]).lower()
            return shown if name in (connected, f"[{connected}]") else None
        return None

    def allows(self, host: str, server: tuple[str, int | None] | None) -> bool:
        return self.normal(host, server) is not None

    def forwarded(self, value: str) -> str | None:
        """The host a trusted proxy forwards (X-Forwarded-Host), when the operator listed it; else None.

        A proxy passes a client's own X-Forwarded-Host on unless it sets one, so being a trusted proxy
        is not enough: without an --allowed-hosts list the forwarded host is ignored."""
        first = value.split(",")[0].strip()
        if self.default or not first:
            return None
        return self.normal(first, None)


class HostCheck:
    """400 for a request whose Host (or a trusted proxy's X-Forwarded-Host) is not allowed (/healthz excepted)."""

    def __init__(self, app: ASGIApp, hosts: AllowedHosts, proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.hosts = hosts
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # /healthz names no host: an orchestrator's probe, sent to the replica's own address, is answered
        if scope["type"] == "http" and scope["path"] != "/healthz":
            host, forwarded = "", None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
                elif name == b"x-forwarded-host":
                    forwarded = value.decode("latin-1")
            ok = not host or self.hosts.allows(host, scope.get("server"))  # no Host: nothing forged
            if ok and forwarded and not self.hosts.default and self._from_proxy(scope):
                first = forwarded.split(",")[0].strip()
                ok = not first or self.hosts.allows(first, None)
            if not ok:
                response = PlainTextResponse("unknown host: set --allowed-hosts or --base-url\n", status_code=400,
                                             headers={"Cache-Control": "no-store"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _from_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        peer = parse_address(client[0]) if client else None
        return peer is not None and in_any(peer, self.proxies)
