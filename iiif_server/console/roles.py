"""The console's roles: what each may do, what it clears in the viewers, and how an identity provider's claim
values become roles.

- `admin`: everything, tokens and network rules included (the emergency door signs in as admin).
- `archivist`: tiers, withdrawals, ingest; reads collections, runs.
- `reading-room`: reads the console; clears reading-room material in the viewers.
- `auditor`: the audit log only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ADMIN, ARCHIVIST, READING_ROOM, AUDITOR = "admin", "archivist", "reading-room", "auditor"
ROLES = (ADMIN, ARCHIVIST, READING_ROOM, AUDITOR)

# what each part of the console needs: a session holding any one of these roles
ANY = frozenset(ROLES)  # signing out, the console's script
READ = frozenset({ADMIN, ARCHIVIST, READING_ROOM})  # collections, documents, ingest runs: read only
EDIT = frozenset({ADMIN, ARCHIVIST})  # tiers, withdrawals, starting and stopping ingests
ACCESS = frozenset({ADMIN})  # tokens and network rules
AUDIT = frozenset({ADMIN, AUDITOR})  # the audit log


def parse_map(rules: Sequence[str]) -> dict[str, str]:
    """`VALUE=ROLE` rules (the value may hold `=`); ValueError naming an unknown role."""
    out: dict[str, str] = {}
    for rule in rules:
        value, _, role = rule.rpartition("=")
        role = role.strip()
        if role not in ROLES:
            raise ValueError(f"oidc_role_map: unknown role {role!r} in {rule!r}; roles are {', '.join(ROLES)}")
        out[value.strip()] = role
    return out


def claim(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path (`realm_access.roles`); a name holding dots itself is found first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def roles_of(value: Any, mapping: dict[str, str]) -> tuple[str, ...]:
    """Roles from a claim's value (a list of strings, or one string of space-separated values), in ROLES'
    order: each value through `mapping`; without a mapping, values that are roles' names."""
    if isinstance(value, str):
        values: Iterable[Any] = value.split()
    elif isinstance(value, list):
        values = value
    else:
        return ()
    found = set()
    for item in values:
        if not isinstance(item, str):
            continue
        role = mapping.get(item) if mapping else (item if item in ROLES else None)
        if role is not None:
            found.add(role)
    return tuple(r for r in ROLES if r in found)


def allowed(roles: Iterable[str], needed: frozenset[str]) -> bool:
    return any(r in needed for r in roles)


def clearance(roles: Iterable[str], tiers: Sequence[str]) -> str | None:
    """The tier a session's roles clear in the viewers: the highest for admins and archivists, the tier named
    `reading-room` (else the one below the highest) for the reading-room desk, none for an auditor."""
    held = set(roles)
    if held & {ADMIN, ARCHIVIST}:
        return tiers[-1]
    if READING_ROOM in held and len(tiers) > 1:
        return READING_ROOM if READING_ROOM in tiers else tiers[-2]
    return None
