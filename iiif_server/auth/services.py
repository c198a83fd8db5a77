"""IIIF Authorization Flow 2.0 and Authentication 1.0 services.

Descriptions go into info.json and manifests next to every restricted image;
the routes here are what they point at: the access (login / kiosk) pages that
set the session cookie, the token services that hand the cookie's token to a
viewer by postMessage, logout, and the 2.0 probe.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from iiif_server.auth.policy import COOKIE, Access, Policy, Verdict, collection_of
from iiif_server.runtime import bounds

AUTH2_CONTEXT = "http://iiif.io/api/auth/2/context.json"
AUTH1_CONTEXT = "http://iiif.io/api/auth/1/context.json"
AUTH1 = "http://iiif.io/api/auth/1/"
PROBE2_PROFILE = "https://iiif.io/api/auth/2.0/#probe-service"
KIOSK_SECONDS = 3600
ACCESS_TOKEN_SECONDS = 3600  # what a viewer gets: short-lived, never the long-lived token of the cookie
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")  # used with fullmatch: no trailing newline


@dataclass(frozen=True)
class Texts:
    """What viewers show about restricted material, as language maps."""

    heading: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Restricted material"]})
    note: dict[str, list[str]] = field(
        default_factory=lambda: {"en": ["This item can be consulted in the reading room, at partner "
                                        "institutions, or with an access token."]})
    login: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Sign in with an access token"]})
    signed_in: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Signed in"]})
    confirm: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Sign in"]})
    logout: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Sign out"]})
    # the logout service's label: Mirador 4 shows it as the signed-in bar's only text (its button),
    # with nothing beside it, so the button itself says that the reader is signed in
    logout_label: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Signed in \u2013 sign out"]})
    origin: dict[str, list[str]] = field(
        default_factory=lambda: {"en": ["This viewer is not allowed to receive access tokens from this server."]})

    failure_heading: dict[str, list[str]] = field(default_factory=lambda: {"en": ["Access denied"]})
    failure_note: dict[str, list[str]] = field(
        default_factory=lambda: {"en": ["The access token is not valid for this material."]})
    language: str = "en"  # the configured language: Auth 1.0 labels are one plain string each

    def first(self, value: dict[str, list[str]]) -> str:
        """The text in the configured language, else the first given. Plain strings for Auth 1.0: UV 4
        (manifesto) shows nothing at all for a language-tagged list without the browser's locale."""
        found = value.get(self.language) or next(iter(value.values()))
        return found[0]


def language_map(text: str, default: str) -> dict[str, list[str]]:
    """`en=Text|nl=Tekst` (or plain text in the default language) -> language map."""
    out: dict[str, list[str]] = {}
    for part in text.split("|"):
        lang, sep, value = part.partition("=")
        if sep and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]+)*", lang.strip()):
            out.setdefault(lang.strip(), []).append(value.strip())
        else:
            out.setdefault(default, []).append(part.strip())
    return out


