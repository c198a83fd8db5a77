"""Staff sign-in through the institution's OpenID provider (Authlib; JOSE through joserfc).

The authorization code flow with PKCE (S256), `state` and `nonce`: `begin` finds the provider by discovery
and sends the browser there, keeping the state, nonce, code verifier and redirect URI in a signed cookie
that lives ten minutes and is used once; `finish` checks the answer's state (and issuer, RFC 9207), trades
the code for tokens, and checks the ID token: its signature against the provider's keys, its issuer,
audience, expiry and nonce. The person's name and roles come from the ID token, else from the userinfo
answer for the same subject.
"""

from __future__ import annotations

import hmac
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import authlib.deprecate  # noqa: F401 - first: on import it makes its own warnings "always" shown
from authlib.common.errors import AuthlibBaseError
from itsdangerous import BadData, URLSafeTimedSerializer
from joserfc.errors import JoseError

from iiif_server.console import roles

with warnings.catch_warnings():  # Authlib 1.9 prefers the httpx2 fork and says so when it finds httpx: both work
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger(__name__)

STATE_COOKIE = "iiif_staff_oidc"
STATE_PATH = "/staff/oidc"
STATE_SALT = "iiif-server-staff-oidc"
STATE_SECONDS = 600  # from leaving for the provider to coming back
LEEWAY = 60  # seconds of clock difference forgiven on the ID token's times
TIMEOUT = 10.0  # seconds for each request to the provider
CALLBACK = "/staff/oidc/callback"


