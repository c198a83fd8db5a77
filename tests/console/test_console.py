"""The staff console (/staff/): sessions, CSRF, tiers, tokens, withdrawals, the audit log, and paging at scale.

Through the ASGI app on SQLite and PostgreSQL, with the catalogue and image files of the access tests' world
(tests/worlds.py).
"""

from __future__ import annotations

import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from bulk import fill
from sqlalchemy import event
from support import page_tier
from worlds import (
    BASE,
    OUTSIDE,
    PROXY,
    SECRET,
    STAFF_NET,
    World,
    audit_lines,
    bearer,
    console_routes,
    hidden,
    image_url,
    settle,
    sign_in,
)

from iiif_server.console.session import COOKIE, Sessions


@pytest.fixture
def world(console_world: World) -> World:
    """The staff console's world (tests/worlds.py): staff hidden, a staff network, an audit log."""
    return console_world


def fill_path(path: str, token_id: str) -> str:
    return path.replace("{cid}", "maps").replace("{doc}", "d1").replace("{tid}", token_id)


# -- sessions ------------------------------------------------------------------------------------


async def test_no_console_route_answers_without_a_staff_session(world: World) -> None:
    tid = world.store.issue("reading-room", "Partner", 1)[1].id
    routes = console_routes(world)
    assert len(routes) >= 14, routes
    reading_room = world.token("reading-room")
    forged = Sessions("another-signing-key-that-no-replica-uses-9876543210")
    foreign = forged.serializer.dumps(forged.new("token", tid, "Mallory", int(time.time()) + 3600).payload())
    attempts: list[dict[str, str]] = [{}, {"Authorization": f"Bearer {world.token('staff')}"},
                                      {"Cookie": f"iiif_access={world.token('staff')}"},
                                      {"Cookie": f"{COOKIE}=garbage"}, {"Cookie": f"{COOKIE}={foreign}"},
                                      {"Cookie": f"iiif_access={reading_room}"}]
    client = world.client(base_url=BASE)
    for method, path in routes:
        if path in ("/staff/login", "/staff", "/staff/oidc/login", "/staff/oidc/callback"):
            continue  # the ways in (without a provider set up, the OpenID ones answer 404)
        for headers in attempts:
            r = await client.request(method, fill_path(path, tid), headers=headers,
                                     data={"target": "maps/d1", "tier": "staff", "csrf": "x", "reason": "r",
                                           "holder": "h", "days": "1"} if method == "POST" else None)
            if method == "GET":
                assert r.status_code == 303 and r.headers["location"] == "/staff/login", (path, headers, r.status_code)
            else:
                assert r.status_code == 403, (path, headers, r.status_code)
            assert "maps" not in r.text and "Partner" not in r.text, (path, r.text)
            assert r.headers["cache-control"] == "no-store"
    # nothing happened
    assert page_tier(world.catalogue, "maps/d1/p1") == "public"
    assert [t.revoked for t in world.store.list() if t.id == tid] == [None]
    assert (world.settings.images / "maps" / "d1" / "p1.tif").exists()
    assert not [e for e in audit_lines(world) if e.get("action") in ("set-tier", "withdraw", "token-revoke")]
    # the redirect itself and the sign-in page answer, without anything of the catalogue
    assert (await client.get("/staff")).status_code == 308
    login = await client.get("/staff/login")
    assert login.status_code == 200 and "maps" not in login.text


async def test_only_a_staff_token_signs_in(world: World) -> None:
    client = world.client(base_url=BASE)
    for token in (world.token("reading-room"), world.token("staff", collections=("maps",)), "garbage",
                  world.store.kiosk("staff", 60)):
        form = await client.get("/staff/login")
        r = await client.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "token": token})
        assert r.status_code == 401, r.text
        assert not [h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "=")]
    assert (await client.get("/staff/")).status_code == 303
    assert [e.get("action") for e in audit_lines(world)] == ["sign-in-refused"] * 4


async def test_the_staff_network_signs_in_without_a_token_and_only_from_there(world: World) -> None:
    outside = world.client(base_url=BASE)
    form = await outside.get("/staff/login")
    assert 'value="network"' not in form.text
    r = await outside.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "via": "network"})
    assert r.status_code == 401
    inside = world.client(peer=STAFF_NET, base_url=BASE)
    form = await inside.get("/staff/login")
    assert 'value="network"' in form.text
    r = await inside.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "via": "network"})
    assert r.status_code == 303
    assert (await inside.get("/staff/")).status_code == 200
    # the same session cookie from another address is no session
    stolen = world.client(base_url=BASE)
    stolen.cookies = inside.cookies
    assert (await stolen.get("/staff/")).status_code == 303
    entry = [e for e in audit_lines(world) if e.get("action") == "sign-in"][0]
    assert entry["via"] == "network" and entry["client"] == STAFF_NET