class AuthServices:
    def __init__(self, policy: Policy, texts: Texts, base_url: Callable[[Request], str],
                 run: Callable[..., Awaitable[Any]], viewer_origins: Sequence[str] = (),
                 exists: Callable[[str], bool] = lambda identifier: True) -> None:
        self.policy = policy
        self.exists = exists  # blocking: run it in a worker thread
        self.texts = texts
        self.base_url = base_url
        self.run = run
        self.viewer_origins = frozenset(o.lower().rstrip("/") for o in viewer_origins)
        # pages that hand out tokens may be framed by the viewers that receive them, nothing else
        self.token_frame = "frame-ancestors " + " ".join(["'self'", *sorted(self.viewer_origins)])

    # -- origins -------------------------------------------------------------------

    def own_origin(self, request: Request) -> str:
        url = urlsplit(self.base_url(request))
        return f"{url.scheme}://{url.netloc}".lower()

    def origin_allowed(self, request: Request, origin: str) -> bool:
        """Whether a page of `origin` may receive tokens: a configured viewer, or this server itself."""
        if not _ORIGIN.fullmatch(origin):
            return False
        origin = origin.lower()
        return origin in self.viewer_origins or origin == self.own_origin(request)

    def from_allowed_site(self, request: Request) -> bool:
        """A browser request started by this server's pages or a configured viewer's; requests from
        outside browsers (no Origin, Referer or Sec-Fetch-Site) too."""
        site = request.headers.get("sec-fetch-site")
        if site in ("same-origin", "none"):
            return True
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            referer = urlsplit(request.headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.scheme and referer.netloc else None
        if origin is not None:
            return self.origin_allowed(request, origin)
        return site is None

    # -- descriptions ------------------------------------------------------------

    def descriptions(self, base: str, identifier: str, access: Access, tier: str,
                     signed_in: bool = False) -> list[dict[str, Any]]:
        """The auth services for one restricted image of `tier`: a 2.0 probe, then the 1.0 services.

        `signed_in` (info.json, asked with a sign-in cookie that clears the tier: the staff console's, or one
        this service set): an `external` access service first, so that a viewer goes straight to the token
        service, with no sign-in window and no notice (Mirador and UV read the 1.0 one)."""
        t = self.texts
        token2 = {"id": f"{base}/iiif/auth/token", "type": "AuthAccessTokenService2"}
        logout2 = {"id": f"{base}/iiif/auth/logout", "type": "AuthLogoutService2", "label": t.logout_label}
        access2: list[dict[str, Any]] = []
        services1: list[dict[str, Any]] = []
        token1 = {"@id": f"{base}/iiif/auth/token1", "@type": "AuthTokenService1", "profile": AUTH1 + "token"}
        logout1 = {"@id": f"{base}/iiif/auth/logout", "@type": "AuthLogoutService1", "profile": AUTH1 + "logout",
                   "label": t.first(t.logout_label)}
        if signed_in and access.by_cookie and self.policy.tiers.allows(
                access.clearance(self.policy.tiers, collection_of(identifier)), tier):
            access2.append({"id": f"{base}/iiif/auth/external", "type": "AuthAccessService2", "profile": "external",
                            "label": t.signed_in, "service": [token2, logout2]})
            services1.append({"@context": AUTH1_CONTEXT, "@id": f"{base}/iiif/auth/external",
                              "@type": "AuthCookieService1", "profile": AUTH1 + "external",
                              "label": t.first(t.signed_in), "service": [token1, logout1]})
        if access.network_tier is not None and self.policy.tiers.allows(access.network_tier, tier):
            # from a network that clears this tier: access without interaction. Never where it does
            # not clear it: viewers prefer kiosk over login and would never offer the sign-in.
            access2.append({"id": f"{base}/iiif/auth/kiosk", "type": "AuthAccessService2", "profile": "kiosk",
                            "service": [token2, logout2]})
            services1.append({"@context": AUTH1_CONTEXT, "@id": f"{base}/iiif/auth/kiosk",
                              "@type": "AuthCookieService1", "profile": AUTH1 + "kiosk",
                              "label": t.first(t.heading), "service": [token1, logout1]})
        access2.append({"id": f"{base}/iiif/auth/login", "type": "AuthAccessService2", "profile": "active",
                        "label": t.login, "heading": t.heading, "note": t.note, "confirmLabel": t.confirm,
                        "service": [token2, logout2]})
        services1.append({"@context": AUTH1_CONTEXT, "@id": f"{base}/iiif/auth/login", "@type": "AuthCookieService1",
                          "profile": AUTH1 + "login", "label": t.first(t.login),
                          "header": t.first(t.heading), "description": t.first(t.note),
                          "confirmLabel": t.first(t.confirm), "failureHeader": t.first(t.failure_heading),
                          "failureDescription": t.first(t.failure_note),
                          "service": [token1, logout1]})
        # a profile (Auth 2.0 defines none for the probe; a service may have one): Mirador 4.0 reads
        # every info.json service's profile as a string and stops on one without
        probe = {"id": f"{base}/iiif/auth/probe/{quote(identifier, safe='')}", "type": "AuthProbeService2",
                 "profile": PROBE2_PROFILE, "service": access2}
        return [probe, *services1]

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/iiif/auth/probe/{identifier:path}", self.probe, methods=["GET", "HEAD"]),
            Route("/iiif/auth/login", self.login, methods=["GET", "POST"]),
            Route("/iiif/auth/kiosk", self.kiosk, methods=["GET"]),
            Route("/iiif/auth/external", self.external, methods=["GET"]),
            Route("/iiif/auth/token", self.token2, methods=["GET"]),
            Route("/iiif/auth/token1", self.token1, methods=["GET"]),
            Route("/iiif/auth/logout", self.logout, methods=["GET", "POST"]),
        ]

    async def probe(self, request: Request) -> Response:
        """The status the image would answer: 404 alike for unknown identifiers and for material of a
        hidden tier the requester may not see (no login offered: hidden material does not exist to them)."""
        identifier = request.path_params["identifier"]
        await self.policy.fresh(self.run)
        access = await self.policy.access_async(request, self.run)
        tier = self.policy.tier_of(identifier)
        collection = collection_of(identifier)
        verdict = self.policy.verdict(access, tier, collection)
        body: dict[str, Any] = {"@context": AUTH2_CONTEXT, "type": "AuthProbeResult2"}
        if not self.policy.visible(access, tier, collection) or (
                verdict is Verdict.ALLOW and not await self.run(self.exists, identifier)):
            body["status"] = 404
            return JSONResponse(body, headers=private_headers())
        if verdict is Verdict.ALLOW:
            body["status"] = 200
        else:
            body["status"] = 403 if access.has_credentials else 401
            body["heading"] = self.texts.heading
            body["note"] = self.texts.note
            limit = self.policy.degraded_limit(tier)
            if limit:
                service = f"{self.base_url(request)}/iiif/3/{quote(identifier, safe='')}"
                body["substitute"] = [{"id": f"{service}/full/!{limit},{limit}/0/default.jpg", "type": "Image",
                                       "format": "image/jpeg"}]
        return JSONResponse(body, headers=private_headers())

    async def login(self, request: Request) -> Response:
        message = ""
        if request.method == "POST":
            if not self._same_origin(request):
                # another site posting its own token here would sign the visitor in as someone else
                page = _page("Sign in here", "<p>Please sign in from this page.</p>")
                return HTMLResponse(page, status_code=403, headers=page_headers())
            try:
                form = await asyncio.wait_for(_form(request), bounds.current().form_seconds)
            except TimeoutError:
                return HTMLResponse(_page("Too slow", "<p>The form took too long to arrive.</p>"), status_code=408,
                                    headers={**page_headers(), "Connection": "close"})
            if form is None:
                return HTMLResponse(_page("Too large", "<p>That form is too large.</p>"), status_code=413,
                                    headers={**page_headers(), "Connection": "close"})
            token = form.get("token", "").strip()
            grant = await self.run(self.policy.tokens.verify, token) if token else None
            if grant is not None:
                page = _page("Signed in", f"<p>Signed in as {html.escape(grant.holder)}. This window closes "
                                          "itself; if it does not, close it and return to the viewer.</p>",
                             close=True)
                response = HTMLResponse(page, headers=page_headers())
                set_cookie(response, self.base_url(request), token, grant.seconds_left)
                return response
            message = '<p class="error">That access token is not valid, has expired or was revoked.</p>'
        t = self.texts
        body = (f"<p>{html.escape(t.first(t.note))}</p>{message}"
                '<form method="post"><label>Access token <input name="token" autocomplete="off" size="60" '
                f'autofocus></label> <button type="submit">{html.escape(t.first(t.confirm))}</button></form>')
        status = 401 if message else 200
        return HTMLResponse(_page(t.first(t.heading), body), status_code=status, headers=page_headers())

    def _same_origin(self, request: Request) -> bool:
        """A form post from our own page: its Origin (when the browser sends one) is this server."""
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser cross-site post: browsers send Origin with every form POST
        netloc = urlsplit(origin).netloc.lower()
        return netloc in {urlsplit(self.base_url(request)).netloc.lower(), request.headers.get("host", "").lower()}

    async def kiosk(self, request: Request) -> Response:
        access = await self.run(self.policy.access, request)
        if access.network_tier is None:
            page = _page("Not available here", "<p>This access is only available in the reading room.</p>",
                         close=True)
            return HTMLResponse(page, status_code=403, headers=page_headers())
        token = self.policy.tokens.kiosk(access.network_tier, KIOSK_SECONDS)
        response = HTMLResponse(_page("Reading room", "<p>Access granted.</p>", close=True),
                                headers=page_headers())
        set_cookie(response, self.base_url(request), token, KIOSK_SECONDS)
        return response

    async def external(self, request: Request) -> Response:
        """The `external` access service: viewers never open it (they go to the token service); a person who
        follows its link learns where signing in happens."""
        page = _page("Signed in elsewhere", "<p>Access to this material comes from signing in to the staff "
                                             "console, or with an access token at the sign-in page.</p>", close=True)
        return HTMLResponse(page, headers=page_headers())

    async def _token_from_cookie(self, request: Request) -> tuple[str | None, int]:
        """An access token for the viewer, derived from the cookie's token (None without one)."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None, 0
        grant = await self.run(self.policy.tokens.verify, token)
        if grant is None:
            return None, 0
        if grant.kiosk:
            access = await self.run(self.policy.access, request)
            if not self.policy.tiers.allows(access.network_tier or self.policy.tiers.public, grant.tier):
                return None, 0
        return self.policy.tokens.access_token(grant, ACCESS_TOKEN_SECONDS)

    async def _viewer_token(self, request: Request, origin: str, json: bool) -> tuple[str | None, int, bool]:
        """(token, seconds, refused): a token only for an allowed viewer origin."""
        if json:
            # fetched without postMessage: a browser names the page's origin in the Origin header
            sent = request.headers.get("origin")
            if sent is not None and not self.origin_allowed(request, sent):
                return None, 0, True
        elif not self.origin_allowed(request, origin):
            return None, 0, True
        token, expires = await self._token_from_cookie(request)
        return token, expires, False

    async def token2(self, request: Request) -> Response:
        message_id = request.query_params.get("messageId")
        origin = request.query_params.get("origin", "")
        token, expires, refused = await self._viewer_token(request, origin, message_id is None)
        if token is not None:
            msg: dict[str, Any] = {"@context": AUTH2_CONTEXT, "type": "AuthAccessToken2", "accessToken": token,
                                   "expiresIn": expires}
        elif refused:
            msg = {"@context": AUTH2_CONTEXT, "type": "AuthAccessTokenError2", "profile": "invalidOrigin",
                   "heading": self.texts.heading, "note": self.texts.origin}
        else:
            msg = {"@context": AUTH2_CONTEXT, "type": "AuthAccessTokenError2", "profile": "missingAspect",
                   "heading": self.texts.heading, "note": self.texts.note}
        return self._deliver(msg, message_id, origin)

    async def token1(self, request: Request) -> Response:
        message_id = request.query_params.get("messageId")
        origin = request.query_params.get("origin", "")
        token, expires, refused = await self._viewer_token(request, origin, message_id is None)
        if token is not None:
            msg: dict[str, Any] = {"accessToken": token, "expiresIn": expires}
        elif refused:
            msg = {"error": "invalidOrigin", "description": self.texts.first(self.texts.origin)}
        else:
            msg = {"error": "missingCredentials", "description": "Sign in first."}
        return self._deliver(msg, message_id, origin)

    def _deliver(self, msg: dict[str, Any], message_id: str | None, origin: str) -> Response:
        """postMessage to the viewer that opened us, at exactly its origin; JSON without a messageId.

        Only a page that carries a token refuses framing by others; an error may reach anyone."""
        headers = private_headers()
        if "accessToken" in msg:
            headers["Content-Security-Policy"] = self.token_frame
        if message_id is None:
            status = 200 if "accessToken" in msg else 401
            return JSONResponse(msg, status_code=status, headers=headers)
        msg = {**msg, "messageId": message_id}
        target = origin if _ORIGIN.fullmatch(origin) else "*"
        script = f"window.parent.postMessage({_script_json(msg)}, {_script_json(target)});"
        page = f"<!doctype html><html><body><script>{script}</script></body></html>"
        return HTMLResponse(page, headers=headers)

    async def logout(self, request: Request) -> Response:
        """Signs out when asked from this server's pages or a configured viewer's (Mirador 4 opens the
        logout service in a window of its own: a top-level GET); from elsewhere only after a click."""
        if not self.from_allowed_site(request):
            if request.method == "POST":
                page = _page("Sign out here", "<p>Please sign out from this page.</p>")
                return HTMLResponse(page, status_code=403, headers=page_headers())
            body = (f'<form method="post"><button type="submit">{html.escape(self.texts.first(self.texts.logout))}'
                    "</button></form>")
            return HTMLResponse(_page(self.texts.first(self.texts.logout), body), headers=page_headers())
        response = HTMLResponse(_page("Signed out", "<p>You are signed out.</p>", close=True),
                                headers=page_headers())
        secure = _secure(self.base_url(request))
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="none" if secure else "lax")
        return response


def private_headers() -> dict[str, str]:
    return {"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"}


def page_headers() -> dict[str, str]:
    """Sign-in, kiosk and logout pages: never stored, never framed by another site (clickjacking)."""
    return {**private_headers(), "Content-Security-Policy": "frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN"}


def _secure(base_url: str) -> bool:
    """Secure cookies everywhere but plain http on the local machine.

    Judged by the public base URL (the configured one, or what a trusted proxy
    forwards), not the request's own: behind a TLS proxy that sends
    `Host: 127.0.0.1:8000` the server still is https to browsers.
    """
    url = urlsplit(base_url)
    host = (url.hostname or "").lower()
    return url.scheme == "https" or host not in ("localhost", "127.0.0.1", "::1")


async def _form(request: Request) -> dict[str, str] | None:
    """An `application/x-www-form-urlencoded` body, bounded (None: too large); first value of each field."""
    limit = bounds.current().form_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def set_cookie(response: Response, base_url: str, token: str, max_age: int) -> None:
    secure = _secure(base_url)
    # SameSite=None lets the viewer's token iframe on another site send it; browsers demand Secure for that
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True, secure=secure,
                        samesite="none" if secure else "lax")


def _script_json(value: Any) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, body: str, close: bool = False) -> str:
    closing = "<script>setTimeout(function(){window.close();}, 300);</script>" if close else ""
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}.error{color:#a00}</style>"
            f"<h1>{html.escape(title)}</h1>{body}{closing}")
