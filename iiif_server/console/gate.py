"""How every console request is checked and answered: the staff session it rests on (a signed cookie whose
token or network still holds), the same-site check and CSRF token of forms, bounded form bodies, the
audit line of each action, and rendering. Mixed into `Console` (routes.py), which provides what the
attributes below name."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from iiif_server.auth.policy import Policy
from iiif_server.auth.services import _form, _secure, set_cookie
from iiif_server.auth.tokens import Grant
from iiif_server.console import queries, roles
from iiif_server.console.session import COOKIE, NETWORK, OIDC, Sessions, StaffSession
from iiif_server.db.catalogue import Catalogue
from iiif_server.runtime import observe
from iiif_server.runtime.addresses import client_address
from iiif_server.runtime.bounds import current as request_bounds

HEADERS = {
    "Cache-Control": "no-store",
    # connect-src: the run page polls its progress
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; script-src 'self'; connect-src 'self'; "
                               "style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    # never to other sites; `no-referrer` would make browsers send `Origin: null` with our own forms
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

Handler = Callable[[Request, StaffSession], Awaitable[Response]]
FormHandler = Callable[[Request, StaffSession, dict[str, str]], Awaitable[Response]]


class StaffGate:
    catalogue: Catalogue
    policy: Policy
    sessions: Sessions
    audit_log: observe.JsonLines
    base_url: Callable[[Request], str]
    run: Callable[..., Awaitable[Any]]
    proxies: Any
    staff_tier: str
    env: Environment

    def secure(self, request: Request) -> bool:
        return _secure(self.base_url(request))

    def client(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        forwarding = {name: ", ".join(request.headers.getlist(name)) for name in ("forwarded", "x-forwarded-for")}
        addr = client_address(peer, forwarding, self.proxies)
        return str(addr) if addr is not None else None

    def from_staff_network(self, request: Request) -> bool:
        peer = request.client.host if request.client else None
        forwarding = {name: ", ".join(request.headers.getlist(name)) for name in ("forwarded", "x-forwarded-for")}
        return self.policy.networks.tier_of(client_address(peer, forwarding, self.proxies)) == self.staff_tier

    def valid(self, request: Request, session: StaffSession) -> bool:
        """Blocking: whether the session was not ended (signed out) and what it rests on still holds."""
        if not self.policy.tokens.alive(session.sid):
            return False
        if session.kind == OIDC:
            return True  # the provider was asked at sign-in; the session's row ends it
        if session.kind == NETWORK:
            return self.from_staff_network(request)
        row = queries.token(self.catalogue, session.token_id or "")
        return row is not None and row.revoked is None and row.tier == self.staff_tier

    async def current(self, request: Request) -> StaffSession | None:
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None or not await self.run(self.valid, request, session):
            return None
        return session

    def same_site(self, request: Request) -> bool:
        """A form posted from this server's own pages (browsers send Origin with every POST)."""
        site = request.headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return False
        if site == "same-origin":
            return True
        origin = request.headers.get("origin")
        if origin is None:
            return True
        own = urlsplit(self.base_url(request))
        return origin.lower().rstrip("/") == f"{own.scheme}://{own.netloc}".lower()

    def audit(self, request: Request, session: StaffSession | None, action: str, target: str | None,
              **detail: Any) -> None:
        """One line in the audit log: who, what, when and from where."""
        who: dict[str, Any] = {}
        if session is not None and session.subject is not None:
            who = {"subject": session.subject, "roles": list(session.roles)}
        self.audit_log.write({
            "time": observe.iso_time(time.time()), "event": "staff", "action": action, "target": target,
            "holder": session.holder if session else None, "token_id": session.token_id if session else None,
            "via": session.kind if session else None, **who, "client": self.client(request), **detail,
        })

    def page(self, handler: Handler, needs: frozenset[str]) -> Callable[[Request], Awaitable[Response]]:
        """A page for sessions holding one of the roles `needs`; others get 403, none a redirect to sign in."""
        async def guarded(request: Request) -> Response:
            session = await self.current(request)
            if session is None:
                return RedirectResponse("/staff/login", 303, headers=HEADERS)
            if not roles.allowed(session.roles, needs):
                return self.not_allowed(request, session)
            return await handler(request, session)

        guarded.needs = needs  # type: ignore[attr-defined]
        return guarded

    def form(self, handler: FormHandler, needs: frozenset[str]) -> Callable[[Request], Awaitable[Response]]:
        """A form for sessions holding one of the roles `needs`, posted from this console with its CSRF value."""
        async def guarded(request: Request) -> Response:
            session = await self.current(request)
            if session is None:
                return self.refusal("Sign in first", "This needs a staff session.", 403)
            if not roles.allowed(session.roles, needs):
                self.audit(request, session, "role-refused", request.url.path)
                return self.not_allowed(request, session)
            if not self.same_site(request):
                return self.refusal("Refused", "Forms are accepted from this console's own pages only.", 403)
            form = await self.read_form(request)
            if form is None:
                return self.refusal("Refused", "That form is too large or too slow.", 413)
            if not session.csrf_ok(form.get("csrf")):
                self.audit(request, session, "csrf-refused", request.url.path)
                return self.refusal("Refused", "This form has expired; reload the page and try again.", 403)
            return await handler(request, session, form)

        guarded.needs = needs  # type: ignore[attr-defined]
        return guarded

    def not_allowed(self, request: Request, session: StaffSession) -> HTMLResponse:
        held = ", ".join(session.roles) or "no role"
        return self.render(request, session, "message.html", 403, title="Not allowed",
                           message=f"Your role ({held}) does not include this part of the console.")

    @staticmethod
    async def read_form(request: Request) -> dict[str, str] | None:
        try:
            return await asyncio.wait_for(_form(request), request_bounds().form_seconds)
        except TimeoutError:
            return None

    def render(self, request: Request, session: StaffSession | None, name: str, status: int = 200,
               **context: Any) -> HTMLResponse:
        can = {part: session is not None and roles.allowed(session.roles, needs) for part, needs in
               (("read", roles.READ), ("edit", roles.EDIT), ("access", roles.ACCESS), ("audit", roles.AUDIT))}
        body = self.env.get_template(name).render(session=session, staff_tier=self.staff_tier,
                                                  tiers=self.policy.tiers.names, can=can, **context)
        response = HTMLResponse(body, status_code=status, headers=HEADERS)
        if session is not None:
            self.sessions.write(response, session, self.secure(request))  # renewed: the idle time restarts
            self.access_cookie(request, response, session)
        return response

    def access_cookie(self, request: Request, response: Response, session: StaffSession) -> None:
        """The console's thumbnails of restricted pages, and the viewers on this site, load with a short access
        token drawn from the session's own row (never the staff token itself), of the tier its roles clear: it
        lives as long as the session's idle time, is renewed with it, and dies with the session at sign-out.
        The staff network needs none; an auditor gets none."""
        tier = roles.clearance(session.roles, self.policy.tiers.names)
        if session.kind == NETWORK or tier is None:
            return
        expires = dt.datetime.fromtimestamp(session.expires, dt.UTC)
        grant = Grant(session.sid, tier, session.holder, (), expires)
        token, seconds = self.policy.tokens.access_token(grant, self.sessions.idle)
        set_cookie(response, self.base_url(request), token, seconds)

    def refusal(self, title: str, message: str, status: int) -> HTMLResponse:
        body = self.env.get_template("message.html").render(session=None, title=title, message=message)
        return HTMLResponse(body, status_code=status, headers=HEADERS)