async def test_a_client_beside_the_proxy_cannot_sign_in_as_the_staff_network(world: World) -> None:
    """The one-click network sign-in opens the whole console: a forwarded address counts only when the
    proxy itself forwards it."""
    spoof = {"X-Forwarded-For": STAFF_NET}
    neighbour = world.client(peer="10.0.0.7", base_url=BASE)  # beside the proxy, not the proxy
    form = await neighbour.get("/staff/login", headers=spoof)
    assert 'value="network"' not in form.text
    r = await neighbour.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "via": "network"},
                             headers=spoof)
    assert r.status_code == 401
    assert (await neighbour.get("/staff/", headers=spoof)).status_code == 303
    proxied = world.client(peer=PROXY, base_url=BASE)
    form = await proxied.get("/staff/login", headers=spoof)
    r = await proxied.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "via": "network"},
                           headers=spoof)
    assert r.status_code == 303


async def test_a_session_ends_when_its_token_is_revoked_or_it_idles() -> None:
    sessions = Sessions(SECRET, idle=1)
    s = sessions.new("token", "abc", "Archivist", int(time.time()) + 3600)
    cookie = sessions.serializer.dumps(s.payload())
    assert sessions.read(cookie) == s
    time.sleep(2.1)
    assert sessions.read(cookie) is None
    expired = sessions.new("token", "abc", "Archivist", int(time.time()) - 1)
    assert sessions.read(sessions.serializer.dumps(expired.payload())) is None


async def test_revoking_the_staff_token_ends_its_session(world: World) -> None:
    client, _ = await sign_in(world)
    row = [t for t in world.store.list() if t.tier == "staff"][0]
    world.store.revoke(row.id)
    assert (await client.get("/staff/")).status_code == 303


async def test_sign_out_ends_the_session(world: World) -> None:
    client, csrf = await sign_in(world)
    r = await client.post("/staff/logout", data={"csrf": csrf})
    assert r.status_code == 303
    assert (await client.get("/staff/")).status_code == 303


# -- CSRF ----------------------------------------------------------------------------------------------


async def test_forms_without_the_session_csrf_value_are_refused(world: World) -> None:
    client, csrf = await sign_in(world)
    other, other_csrf = await sign_in(world)
    assert other_csrf != csrf
    forms = [("/staff/tier", {"target": "maps", "tier": "staff"}),
             ("/staff/withdraw", {"target": "maps/d1/p1", "reason": "asked"}),
             ("/staff/tokens", {"tier": "staff", "holder": "Mallory", "days": "1"}),
             ("/staff/logout", {})]
    for path, data in forms:
        for sent in (None, "", "wrong", other_csrf):
            body = data if sent is None else {**data, "csrf": sent}
            r = await client.post(path, data=body)
            assert r.status_code == 403, (path, sent, r.status_code)
        # the right value from another site's page is refused too
        r = await client.post(path, data={**data, "csrf": csrf}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        r = await client.post(path, data={**data, "csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
    assert page_tier(world.catalogue, "maps/d1/p1") == "public"
    assert (world.settings.images / "maps" / "d1" / "p1.tif").exists()
    assert not [t for t in world.store.list() if t.holder == "Mallory"]
    assert (await client.get("/staff/")).status_code == 200  # still signed in
    # this console's own pages: Chromium sends `Origin: null` where the referrer policy is no-referrer,
    # and Sec-Fetch-Site says same-origin; older browsers send the origin alone
    for headers in ({"Origin": "https://testserver"}, {"Origin": "null", "Sec-Fetch-Site": "same-origin"}):
        r = await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d2", "tier": "staff"},
                              headers=headers)
        assert r.status_code == 303, (headers, r.text)
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d2", "tier": "staff"},
                              headers={"Origin": "null"})).status_code == 403
    # the sign-in form: without its cookie's value, no session
    fresh = world.client(base_url=BASE)
    r = await fresh.post("/staff/login", data={"csrf": "made-up", "token": world.token("staff")})
    assert r.status_code == 401 and (await fresh.get("/staff/")).status_code == 303


# -- tiers ------------------------------------------------------------------------------------------------


