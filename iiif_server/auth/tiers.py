"""Tiers: ordered access levels; a request may see what is at or below its clearance."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIERS = ("public", "reading-room", "staff")


@dataclass(frozen=True)
class Tiers:
    names: tuple[str, ...] = DEFAULT_TIERS

    def __post_init__(self) -> None:
        if len(self.names) < 1 or len(set(self.names)) != len(self.names):
            raise ValueError("tiers must be distinct names, lowest first")

    @property
    def public(self) -> str:
        return self.names[0]

    def rank(self, tier: str | None) -> int:
        """Position of a tier; an unknown tier ranks above all (nobody is cleared for it)."""
        if tier is None:
            return 0
        try:
            return self.names.index(tier)
        except ValueError:
            return len(self.names)

    def allows(self, clearance: str, tier: str | None) -> bool:
        return self.rank(clearance) >= self.rank(tier)

    def highest(self, *tiers: str | None) -> str:
        known = [t for t in tiers if t in self.names]
        return max(known, key=self.rank) if known else self.public

    def check(self, tier: str) -> str:
        if tier not in self.names:
            raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(self.names)}")
        return tier
