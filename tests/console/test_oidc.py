"""Staff sign-in through a real OpenID provider (oidc-provider on loopback, tests/openid_provider.py): each
role signs in through the provider's own sign-in form and the audit log names them by the provider's subject;
a forged, expired, unsigned or misaddressed ID token, a wrong state, a replayed code and a provider that names
another issuer are refused, and never open a session. Through the ASGI app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openid_provider import CLIENT_SECRET, USERS, Provider, server_settings, sign_in_at_provider
from support import free_port
from worlds import BASE, PROXY, ROOM, STAFF, STAFF_NET, World, audit_lines, hidden, image_url, info_url, settle

from iiif_server.auth.policy import COOKIE as ACCESS_COOKIE
from iiif_server.console.oidc import STATE_COOKIE
from iiif_server.console.session import COOKIE

ROLES = {"adam": ["admin"], "anna": ["archivist"], "rita": ["reading-room"], "aude": ["auditor"]}


@pytest.fixture
def world(console_world: World, openid: Provider, tmp_path: Path) -> World:
    """The console's world, signing in through the provider; the emergency door still open."""
    console_world.settings = dataclasses.replace(console_world.settings,
                                                 **server_settings(openid, tmp_path / "client-secret"))
    return console_world


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def start(client: httpx.AsyncClient) -> str:
    """The console's redirect to the provider (its authorization URL)."""
    r = await client.get("/staff/oidc/login")
    assert r.status_code == 303, r.text
    return r.headers["location"]


async def sign_in(world: World, user: str, client: httpx.AsyncClient | None = None) -> httpx.AsyncClient:
    client = client or world.client(base_url=BASE)
    back = sign_in_at_provider(await start(client), user)
    r = await client.get(path_of(back))
    assert r.status_code == 200, r.text
    return client


def session_cookie(r: httpx.Response) -> list[str]:
    return [h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]


async def test_each_role_signs_in_through_the_provider_and_the_audit_log_names_them(world: World) -> None:
    for user, held in ROLES.items():
        client = world.client(base_url=BASE)
        r = await client.get("/staff/oidc/login")
        assert r.status_code == 303
        authorize = urlsplit(r.headers["location"])
        query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        assert authorize.netloc == urlsplit(world.settings.oidc_issuer or "").netloc
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
        assert query["response_type"] == "code" and query["client_id"] == "iiif-console"
        assert query["state"] and query["nonce"] and query["redirect_uri"] == f"{BASE}/staff/oidc/callback"
        assert set(query["scope"].split()) == {"openid", "profile", "email", "roles"}
        state = [h for h in r.headers.get_list("set-cookie") if h.startswith(STATE_COOKIE + "=")][0].lower()
        assert "httponly" in state and "samesite=lax" in state and "path=/staff/oidc" in state and "secure" in state
        back = sign_in_at_provider(r.headers["location"], user)
        assert back.startswith(f"{BASE}/staff/oidc/callback?") and "code=" in back
        done = await client.get(path_of(back))
        assert done.status_code == 200 and session_cookie(done)
        home = "/staff/audit" if held == ["auditor"] else "/staff/"
        assert f'http-equiv="refresh" content="0; url={home}"' in done.text
        page = await client.get(home)
        assert page.status_code == 200
        assert re.search(rf'<span id="who">{USERS[user][0]} \({held[0]}\)</span>', page.text), page.text
    entries = [e for e in audit_lines(world) if e.get("action") == "sign-in"]
    assert [(e["subject"], e["holder"], e["roles"], e["via"]) for e in entries] == [
        (user, USERS[user][0], held, "oidc") for user, held in ROLES.items()]


async def test_an_action_is_audited_with_the_providers_subject_and_name(world: World) -> None:
    client = await sign_in(world, "anna")
    csrf = hidden((await client.get("/staff/")).text, "csrf")
    r = await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d2", "tier": "staff"})
    assert r.status_code == 303
    entry = [e for e in audit_lines(world) if e.get("action") == "set-tier"][0]
    assert (entry["subject"], entry["holder"], entry["roles"], entry["target"]) == (
        "anna", "Anna Archivist", ["archivist"], "maps/d2")
    audit = await (await sign_in(world, "aude")).get("/staff/audit", params={"holder": "anna"})
    assert "Anna Archivist" in audit.text and "set-tier" in audit.text


