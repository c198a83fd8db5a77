"""Who is asking, by network: the client's address (runtime/addresses.py) -> the tier of its network."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from iiif_server.runtime.addresses import IPAddress, IPNetwork, in_any


class NetworkRules:
    """CIDR lists per tier; an address gets the highest tier whose ranges hold it."""

    def __init__(self, rules: dict[str, list[IPNetwork]], order: Sequence[str]) -> None:
        self.rules = rules
        self.order = list(order)

    @classmethod
    def parse(cls, specs: Iterable[str], order: Sequence[str]) -> NetworkRules:
        rules: dict[str, list[IPNetwork]] = {}
        for spec in specs:
            tier, sep, cidr = spec.partition("=")
            if not sep or tier.strip() not in order:
                raise ValueError(f"network rule {spec!r} must be TIER=CIDR with a known tier")
            rules.setdefault(tier.strip(), []).append(ipaddress.ip_network(cidr.strip(), strict=False))
        return cls(rules, order)

    def tier_of(self, addr: IPAddress | None) -> str | None:
        if addr is None:
            return None
        best = None
        for tier, networks in self.rules.items():
            if in_any(addr, networks) and (best is None or self.order.index(tier) > self.order.index(best)):
                best = tier
        return best
