"""Who is asking, by address: the client's address, through trusted proxies only.

A proxy's forwarding headers (`Forwarded`, `X-Forwarded-For`) are read only when the direct peer is
one of the trusted proxies, listed by their own addresses (or counted in hops); anything a client
writes to the left of what they add is never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from iiif_server.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Proxies:
    """The reverse proxies whose forwarding headers are read, and how they are read.

    `hops` 0: each proxy is listed by its own address, and the chain is walked from the right past them.
    `hops` N: exactly N proxies stand in front (their addresses may vary within the listed ranges): the
    client is the N-th address from the right, whatever a client wrote to its left."""

    networks: tuple[IPNetwork, ...] = ()
    hops: int = 0

    def __iter__(self) -> Iterator[IPNetwork]:
        return iter(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def parse_address(text: str) -> IPAddress | None:
    """An address from a header or the socket; IPv4-mapped IPv6 counts as IPv4."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_any(addr: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def forwarded_for(header: str) -> list[str]:
    """The `for=` addresses of an RFC 7239 `Forwarded` header, in order."""
    out = []
    for element in header.split(","):
        for pair in element.split(";"):
            key, _, value = pair.strip().partition("=")
            if key.lower() == "for" and value:
                out.append(value)
    return out


def _walk(chain: Sequence[str], addr: IPAddress, proxies: Sequence[IPNetwork]) -> IPAddress:
    """Right to left through a forwarding chain: the first hop that is not a trusted proxy."""
    for hop in reversed(chain):
        hop_addr = parse_address(hop)
        if hop_addr is None:
            return addr  # a garbled chain: trust nothing beyond the proxy itself
        if not in_any(hop_addr, proxies):
            return hop_addr
        addr = hop_addr
    return addr


def _counted(chain: Sequence[str], hops: int) -> IPAddress | None:
    """The address `hops` places from the right: the one the outermost proxy wrote."""
    return parse_address(chain[-hops]) if len(chain) >= hops else None


def client_address(peer: str | None, headers: dict[str, str], proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    address in the forwarding chain that is not itself a trusted proxy (or, with a hop count,
    the address that many places from the right: see `Proxies`).

    A proxy writes one of `Forwarded` and `X-Forwarded-For` and passes the other on as
    the client sent it; which one is the proxy's cannot be told. So when both are
    present they must name the same client, or the client is unknown (None).
    """
    addr = parse_address(peer) if peer else None
    if addr is None or not proxies or not in_any(addr, proxies):
        return addr
    chains = [forwarded_for(headers.get("forwarded", "")),
              [part for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]]
    hops = getattr(proxies, "hops", 0)
    if hops:
        found = {_counted(chain, hops) for chain in chains if chain} or {None}
    else:
        found = {_walk(chain, addr, proxies) for chain in chains if chain} or {addr}
    return found.pop() if len(found) == 1 else None


def trusted_proxies(settings: Settings) -> Proxies:
    return Proxies(tuple(ipaddress.ip_network(cidr, strict=False) for cidr in settings.trusted_proxies),
                   settings.proxy_hops)