async def test_an_account_without_a_role_here_is_refused(world: World) -> None:
    client = world.client(base_url=BASE)
    back = sign_in_at_provider(await start(client), "nora")
    r = await client.get(path_of(back))
    assert r.status_code == 403 and "no role" in r.text and not session_cookie(r)
    assert (await client.get("/staff/")).status_code == 303
    entry = [e for e in audit_lines(world) if e.get("action") == "sign-in-refused"][-1]
    assert entry["subject"] == "nora" and entry["reason"] == "no role"


@pytest.mark.parametrize("mode", ["forged", "expired", "wrong-issuer", "wrong-audience", "wrong-nonce",
                                  "unsigned"])
async def test_a_bad_id_token_is_refused(world: World, openid: Provider, mode: str) -> None:
    client = world.client(base_url=BASE)
    back = sign_in_at_provider(await start(client), "adam")
    openid.tamper(mode)
    r = await client.get(path_of(back))
    assert r.status_code == 401, (mode, r.status_code, r.text)
    assert "ID token was refused" in r.text and not session_cookie(r)
    assert not [h for h in r.headers.get_list("set-cookie") if h.startswith(ACCESS_COOKIE + "=")]
    assert (await client.get("/staff/")).status_code == 303
    entry = audit_lines(world)[-1]
    assert entry["action"] == "sign-in-refused" and "ID token was refused" in entry["reason"]
    assert not [e for e in audit_lines(world) if e.get("action") == "sign-in"]


async def test_a_wrong_state_is_refused_before_the_code_is_spent(world: World) -> None:
    client = world.client(base_url=BASE)
    back = sign_in_at_provider(await start(client), "adam")
    state_cookie = client.cookies.get(STATE_COOKIE)
    wrong = re.sub(r"state=[^&]+", "state=not-the-state-sent", back)
    r = await client.get(path_of(wrong))
    assert r.status_code == 400 and "state" in r.text and not session_cookie(r)
    assert client.cookies.get(STATE_COOKIE) is None  # used once, even when refused
    # no state cookie at all (the answer reached another browser): refused too
    other = world.client(base_url=BASE)
    assert (await other.get(path_of(back))).status_code == 400
    # the code was never sent to the provider: with the right state it still signs in
    again = world.client(base_url=BASE)
    assert (await again.get(path_of(back), headers={"Cookie": f"{STATE_COOKIE}={state_cookie}"})).status_code == 200


async def test_a_replayed_code_is_refused(world: World) -> None:
    client = world.client(base_url=BASE)
    back = sign_in_at_provider(await start(client), "adam")
    state_cookie = client.cookies.get(STATE_COOKIE)
    assert (await client.get(path_of(back))).status_code == 200
    # again in the same browser: its state was used
    assert (await client.get(path_of(back))).status_code == 400
    # with a copy of the state cookie too: the provider refuses the code the second time
    thief = world.client(base_url=BASE)
    r = await thief.get(path_of(back), headers={"Cookie": f"{STATE_COOKIE}={state_cookie}"})
    assert r.status_code == 401 and "invalid_grant" in r.text and not session_cookie(r)
    assert (await thief.get("/staff/")).status_code == 303


async def test_an_error_from_the_provider_opens_no_session(world: World) -> None:
    client = world.client(base_url=BASE)
    await start(client)
    r = await client.get("/staff/oidc/callback", params={"error": "access_denied",
                                                         "error_description": "<b>End-User aborted</b>"})
    assert r.status_code == 401 and "End-User aborted" in r.text and "<b>" not in r.text


async def test_a_provider_that_names_another_issuer_or_is_away_is_refused_without_a_500(world: World,
                                                                                         openid: Provider) -> None:
    port = urlsplit(openid.issuer).port
    # the same provider reached under another name: its discovery document names 127.0.0.1, not localhost
    renamed = world.client(world.app(oidc_issuer=f"http://localhost:{port}"), base_url=BASE)
    r = await renamed.get("/staff/oidc/login")
    assert r.status_code == 503 and "not the one this server is configured for" in r.text
    away = world.client(world.app(oidc_issuer=f"http://127.0.0.1:{free_port()}"), base_url=BASE)
    r = await away.get("/staff/oidc/login")
    assert r.status_code == 503 and "cannot be reached" in r.text


