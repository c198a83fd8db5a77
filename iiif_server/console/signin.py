"""Signing in and out of the console: through the institution's OpenID provider, or by the emergency door (a
staff token, or one click from the staff network, as admin) unless it is switched off. Mixed into `Console`
(routes.py) with the gate (gate.py)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from iiif_server.auth.policy import COOKIE as ACCESS_COOKIE
from iiif_server.console import roles
from iiif_server.console.gate import HEADERS, StaffGate
from iiif_server.console.oidc import CALLBACK, STATE_COOKIE, STATE_PATH, OpenIDSignIn, SignInRefused
from iiif_server.console.session import LOGIN_COOKIE, MAX_SECONDS, NETWORK, OIDC, StaffSession


def home_of(held: tuple[str, ...]) -> str:
    """Where a session lands: the collections, or the audit log for an auditor."""
    return "/staff/" if roles.allowed(held, roles.READ) else "/staff/audit"


class SignIn(StaffGate):
    openid: OpenIDSignIn | None
    token_sign_in: bool

    async def login(self, request: Request) -> Response:
        error = None
        if request.method == "POST":
            if not self.token_sign_in:
                return self.refusal("Refused", "Sign in with your institution's account.", 403)
            if not self.same_site(request):
                return self.refusal("Refused", "Please sign in from this page.", 403)
            form = await self.read_form(request)
            if form is None:
                return self.refusal("Refused", "That form is too large or too slow.", 413)
            if not self.sessions.login_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
                error = "This form has expired; please try again."
            elif form.get("via") == NETWORK:
                if self.from_staff_network(request):
                    session = await self.run(self.open_session, NETWORK, None,
                                             f"staff network ({self.client(request)})", int(time.time()) + MAX_SECONDS)
                    return self.signed_in(request, session)
                error = "This computer is not on the staff network."
            else:
                token = form.get("token", "").strip()
                grant = await self.run(self.policy.tokens.verify, token) if token else None
                if grant is not None and not grant.kiosk and grant.tier == self.staff_tier and not grant.collections:
                    session = await self.run(self.open_session, "token", grant.id, grant.holder,
                                             int(grant.expires.timestamp()))
                    return self.signed_in(request, session)
                error = "That is not a valid staff token."
            self.audit(request, None, "sign-in-refused", None)
        value = self.sessions.login_value()
        response = self.render(request, None, "login.html", status=401 if error else 200, error=error, csrf=value,
                               tokens=self.token_sign_in, openid=self.openid,
                               network=self.token_sign_in and self.from_staff_network(request))
        self.sessions.login_challenge(response, value, self.secure(request))
        return response

    def open_session(self, kind: str, token_id: str | None, holder: str, expires: int,
                     held: tuple[str, ...] = (roles.ADMIN,), subject: str | None = None) -> StaffSession:
        """Blocking: a new session and its row in the catalogue (which sign-out revokes)."""
        days = max(0.0, min(expires - time.time(), MAX_SECONDS)) / 86400
        tier = roles.clearance(held, self.policy.tiers.names) or self.policy.tiers.public
        _, row = self.policy.tokens.issue(tier, f"console session: {holder}", days, kind="session")
        return self.sessions.new(kind, token_id, holder, expires, sid=row.id, roles=held, subject=subject)

    def signed_in(self, request: Request, session: StaffSession) -> Response:
        self.audit(request, session, "sign-in", None)
        response = RedirectResponse(home_of(session.roles), 303, headers=HEADERS)
        self.sessions.write(response, session, self.secure(request))
        self.access_cookie(request, response, session)
        return response

    async def logout(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        self.audit(request, session, "sign-out", None)
        await self.run(self.policy.tokens.revoke, session.sid)  # a copied cookie ends here, on every replica
        response = RedirectResponse("/staff/login", 303, headers=HEADERS)
        secure = self.secure(request)
        self.sessions.clear(response, secure)
        if session.kind != NETWORK:  # the viewers on this site are signed out with it
            response.delete_cookie(ACCESS_COOKIE, path="/", secure=secure, httponly=True,
                                   samesite="none" if secure else "lax")
        return response

    # -- OpenID Connect --------------------------------------------------------------------------

    async def oidc_login(self, request: Request) -> Response:
        """Off to the provider, with the flow's state in a cookie of its own."""
        if self.openid is None:
            return self.refusal("Not found", "Sign-in through an identity provider is not set up here.", 404)
        try:
            url, state = await self.openid.begin(self.base_url(request) + CALLBACK)
        except SignInRefused as exc:
            return self.refusal("Cannot sign in", exc.reason, exc.status)
        response = RedirectResponse(url, 303, headers=HEADERS)
        # Lax: the provider's redirect back is a top-level navigation from its site
        response.set_cookie(STATE_COOKIE, state, max_age=600, path=STATE_PATH, httponly=True,
                            secure=self.secure(request), samesite="lax")
        return response

    async def oidc_callback(self, request: Request) -> Response:
        if self.openid is None:
            return self.refusal("Not found", "Sign-in through an identity provider is not set up here.", 404)
        params = {k: v[:4096] for k, v in request.query_params.items()}
        try:
            person = await self.openid.finish(params, request.cookies.get(STATE_COOKIE))
        except SignInRefused as exc:
            self.audit(request, None, "sign-in-refused", None, reason=exc.reason)
            return self.not_signed_in(request, exc.reason, exc.status)
        if not person.roles:
            self.audit(request, None, "sign-in-refused", None, reason="no role", holder=person.name,
                       subject=person.subject)
            return self.not_signed_in(request, "Your account has no role in this console; ask its administrator "
                                               "for one.", 403)
        session = await self.run(self.open_session, OIDC, None, person.name, int(time.time()) + MAX_SECONDS,
                                 person.roles, person.subject)
        self.audit(request, session, "sign-in", None)
        # a page that moves on by itself: after a navigation that came from the provider's site, browsers keep
        # SameSite=Strict cookies from the redirects that follow it, but not from a navigation this page starts
        response = self.render(request, session, "signed_in.html", home=home_of(session.roles))
        self.forget_state(request, response)
        return response

    def not_signed_in(self, request: Request, reason: str, status: int) -> Response:
        response = self.refusal("Not signed in", reason, status)
        self.forget_state(request, response)
        return response

    def forget_state(self, request: Request, response: Response) -> None:
        response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, secure=self.secure(request),
                               samesite="lax")