class SignInRefused(Exception):
    """A sign-in that must not open a session: why, in words for the person, and the answer's status."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    roles: tuple[str, ...]


class OpenIDSignIn:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None, scopes: Sequence[str],
                 roles_claim: str, role_map: Sequence[str], label: str, secret: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.label = label
        self.roles_claim = roles_claim
        self.role_map = roles.parse_map(role_map)  # an unknown role stops the start, not a sign-in
        wanted = ["openid", *(s for s in scopes if s != "openid")]
        kwargs: dict[str, Any] = {"scope": " ".join(wanted), "code_challenge_method": "S256", "timeout": TIMEOUT}
        if client_secret is None:
            kwargs["token_endpoint_auth_method"] = "none"  # a public client: PKCE alone binds the code
        registry = OAuth()
        self.client: Any = registry.register(
            "staff", client_id=client_id, client_secret=client_secret, client_kwargs=kwargs,
            server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration")
        self.states = URLSafeTimedSerializer(secret, salt=STATE_SALT)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once; it must name the configured issuer."""
        try:
            meta: dict[str, Any] = await self.client.load_server_metadata()
        except Exception as exc:  # noqa: BLE001 - whatever the HTTP client raises: the provider is not there
            log.warning("the OpenID provider %s cannot be read: %s", self.issuer, exc)
            raise SignInRefused("The sign-in service cannot be reached just now; try again in a moment.",
                                503) from None
        named = str(meta.get("issuer", ""))
        if named.rstrip("/") != self.issuer.rstrip("/"):
            self.client.server_metadata.clear()  # read again next time: the configuration may be fixed
            log.error("the OpenID provider at %s names itself %r: check oidc_issuer", self.issuer, named)
            raise SignInRefused("The sign-in service is not the one this server is configured for.", 503)
        return meta

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """(the provider's authorization URL, the state cookie's value)."""
        await self.metadata()
        rv = await self.client.create_authorization_url(redirect_uri)
        cookie = self.states.dumps({"s": rv["state"], "n": rv["nonce"], "v": rv["code_verifier"], "r": redirect_uri})
        return str(rv["url"]), str(cookie)

    def _state(self, cookie: str | None) -> dict[str, str]:
        if not cookie or len(cookie) > 4096:
            raise SignInRefused("This sign-in was not started in this browser, or took too long; sign in again.",
                                400)
        try:
            data = self.states.loads(cookie, max_age=STATE_SECONDS)
            return {k: str(data[k]) for k in ("s", "n", "v", "r")}
        except (BadData, KeyError, TypeError):
            raise SignInRefused("This sign-in was not started in this browser, or took too long; sign in again.",
                                400) from None

    async def finish(self, params: Mapping[str, str], cookie: str | None) -> Person:
        """The person the provider signed in, checked from end to end; SignInRefused otherwise."""
        if params.get("error"):
            said = params.get("error_description") or params["error"]
            raise SignInRefused(f"The sign-in service did not sign you in ({said[:200]}).", 401)
        state = self._state(cookie)
        if not hmac.compare_digest(params.get("state", ""), state["s"]):
            raise SignInRefused("This answer does not belong to the sign-in started here (its state differs).", 400)
        meta = await self.metadata()
        if "iss" in params and params["iss"] != meta["issuer"]:  # RFC 9207: a mixed-up provider
            raise SignInRefused("This answer comes from another sign-in service than the one asked.", 400)
        code = params.get("code")
        if not code:
            raise SignInRefused("The sign-in service sent no authorization code.", 400)
        try:
            token = await self.client.fetch_access_token(redirect_uri=state["r"], code=code, code_verifier=state["v"])
        except AuthlibBaseError as exc:  # invalid_grant: a code used twice, expired, or not ours
            raise SignInRefused(f"The sign-in service refused the code ({getattr(exc, 'error', None) or exc}).",
                                401) from None
        except Exception as exc:  # noqa: BLE001 - whatever the HTTP client raises: the provider is not there
            log.warning("the OpenID provider's token endpoint failed: %s", exc)
            raise SignInRefused("The sign-in service cannot be reached just now; try again in a moment.",
                                503) from None
        if not isinstance(token, dict) or "id_token" not in token:
            raise SignInRefused("The sign-in service sent no ID token.", 401)
        claims = await self._id_token(token, state["n"], meta)
        return await self._person(claims, token, meta)

    async def _id_token(self, token: dict[str, Any], nonce: str, meta: dict[str, Any]) -> dict[str, Any]:
        options = {"iss": {"essential": True, "value": meta["issuer"]},
                   "aud": {"essential": True, "value": self.client_id}}
        try:
            claims = await self.client.parse_id_token(token, nonce=nonce, claims_options=options, leeway=LEEWAY)
        except (JoseError, AuthlibBaseError, ValueError, KeyError, TypeError) as exc:
            raise SignInRefused(f"The ID token was refused ({_why(exc)}).", 401) from None
        except Exception as exc:  # noqa: BLE001 - whatever the HTTP client raises: the provider is not there
            log.warning("the OpenID provider's keys cannot be read: %s", exc)
            raise SignInRefused("The sign-in service cannot be reached just now; try again in a moment.",
                                503) from None
        if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInRefused("The ID token names nobody.", 401)
        return dict(claims)

    async def _person(self, claims: dict[str, Any], token: dict[str, Any], meta: dict[str, Any]) -> Person:
        """Name and roles from the ID token; what it lacks from userinfo, for the same subject only."""
        found = dict(claims)
        if (roles.claim(found, self.roles_claim) is None or not _name(found)) and meta.get("userinfo_endpoint"):
            try:
                info = dict(await self.client.userinfo(token=token))
            except Exception as exc:  # noqa: BLE001 - without userinfo, the ID token's claims alone
                log.warning("the OpenID provider's userinfo failed: %s", exc)
                info = {}
            if info and info.get("sub") != claims["sub"]:
                raise SignInRefused("The sign-in service described someone else.", 401)
            found = {**info, **claims}
        held = roles.roles_of(roles.claim(found, self.roles_claim), self.role_map)
        return Person(claims["sub"], _name(found) or claims["sub"], held)


def _name(claims: dict[str, Any]) -> str | None:
    for key in ("name", "preferred_username", "email"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def _why(exc: BaseException) -> str:
    """A short reason: joserfc's error code and its description, never the token."""
    code = getattr(exc, "error", None) or type(exc).__name__
    description = getattr(exc, "description", None)
    return f"{code}: {description}" if description and description != code else str(code)