async def test_the_emergency_door_can_be_switched_off(world: World) -> None:
    closed = world.app(token_sign_in=False)
    client = world.client(closed, peer=PROXY, base_url=BASE)
    form = await client.get("/staff/login", headers={"X-Forwarded-For": STAFF_NET})
    assert form.status_code == 200
    assert 'href="/staff/oidc/login"' in form.text and "the archive&#39;s account" in form.text
    assert 'name="token"' not in form.text and 'value="network"' not in form.text
    for data in ({"token": world.token("staff")}, {"via": "network"}):
        r = await client.post("/staff/login", data=data, headers={"X-Forwarded-For": STAFF_NET})
        assert r.status_code == 403 and not session_cookie(r)
    # open (the default), both stand beside the provider's button
    opened = world.client(world.app(), base_url=BASE)
    form = await opened.get("/staff/login")
    assert 'href="/staff/oidc/login"' in form.text and 'name="token"' in form.text
    with pytest.raises(ValueError, match="nobody could sign in"):
        world.app(token_sign_in=False, oidc_issuer=None)


async def test_a_console_session_clears_the_viewers_as_its_role_says_and_sign_out_ends_that(world: World) -> None:
    expected = {"adam": (200, 200), "anna": (200, 200), "rita": (200, 404), "aude": (401, 404)}
    for user, (room, staff) in expected.items():
        client = await sign_in(world, user)
        assert (await client.get(image_url(ROOM))).status_code == room, user
        assert (await client.get(image_url(STAFF))).status_code == staff, user
        # a viewer reading info.json with the cookie is told to go straight to the token service
        info = await client.get(info_url(ROOM))
        first = info.json()["service"][1] if room == 200 else None
        assert room != 200 or (first["profile"], first["@id"]) == (
            "http://iiif.io/api/auth/1/external", "https://testserver/iiif/auth/external"), info.text
        assert room != 200 or info.json()["service"][0]["service"][0]["profile"] == "external"
        assert "external" not in (await world.client(base_url=BASE).get(info_url(ROOM))).text
        # the IIIF Auth 2.0 token service hands a viewer of this site a token from the same session
        r = await client.get("/iiif/auth/token", headers={"Origin": "https://testserver"})
        if room == 200:
            token = r.json()["accessToken"]
            viewer = world.client(base_url=BASE)
            assert (await viewer.get(image_url(ROOM), headers={"Authorization": f"Bearer {token}"})
                    ).status_code == 200
        else:
            assert r.status_code == 401
    client = await sign_in(world, "rita")
    token = (await client.get("/iiif/auth/token", headers={"Origin": "https://testserver"})).json()["accessToken"]
    access = client.cookies.get(ACCESS_COOKIE)
    csrf = hidden((await client.get("/staff/")).text, "csrf")
    r = await client.post("/staff/logout", data={"csrf": csrf})
    assert r.status_code == 303 and client.cookies.get(ACCESS_COOKIE) is None
    await settle()
    viewer = world.client(base_url=BASE)
    assert (await viewer.get(image_url(ROOM), headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await viewer.get(image_url(ROOM), headers={"Cookie": f"{ACCESS_COOKIE}={access}"})).status_code == 401


async def test_the_client_secret_is_never_shown_or_logged(world: World, tmp_path: Path) -> None:
    seen: list[str] = []
    for user in ("adam", "nora"):
        client = world.client(base_url=BASE)
        r = await client.get("/staff/oidc/login")
        seen += [r.text, str(r.headers)]
        back = sign_in_at_provider(r.headers["location"], user)
        r = await client.get(path_of(back))
        seen += [r.text, str(r.headers)]
    seen.append(repr(world.settings))
    logs: list[Any] = [p.read_text() for p in world.settings.data_dir.rglob("*") if p.is_file()]
    logs.append(Path(world.settings.audit_log or "").read_text())
    for text in seen + logs:
        assert CLIENT_SECRET not in text
