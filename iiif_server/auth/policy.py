"""Policy: who is asking (clearance) and what is asked (tier) -> allow, degrade or refuse.

Clearance is the highest of the request's network tier and its token's tier
(a token limited to some collections counts only for those). Tiers come from
the catalogue (image, else document, else collection), else from path-prefix
rules for plain folders, else the default tier (`fallback_tier`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.requests import Request

from iiif_server.auth.networks import NetworkRules
from iiif_server.auth.snapshot import Snapshot, Tables
from iiif_server.auth.tiers import Tiers
from iiif_server.auth.tokens import Grant, TokenStore
from iiif_server.names import fold
from iiif_server.runtime.addresses import IPNetwork, client_address

COOKIE = "iiif_access"
TIER_MEMO = 65_536  # identifiers whose tier is remembered per process until the catalogue changes


class Verdict(Enum):
    ALLOW = "allow"
    DEGRADE = "degrade"  # served only up to the tier's public size limit
    LOGIN = "login"  # 401: no credentials
    DENY = "deny"  # 403: credentials, but not enough


@dataclass(frozen=True)
class Access:
    """What one request brings: its network tier and its token's grant."""

    network_tier: str | None
    grant: Grant | None
    by_cookie: bool = False  # the grant came from the sign-in cookie, not an Authorization header
    partner: str | None = None  # the institution the network's rule names (the reading room of partner X)

    def clearance(self, tiers: Tiers, collection: str | None) -> str:
        token_tier = None
        if self.grant is not None and self.grant.covers(collection):
            if not self.grant.kiosk or tiers.allows(self.network_tier or tiers.public, self.grant.tier):
                token_tier = self.grant.tier
        return tiers.highest(self.network_tier, token_tier)

    @property
    def has_credentials(self) -> bool:
        return self.grant is not None or self.network_tier is not None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or None


class Policy:
    def __init__(self, tiers: Tiers, networks: NetworkRules, proxies: Sequence[IPNetwork], tokens: TokenStore,
                 snapshot: Snapshot, path_rules: Sequence[tuple[str, str]] = (),
                 degraded: dict[str, int] | None = None, hidden: Sequence[str] = (),
                 default_tier: str | None = None) -> None:
        self.tiers = tiers
        self.networks = networks
        self.proxies = proxies
        self.tokens = tokens
        self.snapshot = snapshot
        # longest prefix first, so the most specific rule wins
        self.path_rules = sorted(path_rules, key=lambda rule: len(rule[0]), reverse=True)
        self.folded_rules = [(fold(prefix), tier) for prefix, tier in self.path_rules]
        self._memo: dict[str, tuple[str, bool]] = {}
        self._memo_of: Tables | None = None
        self.degraded = degraded or {}
        self.hidden = set(hidden)
        self.default_tier = default_tier  # None: auto (see `fallback_tier`)

    async def fresh(self, run: Callable[..., Awaitable[Any]]) -> None:
        """Tiers and token states recent enough to decide on (see Snapshot)."""
        await self.snapshot.ensure(run)

    async def access_async(self, request: Request, run: Callable[..., Awaitable[Any]]) -> Access:
        """`access` without a thread hop when the request carries no token (nothing to look up)."""
        if bearer_token(request) is None:
            return self.access(request)
        return await run(self.access, request)  # type: ignore[no-any-return]

    def access(self, request: Request) -> Access:
        """May block: a token the snapshot does not know yet is looked up in the catalogue."""
        peer = request.client.host if request.client else None
        # repeated header lines are one comma-separated list, in order (RFC 9110 5.3)
        forwarding = {name: ", ".join(request.headers.getlist(name)) for name in ("forwarded", "x-forwarded-for")}
        addr = client_address(peer, forwarding, self.proxies)
        network_tier, partner = self.networks.match(addr)
        if network_tier == self.tiers.public:
            network_tier = partner = None  # a rule for the lowest tier clears nothing: no credential
        token = bearer_token(request)
        grant = self.tokens.verify(token) if token else None
        if grant is not None and grant.kiosk and not self.tiers.allows(network_tier or self.tiers.public, grant.tier):
            grant = None  # a kiosk token outside its network is no credential at all
        by_cookie = grant is not None and request.headers.get("authorization", "")[:7].lower() != "bearer "
        return Access(network_tier, grant, by_cookie=by_cookie, partner=partner)

    def tier_of(self, identifier: str) -> str:
        """In memory: the snapshot's tier for catalogued collections, else the path rules, else the fallback;
        raised to the tier of anything the same spelling may open on a file system that folds case or
        Unicode form (a catalogued name or a rule's prefix spelled otherwise)."""
        return self._decided(identifier)[0]

    def raised(self, identifier: str) -> bool:
        """Whether the tier comes from another spelling (`tier_of`), not from this one's own."""
        return self._decided(identifier)[1]

    def _decided(self, identifier: str) -> tuple[str, bool]:
        tables = self.snapshot.tables
        if tables is not self._memo_of or len(self._memo) >= TIER_MEMO:
            self._memo, self._memo_of = {}, tables
        found = self._memo.get(identifier)
        if found is None:
            found = self._memo[identifier] = self._tier_of(identifier)
        return found

    def _tier_of(self, identifier: str) -> tuple[str, bool]:
        tier = self.snapshot.tier(identifier)
        if tier is None:
            tier = next((rule_tier for prefix, rule_tier in self.path_rules if under(identifier, prefix)),
                        None) or self.fallback_tier()
        folded = fold(identifier)
        aliases = self.snapshot.alias_tiers(identifier) + [
            rule_tier for prefix, rule_tier in self.folded_rules if under(folded, prefix)]
        highest = max([tier, *aliases], key=self.tiers.rank)
        return highest, self.tiers.rank(highest) > self.tiers.rank(tier)

    def fallback_tier(self) -> str:
        """Images outside the catalogue that no path rule names. Auto: the lowest tier while the catalogue
        restricts nothing (a plain folder, the demo), else the highest: in an archive that restricts, a
        folder dropped beside the collections stays closed until someone gives it a tier."""
        if self.default_tier is not None:
            return self.default_tier
        if any(self.restricted(tier) for tier in self.snapshot.tiers_used()):
            return self.tiers.names[-1]
        return self.tiers.public

    def restricted(self, tier: str) -> bool:
        return self.tiers.rank(tier) > 0

    def verdict(self, access: Access, tier: str, collection: str | None) -> Verdict:
        if self.tiers.allows(access.clearance(self.tiers, collection), tier):
            return Verdict.ALLOW
        if tier in self.degraded:
            return Verdict.DEGRADE
        return Verdict.DENY if access.has_credentials else Verdict.LOGIN

    def degraded_limit(self, tier: str) -> int | None:
        return self.degraded.get(tier)

    def cleared(self, access: Access, tier: str, collection: str | None) -> bool:
        """Whether the request may open material of `tier`: what is listed to it and described to it (labels,
        page names, text). Restricted material it is not cleared for is at most announced, never described."""
        return self.tiers.allows(access.clearance(self.tiers, collection), tier)

    def visible(self, access: Access, tier: str, collection: str | None) -> bool:
        """Whether a manifest or collection entry of this tier is shown at all."""
        return tier not in self.hidden or self.tiers.allows(access.clearance(self.tiers, collection), tier)


def under(identifier: str, prefix: str) -> bool:
    return identifier == prefix or identifier.startswith(prefix.rstrip("/") + "/")


def collection_of(identifier: str) -> str | None:
    """Catalogued identifiers are `collection/document/page`."""
    parts = identifier.split("/")
    return parts[0] if len(parts) == 3 else None
