"""Which Host headers the server answers to.

Without a base URL the request's host becomes the ids, service URLs and redirects of what is
served; a forged one must never get that far (nor into a shared cache keyed on the path alone).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from iiif_server.runtime.addresses import IPNetwork, in_any, parse_address

LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def split_host(value: str) -> tuple[str, str | None]:
    """`name[:port]` -> (lower-case name, port or None); IPv6 literals keep their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[: end + 1], value[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else None
    name, sep, port = value.rpartition(":")
    return (name, port) if sep and port.isdigit() else (value, None)


class AllowedHosts:
    """`allowed`: names (any port) or name:port; empty: with a base URL any host (it is not used), else
    loopback names and the address the client connected to."""

    def __init__(self, allowed: Sequence[str], base_url: str | None) -> None:
        self.names: set[str] = set()
        self.exact: set[tuple[str, str]] = set()
        for entry in allowed:
            name, port = split_host(entry)
            if port is None:
                self.names.add(name)
            else:
                self.exact.add((name, port))
        self.default = not allowed
        # with a base URL and no list, the Host reaches nothing served: a proxy may send any
        self.any = self.default and bool(base_url)
        if self.default:
            self.names |= LOOPBACK

    def allows(self, host: str, server: tuple[str, int | None] | None) -> bool:
        if self.any:
            return True
        name, port = split_host(host)
        if not name or any(c in name for c in "/\\@?#% \t"):
            return False
        if name in self.names or (port is not None and (name, port) in self.exact):
            return True
        if self.default and server is not None:
            connected = str(server[0]).lower()
            return name in (connected, f"[{connected}]")
        return False

    def forwarded(self, value: str) -> str | None:
        """The host a trusted proxy forwards (X-Forwarded-Host), when the operator listed it; else None.

        A proxy passes a client's own X-Forwarded-Host on unless it sets one, so being a trusted proxy
        is not enough: without an --allowed-hosts list the forwarded host is ignored."""
        first = value.split(",")[0].strip()
        if self.default or not first or not self.allows(first, None):
            return None
        return first


class HostCheck:
    """400 for a request whose Host (or a trusted proxy's X-Forwarded-Host) is not allowed."""

    def __init__(self, app: ASGIApp, hosts: AllowedHosts, proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.hosts = hosts
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
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
