"""Access tokens: signed, expiring, revocable; revocation lives in the catalogue.

A token is `itsdangerous`-signed JSON: its id, tier, optional collections,
holder and expiry. The signing key comes from configuration or a key file,
never from the process, so every replica accepts the same tokens; revocation
is looked up in the shared catalogue on every use.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import JSON, DateTime, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from ..manifests.catalogue import Base, Catalogue, now

if TYPE_CHECKING:
    from .snapshot import Snapshot

SALT = "iiif-server-access-token"
KIOSK = "kiosk"  # tokens handed out by the kiosk service; valid only from their network


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(String(50))
    collections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    issued: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


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


class TokenStore:
    def __init__(self, catalogue: Catalogue, secret: str, snapshot: Snapshot | None = None) -> None:
        self.catalogue = catalogue
        self.serializer = URLSafeSerializer(secret, salt=SALT)
        self.snapshot = snapshot  # where known token states are read without a query

    def issue(self, tier: str, holder: str, days: float, collections: Sequence[str] = ()) -> tuple[str, TokenRow]:
        expires = now() + dt.timedelta(days=days)
        row = TokenRow(id=secrets.token_hex(8), holder=holder, tier=tier, collections=list(collections),
                       issued=now(), expires=expires)
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
            return grant if known else None
        with self.catalogue.sessions() as session:  # issued since the snapshot was taken
            row = session.get(TokenRow, grant.id)
        if row is None or row.revoked is not None:
            return None
        return grant

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
        with self.catalogue.sessions() as session:
            return session.scalars(select(TokenRow).order_by(TokenRow.issued)).all()
