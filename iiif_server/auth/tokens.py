"""Access tokens: signed, expiring, revocable; revocation lives in the catalogue.

A token is `itsdangerous`-signed JSON: its id, tier, optional collections,
holder and expiry. The signing key comes from configuration or a key file,
never from the process, so every replica accepts the same tokens; revocation
is looked up in the shared catalogue on every use.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import or_, select, update

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import TokenRow, now

if TYPE_CHECKING:
    from iiif_server.auth.snapshot import Snapshot

log = logging.getLogger(__name__)

SALT = "iiif-server-access-token"
USE_SECONDS = 60.0  # how stale a token's "last used" may be: uses are written at most this often
KIOSK = "kiosk"  # tokens handed out by the kiosk service; valid only from their network


@dataclass(frozen=True)
class Grant:
    """What a verified token allows."""

    id: str
    tier: str
    holder: str
    collections: tuple[str, ...]  # empty: every collection
    expires: dt.datetime
    kiosk: bool = False

    def covers(self, collection: str | None) -> bool:
        return not self.collections or (collection is not None and collection in self.collections)

    @property
    def seconds_left(self) -> int:
        return max(0, int((self.expires - dt.datetime.now(dt.UTC)).total_seconds()))


class Usage:
    """When tokens were last used, without a write per request: a use is noted in memory (one dict
    entry per token), and the notes are written in one transaction at most every `every` seconds, by a
    background thread so that no request waits for it."""

    def __init__(self, catalogue: Catalogue, every: float = USE_SECONDS) -> None:
        self.catalogue = catalogue
        self.every = every
        self.pending: dict[str, dt.datetime] = {}
        self.lock = threading.Lock()
        self.flushed = time.monotonic()
        self.flushing = False

    def touch(self, ident: str) -> None:
        with self.lock:
            self.pending[ident] = now()
            due = not self.flushing and time.monotonic() - self.flushed >= self.every
            if due:
                self.flushing = True
        if due:
            threading.Thread(target=self.flush, name="token-use", daemon=True).start()

    def flush(self) -> None:
        """Write the noted uses (blocking). Only ever moves `last_used` forward."""
        with self.lock:
            pending, self.pending = self.pending, {}
            self.flushed = time.monotonic()
            self.flushing = True
        try:
            if pending:
                with self.catalogue.session() as session:
                    for ident, at in sorted(pending.items()):  # one order: no deadlock between replicas
                        session.execute(update(TokenRow).where(
                            TokenRow.id == ident, or_(TokenRow.last_used.is_(None), TokenRow.last_used < at))
                            .values(last_used=at))
        except Exception as exc:  # noqa: BLE001 - a lost "last used" must never fail a request
            log.warning("cannot record token use: %s", exc)
        finally:
            with self.lock:
                self.flushing = False


class TokenStore:
    def __init__(self, catalogue: Catalogue, secret: str, snapshot: Snapshot | None = None,
                 use_seconds: float = USE_SECONDS) -> None:
        self.catalogue = catalogue
        self.serializer = URLSafeSerializer(secret, salt=SALT)
        self.snapshot = snapshot  # where known token states are read without a query
        self.usage = Usage(catalogue, use_seconds)

    def issue(self, tier: str, holder: str, days: float, collections: Sequence[str] = (),
              kind: str = "token") -> tuple[str, TokenRow]:
        """A signed token and its row; `kind` "session" for a staff console session (not listed with tokens)."""
        expires = now() + dt.timedelta(days=days)
        row = TokenRow(id=secrets.token_hex(8), holder=holder, tier=tier, collections=list(collections),
                       issued=now(), expires=expires, kind=kind)
        with self.catalogue.session() as session:
            session.add(row)
        return self._sign(row.id, tier, holder, list(collections), expires), row

    def kiosk(self, tier: str, seconds: int) -> str:
        """A short-lived token for a reading-room network; not stored, valid there only."""
        return self._sign(KIOSK, tier, "kiosk", [], now() + dt.timedelta(seconds=seconds))

    def access_token(self, grant: Grant, seconds: int) -> tuple[str, int]:
        """A short-lived token derived from a verified grant, for a viewer (the token services).

        It carries the grant's id, so revoking the token it came from revokes it too;
        it never outlives that token. Returns the token and its seconds to live.
        """
        expires = min(grant.expires, now() + dt.timedelta(seconds=seconds))
        token = self._sign(grant.id, grant.tier, grant.holder, list(grant.collections), expires)
        return token, max(0, int((expires - dt.datetime.now(dt.UTC)).total_seconds()))

    def _sign(self, ident: str, tier: str, holder: str, collections: list[str], expires: dt.datetime) -> str:
        payload = {"id": ident, "tier": tier, "holder": holder, "collections": collections,
                   "exp": int(expires.timestamp())}
        return str(self.serializer.dumps(payload))

    def verify(self, token: str) -> Grant | None:
        """The grant of a genuine, unexpired, unrevoked token; None otherwise."""
        if not token or len(token) > 4096:
            return None
        try:
            payload = self.serializer.loads(token)
            expires = dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC)
            grant = Grant(str(payload["id"]), str(payload["tier"]), str(payload["holder"]),
                          tuple(str(c) for c in payload.get("collections") or ()), expires,
                          kiosk=payload["id"] == KIOSK)
        except (BadData, KeyError, TypeError, ValueError, OverflowError, AttributeError):
            return None
        if expires <= dt.datetime.now(dt.UTC):
            return None
        if grant.kiosk:
            return grant
        known = None
        if self.snapshot is not None:
            self.snapshot.current()
            known = self.snapshot.token(grant.id)
        if known is not None:
            if known:
                self.usage.touch(grant.id)
            return grant if known else None
        with self.catalogue.sessions() as session:  # issued since the snapshot was taken
            row = session.get(TokenRow, grant.id)
        if row is None or row.revoked is not None:
            return None
        self.usage.touch(grant.id)
        return grant

    def alive(self, ident: str) -> bool:
        """Whether the row `ident` exists, is not revoked and has not expired (a console session's check:
        from the snapshot, or the catalogue for one issued since it was taken)."""
        if self.snapshot is not None:
            self.snapshot.current()
            known = self.snapshot.token(ident)
            if known is False:
                return False
        with self.catalogue.sessions() as session:
            row = session.get(TokenRow, ident)
            if row is None or row.revoked is not None:
                return False
            expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=dt.UTC)
        return expires > dt.datetime.now(dt.UTC)

    def revoke(self, ident: str) -> bool:
        with self.catalogue.session() as session:
            row = session.get(TokenRow, ident)
            if row is None:
                return False
            if row.revoked is None:
                row.revoked = now()
                self.catalogue.bump(session)  # every replica's snapshot reloads within a second
            return True

    def list(self) -> Sequence[TokenRow]:
        """The tokens issued (not the console's sessions)."""
        with self.catalogue.sessions() as session:
            return session.scalars(select(TokenRow).where(TokenRow.kind == "token").order_by(TokenRow.issued)).all()
