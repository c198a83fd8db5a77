"""Who is asking, by network: the client's address (runtime/addresses.py) -> the tier of its network, and the
institution a rule names (`reading-room=192.0.2.0/24 "Partner archive X"`): the overview lists the partners
where restricted material can be consulted, and the audit log names the one a granted access came from."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from iiif_server.config import network_rule
from iiif_server.runtime.addresses import IPAddress, IPNetwork, in_any


class NetworkRules:
    """CIDR lists per tier; an address gets the highest tier whose ranges hold it."""

    def __init__(self, rules: dict[str, list[IPNetwork]], order: Sequence[str],
                 names: dict[IPNetwork, str] | None = None) -> None:
        self.rules = rules
        self.order = list(order)
        self.names = names or {}  # network -> the institution its rule names

    @classmethod
    def parse(cls, specs: Iterable[str], order: Sequence[str]) -> NetworkRules:
        rules: dict[str, list[IPNetwork]] = {}
        names: dict[IPNetwork, str] = {}
        for spec in specs:
            if "=" not in spec:
                raise ValueError(f"network rule {spec!r} must be TIER=CIDR with a known tier")
            tier, cidr, name = network_rule(spec)
            if tier not in order:
                raise ValueError(f"network rule {spec!r} must be TIER=CIDR with a known tier")
            network = ipaddress.ip_network(cidr, strict=False)
            rules.setdefault(tier, []).append(network)
            if name:
                names[network] = name
        return cls(rules, order, names)

    def tier_of(self, addr: IPAddress | None) -> str | None:
        return self.match(addr)[0]

    def match(self, addr: IPAddress | None) -> tuple[str | None, str | None]:
        """The highest tier whose ranges hold `addr`, and the institution named by the narrowest of its
        networks that holds it (None: no rule, or a rule that names none)."""
        if addr is None:
            return None, None
        best: str | None = None
        for tier, networks in self.rules.items():
            if in_any(addr, networks) and (best is None or self.order.index(tier) > self.order.index(best)):
                best = tier
        if best is None:
            return None, None
        named = [n for n in self.rules[best] if n in self.names and in_any(addr, [n])]
        return best, self.names[max(named, key=lambda n: n.prefixlen)] if named else None

    def partners(self, tier: str) -> list[str]:
        """The institutions named by the rules of `tier`, each once, in the order of the rules."""
        return list(dict.fromkeys(self.names[n] for n in self.rules.get(tier, []) if n in self.names))
