"""Staff sessions: a signed, short-lived cookie; CSRF tokens bound to it.

The cookie holds the session's id, who signed in (the staff token's id and holder, the staff network,
or the identity provider's subject and name) with their roles, a CSRF secret and when the session
started; it is signed with the server's key and renewed on every answer, so it lapses after
`IDLE_SECONDS` without a request. The session is also
a row in the catalogue (a `tokens` row of kind `session`): signing out revokes it, so a copy of the
cookie is refused by every replica within a second. Every request re-checks what it rests on: its
row, and its token (revoked or expired) or the staff network it came from.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

COOKIE = "iiif_staff"
LOGIN_COOKIE = "iiif_staff_login"  # CSRF for the sign-in form, before there is a session
PATH = "/staff"
SALT = "iiif-server-staff-session"
LOGIN_SALT = "iiif-server-staff-login"
IDLE_SECONDS = 15 * 60
MAX_SECONDS = 10 * 3600  # a working day; then sign in again
NETWORK = "network"  # the session's kind when the staff network signed it in
OIDC = "oidc"  # signed in through the OpenID provider


@dataclass(frozen=True)
class StaffSession:
    kind: str  # "token", NETWORK or OIDC
    sid: str  # the session's own row: revoked at sign-out
    token_id: str | None
    holder: str  # a name to show: the token's holder, the network, the person's name at the provider
    csrf: str
    started: int
    expires: int  # the token's expiry (epoch seconds); sessions never outlive their token
    roles: tuple[str, ...] = ()
    subject: str | None = None  # the identity provider's `sub`

    def payload(self) -> dict[str, Any]:
        return {"k": self.kind, "i": self.sid, "t": self.token_id, "h": self.holder, "c": self.csrf,
                "s": self.started, "e": self.expires, "r": list(self.roles), "u": self.subject}

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, sent or "")


class Sessions:
    def __init__(self, secret: str, idle: int = IDLE_SECONDS) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.login_serializer = URLSafeTimedSerializer(secret, salt=LOGIN_SALT)
        self.idle = idle

    def new(self, kind: str, token_id: str | None, holder: str, expires: int, sid: str = "",
            roles: tuple[str, ...] = ("admin",), subject: str | None = None) -> StaffSession:
        """`expires`: when what the session rests on ends (its token); it ends then or after MAX_SECONDS. `sid`:
        the session's row (Console.open_session makes it); a session without one is never valid."""
        started = int(time.time())
        return StaffSession(kind, sid, token_id, holder, secrets.token_urlsafe(24), started,
                            min(expires, started + MAX_SECONDS), tuple(roles), subject)

    def read(self, cookie: str | None) -> StaffSession | None:
        """The session of a genuine cookie used within the idle time; None otherwise."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            p = self.serializer.loads(cookie, max_age=self.idle)
            session = StaffSession(str(p["k"]), str(p["i"]), p["t"], str(p["h"]), str(p["c"]), int(p["s"]),
                                   int(p["e"]), tuple(str(r) for r in p.get("r") or ()),
                                   None if p.get("u") is None else str(p["u"]))
        except (BadData, KeyError, TypeError, ValueError, AttributeError):
            return None
        if session.expires <= time.time():
            return None
        return session

    def write(self, response: Response, session: StaffSession, secure: bool) -> None:
        response.set_cookie(COOKIE, str(self.serializer.dumps(session.payload())), max_age=self.idle, path=PATH,
                            httponly=True, secure=secure, samesite="strict")

    def clear(self, response: Response, secure: bool) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, secure=secure, samesite="strict")

    # -- the sign-in form's CSRF: a random value in a signed cookie and in the form ---------------

    @staticmethod
    def login_value() -> str:
        return secrets.token_urlsafe(24)

    def login_challenge(self, response: Response, value: str, secure: bool) -> None:
        response.set_cookie(LOGIN_COOKIE, str(self.login_serializer.dumps(value)), max_age=self.idle, path=PATH,
                            httponly=True, secure=secure, samesite="strict")

    def login_ok(self, cookie: str | None, sent: str | None) -> bool:
        if not cookie or not sent:
            return False
        try:
            value = str(self.login_serializer.loads(cookie, max_age=self.idle))
        except BadData:
            return False
        return hmac.compare_digest(value, sent)