async def test_a_tier_change_confirms_what_changes_and_applies_to_anonymous_requests(world: World) -> None:
    anonymous = world.client(world.app())  # another replica: the change reaches it through the catalogue
    assert (await anonymous.get(image_url("maps/d1/p1"))).status_code == 200
    client, csrf = await sign_in(world)
    confirm = await client.get("/staff/tier", params={"target": "maps/d1", "tier": "reading-room"})
    assert confirm.status_code == 200
    text = re.sub(r"<[^>]+>", "", confirm.text)
    assert "From public to reading-room" in text, text
    assert "1 page becomes reading-room" in text and "1 page keeps a tier of its own" in text
    assert "reading-room network (192.0.2.0/24" in text
    assert (await anonymous.get(image_url("maps/d1/p1"))).status_code == 200  # the confirmation changes nothing
    r = await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d1", "tier": "reading-room"})
    assert r.status_code == 303 and r.headers["location"] == "/staff/collections/maps/d1?changed=1"
    view = await client.get(r.headers["location"])
    assert "Tier <span class=\"tier tier-reading-room\">reading-room</span>" in view.text
    await settle()
    assert (await anonymous.get(image_url("maps/d1/p1"))).status_code == 401
    assert (await anonymous.get(image_url("maps/d1/p1"), headers=bearer(world.token("reading-room")))).status_code \
        == 200
    entry = [e for e in audit_lines(world) if e.get("action") == "set-tier"][0]
    assert entry["target"] == "maps/d1" and entry["tier"] == "reading-room" and entry["previous"] == "public"
    assert entry["holder"] == "Partner archive" and entry["client"] == OUTSIDE and entry["time"].endswith("Z")


async def test_collection_and_page_tiers_change_too(world: World) -> None:
    client, csrf = await sign_in(world)
    confirm = await client.get("/staff/tier", params={"target": "letters", "tier": "public"})
    assert "everyone, without signing in" in confirm.text
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "letters", "tier": "public"})
            ).status_code == 303
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d1/p1", "tier": "staff"})
            ).status_code == 303
    assert page_tier(world.catalogue, "letters/d1/p1") == "public"
    assert page_tier(world.catalogue, "maps/d1/p1") == "staff"
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/nope", "tier": "staff"})
            ).status_code == 404
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "maps", "tier": "secret"})
            ).status_code == 400


async def test_document_view_shows_pages_tiers_and_thumbnails(world: World) -> None:
    client, _ = await sign_in(world)
    page = await client.get("/staff/collections/maps/d1")
    assert page.status_code == 200
    assert "/iiif/3/maps%2Fd1%2Fp1/full/!200,200/0/default.jpg" in page.text
    assert 'id="page-p2"' in page.text and "tier-staff" in page.text
    # the console's browser loads restricted thumbnails: the staff token came as the access cookie
    thumb = await client.get("/iiif/3/maps%2Fd1%2Fp2/full/!200,200/0/default.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert (await client.get("/staff/collections/maps/none")).status_code == 404


# -- tokens --------------------------------------------------------------------------------------------------


async def test_issue_a_token_use_it_and_revoke_it(world: World) -> None:
    client, csrf = await sign_in(world)
    r = await client.post("/staff/tokens", data={"csrf": csrf, "tier": "reading-room", "holder": "Dr. <Reader>",
                                                 "days": "7", "collections": "letters"})
    assert r.status_code == 200
    assert "Dr. &lt;Reader&gt;" in r.text and "<Reader>" not in r.text
    assert 'data-copy="token"' in r.text and "script-src 'self'" in r.headers["content-security-policy"]
    script = await client.get("/staff/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "clipboard" in script.text
    token = unescape(re.search(r'id="token" readonly value="([^"]+)"', r.text).group(1))
    viewer = world.client(world.app())
    assert (await viewer.get(image_url("letters/d1/p1"), headers=bearer(token))).status_code == 200
    assert (await viewer.get(image_url("diaries/d1/p1"), headers=bearer(token))).status_code == 403
    listing = await client.get("/staff/tokens")
    tid = world.store.verify(token).id
    row = re.search(rf'<tr id="token-{tid}">.*?</tr>', listing.text, re.S).group(0)
    assert "active" in row and "Revoke" in row and token not in listing.text  # shown once, never listed
    r = await client.post(f"/staff/tokens/{tid}/revoke", data={"csrf": csrf})
    assert r.status_code == 303
    await settle()
    assert (await viewer.get(image_url("letters/d1/p1"), headers=bearer(token))).status_code == 401
    listing = await client.get("/staff/tokens")
    row = re.search(rf'<tr id="token-{tid}">.*?</tr>', listing.text, re.S).group(0)
    assert "revoked" in row and "Revoke" not in row
    actions = [(e.get("action"), e.get("target")) for e in audit_lines(world)]
    assert ("token-issue", tid) in actions and ("token-revoke", tid) in actions
    assert token not in Path(world.settings.audit_log or "").read_text()  # tokens are never logged
    bad = await client.post("/staff/tokens", data={"csrf": csrf, "tier": "staff", "holder": "x", "days": "1",
                                                   "collections": "nowhere"})
    assert bad.status_code == 400 and "nowhere" in bad.text
    assert (await client.post("/staff/tokens/unknown/revoke", data={"csrf": csrf})).status_code == 404


async def test_networks_are_shown_with_what_they_clear(world: World) -> None:
    client, _ = await sign_in(world)
    page = await client.get("/staff/networks")
    text = re.sub(r"<[^>]+>", "|", page.text)
    assert "reading-room||192.0.2.0/24, 2001:db8:1::/48||public, reading-room" in text, text
    assert "staff||198.51.100.0/24||public, reading-room, staff" in text


# -- withdrawals --------------------------------------------------------------------------------------------


async def test_withdraw_a_page_and_a_document_with_a_reason(world: World) -> None:
    client, csrf = await sign_in(world)
    anonymous = world.client(world.app())
    assert (await anonymous.get(image_url("maps/d1/p1"))).status_code == 200
    confirm = await client.get("/staff/withdraw", params={"target": "maps/d1/p1"})
    assert confirm.status_code == 200 and "Reason" in confirm.text
    assert (await client.post("/staff/withdraw", data={"csrf": csrf, "target": "maps/d1/p1"})).status_code == 400
    r = await client.post("/staff/withdraw", data={"csrf": csrf, "target": "maps/d1/p1", "reason": "Privacy request"})
    assert r.status_code == 200 and "withdrawn (0 documents, 1 page)" in r.text
    assert (await anonymous.get(image_url("maps/d1/p1"))).status_code == 404
    assert not (world.settings.images / "maps" / "d1" / "p1.tif").exists()
    r = await client.post("/staff/withdraw", data={"csrf": csrf, "target": "maps/d2", "reason": "Loan ended"})
    assert r.status_code == 200
    _, activities = world.catalogue.activities(1, 10**9, public_only=False)
    assert ("Delete", "Manifest", "maps", "d2") in [(a.type, a.object_type, a.collection_id, a.document_ident)
                                                     for a in activities]
    assert world.catalogue.document("maps", "d2") is None and world.catalogue.document("maps", "d1") is not None
    entries = [e for e in audit_lines(world) if e.get("action") == "withdraw"]
    assert [(e["target"], e["reason"]) for e in entries] == [("maps/d1/p1", "Privacy request"),
                                                             ("maps/d2", "Loan ended")]
    assert (await client.post("/staff/withdraw", data={"csrf": csrf, "target": "maps/d2", "reason": "again"})
            ).status_code == 404


# -- the archive's size ---------------------------------------------------------------------------------------


async def test_a_200k_document_collection_lists_in_pages_by_position(world: World) -> None:
    fill(world.catalogue, "big", 200_000, 1)
    client, _ = await sign_in(world)
    statements: list[str] = []
    offsets: list[Any] = []
    engine = world.apps[0].state.catalogue.engine

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append(statement.lower())
        if "offset" in statement.lower():  # SQLite's LIMIT always comes with an OFFSET, of 0 here
            offsets.append(parameters[-1] if statement.lower().rstrip().endswith("offset ?") else statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        last = await client.get("/staff/collections/big", params={"from": "199950"})
        first = await client.get("/staff/collections/big")
        found = await client.get("/staff/collections/big", params={"find": "doc19999"})
        overview = await client.get("/staff/")
        confirm = await client.get("/staff/tier", params={"target": "big", "tier": "staff"})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    idents = re.findall(r'/staff/collections/big/(doc\d+)"', last.text)
    assert idents == [f"doc{n}" for n in range(199_950, 200_000)]
    assert "199951–200000 of 200000" in last.text and 'rel="next"' not in last.text
    assert re.findall(r'/staff/collections/big/(doc\d+)"', first.text)[:2] == ["doc0", "doc1"]
    assert 'href="?from=50"' in first.text and 'href="?from=199950"' in first.text
    assert re.findall(r'/staff/collections/big/(doc\d+)"', found.text)[:3] == ["doc19999", "doc199990", "doc199991"]
    assert "200000" in overview.text
    assert "200000 pages in 200000 documents become staff" in re.sub(r"<[^>]+>", "", confirm.text)
    assert statements
    assert set(offsets) <= {0}, offsets
    # counts come from collections.document_count / image_count, never from counting documents or images
    assert not [s for s in statements if "count(" in s and "tier is not null" not in s], statements
