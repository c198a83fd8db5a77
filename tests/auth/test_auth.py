"""Access control, adversarially: tokens, networks, proxies, degraded access and the IIIF auth services.

Everything goes through the ASGI app with a chosen peer address; every test that
touches the catalogue runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeSerializer
from worlds import (
    HEIGHT,
    MAPPED_V4,
    OTHER_SECRET,
    OUTSIDE,
    PROXY,
    PUBLIC,
    READING_ROOM_V4,
    READING_ROOM_V6,
    ROOM,
    ROOM_DOC,
    ROOM_OTHER,
    SECRET,
    STAFF,
    STAFF_PAGE,
    VAULT,
    WIDTH,
    World,
    assert_private,
    bearer,
    cookie,
    image_url,
    info_url,
    jpeg_size,
    posted_message,
    set_cookies,
    settle,
)

from iiif_server import cli as cli_module
from iiif_server import config
from iiif_server.auth.snapshot import MAX_AGE
from iiif_server.auth.tokens import SALT, TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection

# -- images: who gets what ------------------------------------------------------------


async def test_restricted_image_without_credentials_is_401(world: World) -> None:
    c = world.client()
    for identifier in (ROOM, STAFF, ROOM_DOC, STAFF_PAGE, VAULT):
        r = await c.get(image_url(identifier))
        assert r.status_code == 401, (identifier, r.status_code, r.text)
        assert not r.headers["content-type"].startswith("image/")
    assert (await c.get(image_url(PUBLIC))).status_code == 200


async def test_refusals_are_not_stored_by_shared_caches(world: World) -> None:
    r = await world.client().get(image_url(ROOM))
    assert r.status_code == 401
    assert_private(r)
    assert "no-store" in r.headers["cache-control"]


async def test_token_of_too_low_tier_is_403(world: World) -> None:
    c = world.client()
    token = world.token("reading-room")
    for identifier in (STAFF, STAFF_PAGE, VAULT):
        assert (await c.get(image_url(identifier), headers=bearer(token))).status_code == 403, identifier
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 200


async def test_token_for_another_collection_is_403(world: World) -> None:
    c = world.client()
    token = world.token("staff", collections=("diaries",))
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 403
    assert (await c.get(image_url(VAULT), headers=bearer(token))).status_code == 403
    assert (await c.get(image_url(ROOM_OTHER), headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("send", [bearer, cookie], ids=["bearer", "cookie"])
async def test_right_token_is_200(world: World, send: Any) -> None:
    c = world.client()
    room, staff = world.token("reading-room"), world.token("staff")
    for identifier, token in ((ROOM, room), (ROOM_DOC, room), (STAFF, staff), (STAFF_PAGE, staff), (VAULT, staff)):
        r = await c.get(image_url(identifier), headers=send(token))
        assert r.status_code == 200, (identifier, r.status_code, r.text)
        assert r.headers["content-type"] == "image/jpeg"
        assert jpeg_size(r.content) == (100, 75)
        assert_private(r)


async def test_bearer_scheme_is_case_insensitive(world: World) -> None:
    r = await world.client().get(image_url(ROOM), headers={"Authorization": f"bEaReR {world.token()}"})
    assert r.status_code == 200


@pytest.mark.parametrize("peer", [READING_ROOM_V4, READING_ROOM_V6, MAPPED_V4], ids=["ipv4", "ipv6", "mapped"])
async def test_configured_network_is_200(world: World, peer: str) -> None:
    c = world.client(peer=peer)
    r = await c.get(image_url(ROOM))
    assert r.status_code == 200, r.text
    assert_private(r)
    # the network clears its tier, not more: without credentials of its own it is 403 above that
    assert (await c.get(image_url(STAFF))).status_code == 403


async def test_addresses_outside_the_networks_are_401(world: World) -> None:
    for peer in (OUTSIDE, "::ffff:203.0.113.7", "2001:db8:2::5", "192.0.3.5", "192.0.2.5.nip.io", "unix:sock"):
        assert (await world.client(peer=peer).get(image_url(ROOM))).status_code == 401, peer


def _tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its signature kept."""
    payload, signature = token.rsplit(".", 1)
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    data = json.loads(zlib.decompress(raw) if compressed else raw)
    data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{encoded}.{signature}"


def _payload(token: str) -> dict[str, Any]:
    return dict(URLSafeSerializer(SECRET, salt=SALT).loads(token))


BAD_TOKENS = ["forged", "forged-no-salt", "tampered-tier", "tampered-expiry", "tampered-id", "expired",
              "never-issued", "oversized", "garbage", "dots", "empty-signature", "non-json", "kiosk-elsewhere"]


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_tokens_count_as_no_credentials(world: World, kind: str) -> None:
    good = world.token("reading-room")
    payload = _payload(good)
    other_row = world.store.issue("reading-room", "someone else", 1)[1]
    bad = {
        "forged": lambda: URLSafeSerializer(OTHER_SECRET, salt=SALT).dumps({**payload, "tier": "staff"}),
        "forged-no-salt": lambda: URLSafeSerializer(SECRET).dumps({**payload, "tier": "staff"}),
        "tampered-tier": lambda: _tampered(good, tier="staff"),
        "tampered-expiry": lambda: _tampered(world.token(days=-1), exp=payload["exp"] + 86400),
        "tampered-id": lambda: _tampered(good, id=other_row.id),
        "expired": lambda: world.token(days=-1 / 86400),
        "never-issued": lambda: URLSafeSerializer(SECRET, salt=SALT).dumps({**payload, "id": "0123456789abcdef"}),
        # genuinely signed, but over the size limit (incompressible, or the serializer would shrink it)
        "oversized": lambda: world.token(holder=secrets.token_urlsafe(6000)),
        "garbage": lambda: "not-a-token",
        "dots": lambda: "...",
        "empty-signature": lambda: good.rsplit(".", 1)[0] + ".",
        "non-json": lambda: URLSafeSerializer(SECRET, salt=SALT).dumps(["not", "a", "dict"]),
        "kiosk-elsewhere": lambda: world.store.kiosk("reading-room", 3600),
    }[kind]()
    assert bad != good
    c = world.client()
    for send in (bearer, cookie):
        for url in (image_url(ROOM), image_url(STAFF), info_url(ROOM)):
            r = await c.get(url, headers=send(bad))
            assert r.status_code == 401, (kind, send.__name__, url, r.status_code, r.text)
        # and the genuine one still works, so it is the token that was refused
        assert (await c.get(image_url(ROOM), headers=send(good))).status_code == 200


async def test_oversized_authorization_garbage_is_401(world: World) -> None:
    c = world.client()
    for junk in ("A" * 100_000, "é" * 10, "\x7f", "a.b.c.d.e"):
        headers = {"Authorization": "Bearer " + junk}
        r = await c.get(image_url(ROOM), headers={k: v.encode("utf-8") for k, v in headers.items()})
        assert r.status_code == 401, (junk[:20], r.status_code)


async def test_revocation_on_another_replica_applies_within_a_second(world: World) -> None:
    c = world.client()
    token, row = world.store.issue("reading-room", "Partner", 1)
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 200
    assert (await c.get(image_url(ROOM), headers=cookie(token))).status_code == 200
    replica = TokenStore(world.replica(), SECRET)
    assert replica.revoke(row.id) is True
    await settle()
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 401
    assert (await c.get(image_url(ROOM), headers=cookie(token))).status_code == 401
    assert (await c.get(info_url(ROOM), headers=bearer(token))).status_code == 401
    assert replica.revoke("no-such-token") is False


# -- trusted proxies ----------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": READING_ROOM_V4},
    {"X-Forwarded-For": f"{READING_ROOM_V4}, {PROXY}"},
    {"Forwarded": f"for={READING_ROOM_V4}"},
    {"Forwarded": f'for="[{READING_ROOM_V6}]:4711"'},
], ids=["xff", "xff-chain", "forwarded", "forwarded-v6"])
async def test_forwarding_headers_from_an_untrusted_peer_are_ignored(world: World, headers: dict[str, str]) -> None:
    r = await world.client(peer=OUTSIDE).get(image_url(ROOM), headers=headers)
    assert r.status_code == 401


TRUSTED_PROXY_CASES = [
    ({"X-Forwarded-For": READING_ROOM_V4}, 200),
    ({"X-Forwarded-For": f"{OUTSIDE}, {READING_ROOM_V4}"}, 200),
    ({"X-Forwarded-For": f"{READING_ROOM_V4}, {OUTSIDE}"}, 401),  # client-supplied left part
    ({"X-Forwarded-For": f"{READING_ROOM_V4}, {OUTSIDE}, 10.9.9.9"}, 401),  # through two proxies
    ({"X-Forwarded-For": f"{OUTSIDE}, {READING_ROOM_V4}, 10.9.9.9"}, 200),
    ({"X-Forwarded-For": f"{READING_ROOM_V4},{OUTSIDE}"}, 401),
    ({"X-Forwarded-For": MAPPED_V4}, 200),
    ({"Forwarded": f"for={READING_ROOM_V4}"}, 200),
    ({"Forwarded": f'for="[{READING_ROOM_V6}]:4711"'}, 200),
    ({"Forwarded": f"for={READING_ROOM_V4}, for={OUTSIDE}"}, 401),
    ({"Forwarded": f"for={READING_ROOM_V4};proto=https, for={OUTSIDE};proto=https"}, 401),
    ({"Forwarded": f"for={OUTSIDE}, for={READING_ROOM_V4}"}, 200),
    ({"Forwarded": f'for={READING_ROOM_V4}, for="{OUTSIDE}:1234"'}, 401),
    ({"Forwarded": f"for={READING_ROOM_V4}, for=unknown"}, 401),
    ({"X-Forwarded-For": f"{READING_ROOM_V4}, not-an-address"}, 401),
    ({}, 401),  # the proxy itself is no reading room
    ({"Forwarded": f"for={READING_ROOM_V4}", "X-Forwarded-For": READING_ROOM_V4}, 200),  # both agree
    ({"Forwarded": "proto=https;host=images.example.org", "X-Forwarded-For": READING_ROOM_V4}, 200),
]


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_counts(world: World) -> None:
    c = world.client(peer=PROXY)
    for headers, status in TRUSTED_PROXY_CASES:
        r = await c.get(image_url(ROOM), headers=headers)
        assert r.status_code == status, (headers, r.status_code)


@pytest.mark.parametrize("headers", [
    # the proxy appends to X-Forwarded-For and passes the client's own Forwarded header on
    {"X-Forwarded-For": OUTSIDE, "Forwarded": f"for={READING_ROOM_V4}"},
    # the proxy writes Forwarded and passes the client's X-Forwarded-For on
    {"Forwarded": f"for={OUTSIDE}", "X-Forwarded-For": READING_ROOM_V4},
], ids=["proxy-uses-xff", "proxy-uses-forwarded"])
async def test_the_other_forwarding_header_cannot_spoof_a_reading_room(world: World, headers: dict[str, str]) -> None:
    r = await world.client(peer=PROXY).get(image_url(ROOM), headers=headers)
    assert r.status_code == 401


async def test_repeated_forwarding_header_lines_count_as_one_list(world: World) -> None:
    c = world.client(peer=PROXY)
    # the client's line first, the proxy's line after it: the proxy's (right-most) entry counts
    spoof = [("x-forwarded-for", READING_ROOM_V4), ("x-forwarded-for", OUTSIDE)]
    assert (await c.get(image_url(ROOM), headers=spoof)).status_code == 401
    spoof = [("forwarded", f"for={READING_ROOM_V4}"), ("forwarded", f"for={OUTSIDE}")]
    assert (await c.get(image_url(ROOM), headers=spoof)).status_code == 401
    honest = [("x-forwarded-for", OUTSIDE), ("x-forwarded-for", READING_ROOM_V4)]
    assert (await c.get(image_url(ROOM), headers=honest)).status_code == 200


# -- caching and tier changes --------------------------------------------------------------


async def test_tier_change_after_a_cached_response_applies_at_once(world: World) -> None:
    app = world.app()
    c = world.client(app)
    first = await c.get(image_url(PUBLIC))
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("public")
    assert app.state.service.cache.size > 0  # the rendered image is in the server's cache
    assert (await c.get(image_url(PUBLIC))).content == first.content  # now answered by the cache-hit path
    info = await c.get(info_url(PUBLIC))
    assert info.status_code == 200

    world.replica().set_tier("maps", "reading-room")  # another process changes the catalogue
    await settle()

    r = await c.get(image_url(PUBLIC))
    assert r.status_code == 401
    assert r.content != first.content
    r = await c.get(image_url(PUBLIC), headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 401
    assert (await c.head(image_url(PUBLIC))).status_code == 401
    r = await c.get(info_url(PUBLIC), headers={"If-None-Match": info.headers["etag"]})
    assert r.status_code == 401
    r = await c.get(image_url(PUBLIC), headers=bearer(world.token()))
    assert r.status_code == 200
    assert r.content == first.content
    assert_private(r)

    world.replica().set_tier("maps/d1/p1", "staff")  # a page-level change too
    await settle()
    assert (await c.get(image_url(PUBLIC), headers=bearer(world.token()))).status_code == 403


async def test_restricted_responses_are_private_and_public_ones_stay_public(world: World) -> None:
    c = world.client()
    token = world.token("staff")
    for url in (image_url(PUBLIC), info_url(PUBLIC), info_url(PUBLIC, 2), image_url(PUBLIC, version=2)):
        r = await c.get(url)
        assert r.status_code == 200
        assert r.headers["cache-control"].startswith("public"), url
        assert "private" not in r.headers["cache-control"]
        r = await c.get(url, headers=bearer(token))  # a token changes nothing for public material
        assert r.headers["cache-control"].startswith("public"), url
    for identifier in (ROOM, STAFF, VAULT):
        for url in (image_url(identifier), info_url(identifier), info_url(identifier, 2)):
            r = await c.get(url, headers=bearer(token))
            assert r.status_code == 200, url
            assert_private(r)
            assert "etag" in r.headers
            again = await c.get(url, headers={**bearer(token), "If-None-Match": r.headers["etag"]})
            assert again.status_code == 304
            assert_private(again)
            assert (await c.get(url, headers={"If-None-Match": r.headers["etag"]})).status_code == 401


# -- degraded access ------------------------------------------------------------------


DEGRADED_SERVED = [
    ("full/200,/0/default.jpg", (200, 150)),
    ("full/!200,200/0/default.jpg", (200, 150)),
    ("full/,150/0/default.jpg", (200, 150)),
    ("full/pct:50/0/default.jpg", (200, 150)),
    ("full/100,/0/default.jpg", (100, 75)),
    ("full/200,/90/default.jpg", (150, 200)),
    ("0,0,200,150/100,/0/default.jpg", (100, 75)),  # half the image at the same small scale
]


async def test_degraded_access_serves_small_sizes(world: World) -> None:
    c = world.client(world.app(degraded=("reading-room=200",)))
    insufficient = bearer(world.token("staff", collections=("diaries",)))
    for rest, size in DEGRADED_SERVED:
        r = await c.get(image_url(ROOM, rest))
        assert r.status_code == 200, (rest, r.text)
        assert jpeg_size(r.content) == size, rest
        assert_private(r)
        # a token of too low a reach gets the same small sizes
        assert (await c.get(image_url(ROOM, rest), headers=insufficient)).status_code == 200, rest


DEGRADED_REFUSED = [
    "full/201,/0/default.jpg",
    "full/,151/0/default.jpg",
    "full/max/0/default.jpg",
    "full/!201,201/0/default.jpg",
    "full/pct:51/0/default.jpg",
    "full/400,300/0/default.jpg",
    "0,0,200,150/200,/0/default.jpg",  # full resolution, one small region at a time
    "0,0,200,150/max/0/default.jpg",
    "square/200,/0/default.jpg",
    "pct:0,0,10,10/40,/0/default.jpg",
]


async def test_degraded_access_refuses_larger_sizes(world: World) -> None:
    c = world.client(world.app(degraded=("reading-room=200",)))
    insufficient = bearer(world.token("staff", collections=("diaries",)))
    enough = bearer(world.token())
    for rest in DEGRADED_REFUSED:
        r = await c.get(image_url(ROOM, rest))
        assert r.status_code == 401, rest
        assert_private(r)
        assert (await c.get(image_url(ROOM, rest), headers=insufficient)).status_code == 403, rest
        assert (await c.get(image_url(ROOM, rest), headers=enough)).status_code == 200, rest


async def test_degraded_access_in_version_2(world: World) -> None:
    c = world.client(world.app(degraded=("reading-room=200",)))
    assert (await c.get(image_url(ROOM, "full/200,/0/default.jpg", 2))).status_code == 200
    assert (await c.get(image_url(ROOM, "full/full/0/default.jpg", 2))).status_code == 401
    assert (await c.get(image_url(ROOM, "full/201,/0/default.jpg", 2))).status_code == 401


async def test_degraded_access_only_for_its_tier(world: World) -> None:
    c = world.client(world.app(degraded=("reading-room=200",)))
    assert (await c.get(image_url(STAFF, "full/50,/0/default.jpg"))).status_code == 401


async def test_without_a_degraded_setting_nothing_is_served(world: World) -> None:
    c = world.client()
    for rest in ("full/200,/0/default.jpg", "full/10,/0/default.jpg", "0,0,10,10/10,/0/default.jpg"):
        assert (await c.get(image_url(ROOM, rest))).status_code == 401, rest


# -- info.json and the auth service descriptions ----------------------------------------------


def _services(doc: dict[str, Any]) -> list[dict[str, Any]]:
    services = doc.get("service", [])
    return services if isinstance(services, list) else [services]


def _probe(doc: dict[str, Any]) -> dict[str, Any]:
    probes = [s for s in _services(doc) if s.get("type") == "AuthProbeService2"]
    assert len(probes) == 1, doc.get("service")
    return probes[0]


def _services1(doc: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    return [s for s in _services(doc) if s.get("profile") == f"http://iiif.io/api/auth/1/{profile}"]


@pytest.mark.parametrize("version", [3, 2])
async def test_info_json_without_credentials_is_401_and_names_the_services(world: World, version: int) -> None:
    r = await world.client().get(info_url(ROOM, version))
    assert r.status_code == 401
    assert_private(r)
    doc = r.json()
    assert doc["width"] == WIDTH and doc["height"] == HEIGHT
    base = "http://testserver"
    probe = _probe(doc)
    assert probe["id"] == f"{base}/iiif/auth/probe/{quote(ROOM, safe='')}"
    access = probe["service"]
    assert [a["profile"] for a in access] == ["active"]  # no kiosk from outside the reading room
    active = access[0]
    assert active["type"] == "AuthAccessService2"
    assert active["id"] == f"{base}/iiif/auth/login"
    for key in ("label", "heading", "note", "confirmLabel"):
        assert isinstance(active[key], dict) and all(isinstance(v, list) for v in active[key].values()), key
    inner = {s["type"]: s for s in active["service"]}
    assert set(inner) == {"AuthAccessTokenService2", "AuthLogoutService2"}
    assert inner["AuthAccessTokenService2"]["id"] == f"{base}/iiif/auth/token"
    assert inner["AuthLogoutService2"]["id"] == f"{base}/iiif/auth/logout"

    [login] = _services1(doc, "login")
    assert login["@context"] == "http://iiif.io/api/auth/1/context.json"
    assert login["@id"] == f"{base}/iiif/auth/login"
    assert login["label"] and login["header"] and login["description"]
    inner1 = {s["profile"]: s for s in login["service"]}
    assert set(inner1) == {"http://iiif.io/api/auth/1/token", "http://iiif.io/api/auth/1/logout"}
    assert inner1["http://iiif.io/api/auth/1/token"]["@id"] == f"{base}/iiif/auth/token1"
    assert not _services1(doc, "kiosk")


async def test_info_json_from_the_reading_room_offers_the_kiosk(world: World) -> None:
    r = await world.client(peer=READING_ROOM_V4).get(info_url(ROOM))
    assert r.status_code == 200
    doc = r.json()
    access = {a["profile"]: a for a in _probe(doc)["service"]}
    assert set(access) == {"kiosk", "active"}
    assert access["kiosk"]["type"] == "AuthAccessService2"
    assert access["kiosk"]["id"] == "http://testserver/iiif/auth/kiosk"
    assert {s["type"] for s in access["kiosk"]["service"]} == {"AuthAccessTokenService2", "AuthLogoutService2"}
    [kiosk1] = _services1(doc, "kiosk")
    assert kiosk1["@id"] == "http://testserver/iiif/auth/kiosk"
    assert {s["profile"] for s in kiosk1["service"]} == {"http://iiif.io/api/auth/1/token",
                                                       "http://iiif.io/api/auth/1/logout"}
    assert _services1(doc, "login")


async def test_reading_room_is_not_offered_the_kiosk_for_staff_material(world: World) -> None:
    # viewers prefer kiosk over login: offering it where it cannot clear would hide the sign-in
    r = await world.client(peer=READING_ROOM_V4).get(info_url(STAFF))
    assert r.status_code == 403
    doc = r.json()
    assert [a["profile"] for a in _probe(doc)["service"]] == ["active"]
    assert not _services1(doc, "kiosk")
    assert _services1(doc, "login")


@pytest.mark.parametrize("version", [3, 2])
async def test_info_json_with_a_valid_token_is_200(world: World, version: int) -> None:
    c = world.client()
    r = await c.get(info_url(ROOM, version), headers=bearer(world.token()))
    assert r.status_code == 200
    assert_private(r)
    assert _probe(r.json())  # the services stay, so a viewer can sign out
    r = await c.get(info_url(STAFF, version), headers=bearer(world.token()))
    assert r.status_code == 403
    assert _probe(r.json())


async def test_public_info_json_has_no_auth_services(world: World) -> None:
    c = world.client(peer=READING_ROOM_V4)
    for version in (3, 2):
        r = await c.get(info_url(PUBLIC, version))
        assert r.status_code == 200
        doc = r.json()
        assert not [s for s in _services(doc) if "auth" in json.dumps(s)], doc.get("service")


# -- the probe ----------------------------------------------------------------------


async def _probe_result(c: httpx.AsyncClient, identifier: str, **kwargs: Any) -> dict[str, Any]:
    r = await c.get(f"/iiif/auth/probe/{quote(identifier, safe='')}", **kwargs)
    assert r.status_code == 200, r.text  # the probe answers 200; its body says the status
    assert_private(r)
    body = r.json()
    assert body["@context"] == "http://iiif.io/api/auth/2/context.json"
    assert body["type"] == "AuthProbeResult2"
    return body


async def test_probe_reports_the_status(world: World) -> None:
    c = world.client()
    room = bearer(world.token())
    cases = [
        (ROOM, {}, 401), (ROOM, room, 200), (STAFF, room, 403), (STAFF, {}, 401), (PUBLIC, {}, 200),
        (VAULT, room, 403), (ROOM_OTHER, bearer(world.token(collections=("letters",))), 403),
        (ROOM, bearer(world.token(days=-1)), 401),
    ]
    for identifier, headers, status in cases:
        body = await _probe_result(c, identifier, headers=headers)
        assert body["status"] == status, (identifier, headers, body)
        if status == 200:
            assert "heading" not in body and "substitute" not in body
        else:
            assert body["heading"] and body["note"]
            assert "substitute" not in body  # no degraded access configured
    body = await _probe_result(world.client(peer=READING_ROOM_V6), ROOM)
    assert body["status"] == 200
    body = await _probe_result(world.client(peer=READING_ROOM_V6), STAFF)
    assert body["status"] == 403


async def test_probe_offers_a_substitute_where_degraded_access_exists(world: World) -> None:
    c = world.client(world.app(degraded=("reading-room=200",)))
    body = await _probe_result(c, ROOM)
    assert body["status"] == 401
    [substitute] = body["substitute"]
    assert substitute["type"] == "Image"
    url = substitute["id"]
    assert url.startswith("http://testserver/iiif/3/")
    r = await c.get(url.removeprefix("http://testserver"))
    assert r.status_code == 200
    assert max(jpeg_size(r.content)) <= 200
    # insufficient credentials: 403, still with the substitute
    body = await _probe_result(c, ROOM, headers=bearer(world.token("staff", collections=("diaries",))))
    assert body["status"] == 403
    assert body["substitute"]
    body = await _probe_result(c, ROOM, headers=bearer(world.token()))
    assert body["status"] == 200
    assert "substitute" not in body
    assert "substitute" not in await _probe_result(c, STAFF)


# -- access services: login, kiosk, logout ------------------------------------------------


LOGIN_ORIGINS = [
    ("http://localhost:8000", False),
    ("http://127.0.0.1:8000", False),
    ("https://localhost:8000", True),
    ("http://images.example.org", True),
    ("https://images.example.org", True),
    ("http://[::1]:8000", False),
]


async def test_login_with_a_valid_token_sets_the_cookie(world: World) -> None:
    token = world.token()
    for base_url, secure in LOGIN_ORIGINS:
        r = await world.client(base_url=base_url).post("/iiif/auth/login", data={"token": token})
        assert r.status_code == 200, base_url
        assert_private(r)
        morsel = set_cookies(r)["iiif_access"]
        assert morsel.value == token
        assert morsel["httponly"] is True
        assert morsel["path"] == "/"
        assert 0 < int(morsel["max-age"]) <= 86400
        if secure:
            assert morsel["secure"] is True, base_url
            assert morsel["samesite"].lower() == "none", base_url
        else:
            assert not morsel["secure"], base_url
            assert morsel["samesite"].lower() != "none", base_url  # browsers refuse SameSite=None without Secure
        assert (await world.client().get(image_url(ROOM), headers=cookie(morsel.value))).status_code == 200


async def test_login_cookie_is_secure_behind_a_tls_proxy(world: World) -> None:
    """nginx's default `proxy_pass http://127.0.0.1:8000` sends Host: 127.0.0.1:8000."""
    token = world.token()
    c = world.client(peer=PROXY, base_url="http://127.0.0.1:8000")
    r = await c.post("/iiif/auth/login", data={"token": token},
                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": OUTSIDE})
    morsel = set_cookies(r)["iiif_access"]
    assert morsel["secure"] is True and morsel["samesite"].lower() == "none"
    # a configured https base URL means the same
    c = world.client(world.app(base_url="https://images.example.org"), base_url="http://127.0.0.1:8000")
    morsel = set_cookies(await c.post("/iiif/auth/login", data={"token": token}))["iiif_access"]
    assert morsel["secure"] is True and morsel["samesite"].lower() == "none"
    # an untrusted peer cannot make it believe in https, nor out of it
    c = world.client(peer=OUTSIDE, base_url="http://localhost:8000")
    r = await c.post("/iiif/auth/login", data={"token": token}, headers={"X-Forwarded-Proto": "https"})
    assert not set_cookies(r)["iiif_access"]["secure"]


async def test_login_with_an_invalid_token_sets_no_cookie(world: World) -> None:
    token, row = world.store.issue("reading-room", "Partner", 1)
    world.store.revoke(row.id)
    bad = {
        "empty": "", "garbage": "garbage",
        "forged": URLSafeSerializer(OTHER_SECRET, salt=SALT).dumps(_payload(world.token())),
        "expired": world.token(days=-1), "revoked": token,
    }
    for kind, value in bad.items():
        r = await world.client().post("/iiif/auth/login", data={"token": value})
        assert r.status_code == 401, kind
        assert "set-cookie" not in r.headers, kind
        assert "<form" in r.text
    r = await world.client().post("/iiif/auth/login", content=b"token=" + b"A" * 100_000,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "set-cookie" not in r.headers  # a form that large is no sign-in
    r = await world.client().get("/iiif/auth/login")
    assert r.status_code == 200 and "<form" in r.text and "set-cookie" not in r.headers


async def test_login_posted_from_another_site_is_refused(world: World) -> None:
    token = world.token()
    c = world.client(base_url="https://images.example.org")
    r = await c.post("/iiif/auth/login", data={"token": token}, headers={"Origin": "https://evil.example.net"})
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    # the form on our own page posts with our origin
    r = await c.post("/iiif/auth/login", data={"token": token}, headers={"Origin": "https://images.example.org"})
    assert r.status_code == 200 and "iiif_access" in set_cookies(r)


async def test_login_page_escapes_the_holder(world: World) -> None:
    token = world.token(holder="<img src=x onerror=alert(1)>")
    r = await world.client().post("/iiif/auth/login", data={"token": token})
    assert r.status_code == 200
    assert "<img src=x" not in r.text and "&lt;img" in r.text


async def test_kiosk_in_the_reading_room_sets_a_cookie_valid_only_there(world: World) -> None:
    inside = world.client(peer=READING_ROOM_V4)
    r = await inside.get("/iiif/auth/kiosk")
    assert r.status_code == 200
    assert_private(r)
    morsel = set_cookies(r)["iiif_access"]
    assert morsel["httponly"] is True
    kiosk_token = morsel.value
    # the kiosk token, carried out of the reading room, is no credential
    outside = world.client(peer=OUTSIDE)
    assert (await outside.get(image_url(ROOM), headers=cookie(kiosk_token))).status_code == 401
    assert (await outside.get(image_url(ROOM), headers=bearer(kiosk_token))).status_code == 401
    behind_proxy = world.client(peer=PROXY)
    spoof = {**cookie(kiosk_token), "X-Forwarded-For": f"{READING_ROOM_V4}, {OUTSIDE}"}
    assert (await behind_proxy.get(image_url(ROOM), headers=spoof)).status_code == 401
    body = await _probe_result(outside, ROOM, headers=cookie(kiosk_token))
    assert body["status"] == 401
    r = await outside.get("/iiif/auth/token", params={"messageId": "1", "origin": "https://viewer.example.org"},
                          headers=cookie(kiosk_token))
    message, _ = posted_message(r.text)
    assert "accessToken" not in message
    # it clears no more than the network's own tier, even in the reading room
    assert (await inside.get(image_url(STAFF), headers=cookie(kiosk_token))).status_code == 403
    # and through the mapped and v6 addresses of the same room it works as the network does
    r = await world.client(peer=MAPPED_V4).get("/iiif/auth/token", params={"messageId": "k", "origin":
                                                "https://viewer.example.org"}, headers=cookie(kiosk_token))
    message, _ = posted_message(r.text)
    assert message["type"] == "AuthAccessToken2"


@pytest.mark.parametrize("peer", [OUTSIDE, "::ffff:203.0.113.7", PROXY])
async def test_kiosk_elsewhere_is_403_without_a_cookie(world: World, peer: str) -> None:
    headers = {"X-Forwarded-For": f"{READING_ROOM_V4}, {OUTSIDE}"} if peer == PROXY else {
        "X-Forwarded-For": READING_ROOM_V4}
    r = await world.client(peer=peer).get("/iiif/auth/kiosk", headers=headers)
    assert r.status_code == 403
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_logout_clears_the_cookie(world: World, method: str) -> None:
    r = await world.client().request(method, "/iiif/auth/logout", headers=cookie(world.token()))
    assert r.status_code == 200
    assert_private(r)
    morsel = set_cookies(r)["iiif_access"]
    assert morsel.value in ("", '""')
    assert morsel["path"] == "/"
    assert morsel["max-age"] in ("0", 0) or "1970" in morsel["expires"]


# -- token services ----------------------------------------------------------------------

VIEWER = "https://viewer.example.org"


async def test_token_service_posts_the_token_to_exactly_the_viewer(world: World) -> None:
    token = world.token(days=2)
    c = world.client()
    r = await c.get("/iiif/auth/token", params={"messageId": "1", "origin": VIEWER}, headers=cookie(token))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert_private(r)
    message, target = posted_message(r.text)
    assert target == VIEWER
    assert message["type"] == "AuthAccessToken2"
    assert message["messageId"] == "1"
    assert isinstance(message["expiresIn"], int) and 0 < message["expiresIn"] <= 2 * 86400
    access_token = message["accessToken"]
    assert isinstance(access_token, str) and access_token
    # the access token opens the image as a bearer token
    assert (await c.get(image_url(ROOM), headers=bearer(access_token))).status_code == 200
    assert (await c.get(info_url(ROOM), headers=bearer(access_token))).status_code == 200
    # other origins, ports and schemes get an error at their own origin, a token once configured
    others = ("http://localhost:3000", "https://[2001:db8::1]:8443", "https://mirador.example.org:444")
    configured = world.client(world.app(viewer_origins=(VIEWER, *others)))
    for origin in others:
        r = await c.get("/iiif/auth/token", params={"messageId": "2", "origin": origin}, headers=cookie(token))
        message, target = posted_message(r.text)
        assert target == origin and message["type"] == "AuthAccessTokenError2" and "accessToken" not in message
        r = await configured.get("/iiif/auth/token", params={"messageId": "2", "origin": origin},
                                 headers=cookie(token))
        message, target = posted_message(r.text)
        assert target == origin and message["type"] == "AuthAccessToken2"


async def test_token_service_hands_out_a_short_lived_token_not_the_cookie(world: World) -> None:
    """Any page may frame the token service; what it can take away must not be the 30-day token."""
    token = world.token(days=30)
    c = world.client()
    for service in ("token", "token1"):
        r = await c.get(f"/iiif/auth/{service}", params={"messageId": "1", "origin": VIEWER}, headers=cookie(token))
        message, _ = posted_message(r.text)
        assert message["accessToken"] != token
        assert token not in r.text
        assert 0 < message["expiresIn"] <= 3600
        # it cannot be stretched: its expiry is signed
        stretched = _tampered(message["accessToken"], exp=_payload(token)["exp"])
        assert (await c.get(image_url(ROOM), headers=bearer(stretched))).status_code == 401
    # a token about to expire hands out no longer-lived access token
    short = world.token(days=60 / 86400)
    r = await c.get("/iiif/auth/token", params={"messageId": "1", "origin": VIEWER}, headers=cookie(short))
    assert posted_message(r.text)[0]["expiresIn"] <= 60


async def test_token_service_without_the_cookie_posts_an_error(world: World) -> None:
    c = world.client()
    for headers in ({}, cookie("garbage"), cookie(world.token(days=-1)), bearer(world.token())):
        r = await c.get("/iiif/auth/token", params={"messageId": "7", "origin": VIEWER}, headers=headers)
        assert r.status_code == 200
        message, target = posted_message(r.text)
        assert message["type"] == "AuthAccessTokenError2", headers
        assert message["messageId"] == "7"
        assert message["profile"] in ("missingAspect", "invalidAspect", "expiredAspect")
        assert "accessToken" not in message
        assert target == VIEWER


MALFORMED_ORIGINS = [
    "javascript:alert(1)", "*", None, "", "null", "https://evil.example.org/path", "https://viewer.example.org\n",
    "https://user@evil.example.org", "data:text/html,x", "https://viewer.example.org, https://evil.example.org",
    "ftp://viewer.example.org", "//viewer.example.org",
]


async def test_token_service_never_posts_the_token_to_a_malformed_origin(world: World) -> None:
    token = world.token()
    c = world.client()
    for origin in MALFORMED_ORIGINS:
        params = {"messageId": "1"}
        if origin is not None:
            params["origin"] = origin
        r = await c.get("/iiif/auth/token", params=params, headers=cookie(token))
        assert token not in r.text
        message, target = posted_message(r.text)
        assert "accessToken" not in message, origin
        assert message["type"] == "AuthAccessTokenError2"
        assert message["profile"] == "invalidOrigin"
        assert message["messageId"] == "1"
        r = await c.get("/iiif/auth/token1", params=params, headers=cookie(token))
        assert token not in r.text
        message, target = posted_message(r.text)
        assert "accessToken" not in message and message["error"], origin


@pytest.mark.parametrize("service", ["token", "token1"])
async def test_message_id_cannot_break_out_of_the_script(world: World, service: str) -> None:
    evil = "</script><script>alert(1)</script><!--"
    for headers in (cookie(world.token()), {}):
        r = await world.client().get(f"/iiif/auth/{service}", params={"messageId": evil, "origin": VIEWER},
                                     headers=headers)
        assert r.status_code == 200
        assert "</script><script>alert(1)" not in r.text
        assert r.text.lower().count("<script") == 1 and r.text.lower().count("</script") == 1
        message, target = posted_message(r.text)
        assert message["messageId"] == evil
        assert target == VIEWER
    # the origin cannot carry script either
    r = await world.client().get(f"/iiif/auth/{service}",
                                 params={"messageId": "1", "origin": "https://a.org</script><script>alert(1)"},
                                 headers=cookie(world.token()))
    assert r.text.lower().count("<script") == 1


async def test_token1_service_speaks_auth_1(world: World) -> None:
    c = world.client()
    token = world.token()
    r = await c.get("/iiif/auth/token1", params={"messageId": "42", "origin": VIEWER}, headers=cookie(token))
    assert r.status_code == 200
    assert_private(r)
    message, target = posted_message(r.text)
    assert target == VIEWER
    assert set(message) == {"accessToken", "expiresIn", "messageId"}
    assert message["messageId"] == "42" and 0 < message["expiresIn"] <= 86400
    assert (await c.get(image_url(ROOM), headers=bearer(message["accessToken"]))).status_code == 200
    r = await c.get("/iiif/auth/token1", params={"messageId": "43", "origin": VIEWER})
    message, target = posted_message(r.text)
    assert message["error"] == "missingCredentials" and message["messageId"] == "43"
    assert "accessToken" not in message and target == VIEWER
    # without a messageId (a non-browser client): JSON, 200 with the token, 401 with the error
    r = await c.get("/iiif/auth/token1", headers=cookie(token))
    assert r.status_code == 200 and r.json()["accessToken"]
    assert_private(r)
    r = await c.get("/iiif/auth/token1")
    assert r.status_code == 401 and r.json()["error"] == "missingCredentials"


async def test_token_service_with_a_revoked_cookie_posts_an_error(world: World) -> None:
    token, row = world.store.issue("reading-room", "Partner", 1)
    c = world.client()
    r = await c.get("/iiif/auth/token", params={"messageId": "1", "origin": VIEWER}, headers=cookie(token))
    access_token = posted_message(r.text)[0]["accessToken"]
    TokenStore(world.replica(), SECRET).revoke(row.id)
    await settle()
    r = await c.get("/iiif/auth/token", params={"messageId": "1", "origin": VIEWER}, headers=cookie(token))
    assert posted_message(r.text)[0]["type"] == "AuthAccessTokenError2"
    # an access token handed out earlier dies with the token it came from
    assert (await c.get(image_url(ROOM), headers=bearer(access_token))).status_code == 401


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`iiif-server ...` as a separate process would run it: its own settings and catalogue connection."""
    storage = ["--data-dir", str(world.settings.data_dir), "--database", world.settings.database_url]
    runner = CliRunner(env={"COLUMNS": "200"})
    opened: list[Catalogue] = []
    real_open = cli_module.open_catalogue

    def open_catalogue(settings: config.Settings) -> Any:
        catalogue = real_open(settings)
        opened.append(catalogue)  # a process would drop its connections on exit; the test must close them
        return catalogue

    monkeypatch.setattr(cli_module, "open_catalogue", open_catalogue)

    def invoke(*args: str, extra: list[str] | None = None) -> Any:
        try:
            return runner.invoke(cli_module.main, [*args, *storage, *(extra or [])], catch_exceptions=False)
        finally:
            while opened:
                opened.pop().engine.dispose()

    yield invoke


async def test_cli_token_issue_list_revoke(world: World, cli: Any) -> None:
    app = world.app(secret_key=None)  # the key the CLI created in the data directory
    issued = cli("token", "issue", "--tier", "reading-room", "--holder", "Partner archive X", "--days", "3")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert "\n" not in token
    ident = re.search(r"id ([0-9a-f]+)", issued.stderr).group(1)
    c = world.client(app)
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 200
    assert (await c.get(image_url(STAFF), headers=bearer(token))).status_code == 403

    listed = cli("token", "list")
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.stdout.splitlines() if ident in ln)
    assert "Partner archive X" in line and "reading-room" in line and "valid" in line

    revoked = cli("token", "revoke", ident)  # another process: its own catalogue connection
    assert revoked.exit_code == 0, revoked.output
    await settle()
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 401
    line = next(ln for ln in cli("token", "list").stdout.splitlines() if ident in ln)
    assert "revoked" in line
    missing = cli("token", "revoke", "0000000000000000")
    assert missing.exit_code != 0 and "no token" in missing.output


async def test_cli_tokens_limited_to_collections(world: World, cli: Any) -> None:
    app = world.app(secret_key=None)
    issued = cli("token", "issue", "--tier", "staff", "--holder", "H", "--collection", "diaries",
                 "--collection", "personnel")
    token = issued.stdout.strip()
    c = world.client(app)
    assert (await c.get(image_url(STAFF), headers=bearer(token))).status_code == 200
    assert (await c.get(image_url(ROOM_OTHER), headers=bearer(token))).status_code == 200
    assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 403
    assert "diaries, personnel" in cli("token", "list").stdout
    bad = cli("token", "issue", "--tier", "superuser", "--holder", "H")
    assert bad.exit_code != 0 and "unknown tier" in bad.output
    assert "--days" in cli("token", "issue", "--tier", "staff", "--holder", "H", "--days", "0").output


async def test_a_token_signed_under_another_key_is_refused(world: World, cli: Any) -> None:
    issued = cli("token", "issue", "--tier", "staff", "--holder", "H", extra=["--secret-key", OTHER_SECRET])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert (await world.client(world.app()).get(image_url(ROOM), headers=bearer(token))).status_code == 401
    other = world.client(world.app(secret_key=OTHER_SECRET))
    assert (await other.get(image_url(ROOM), headers=bearer(token))).status_code == 200
    # and one from the data directory's key is refused by a server with a configured key
    own = cli("token", "issue", "--tier", "staff", "--holder", "H").stdout.strip()
    assert (await world.client(world.app(secret_key=None)).get(image_url(ROOM), headers=bearer(own))).status_code \
        == 200
    assert (await other.get(image_url(ROOM), headers=bearer(own))).status_code == 401


# -- the access check from memory -----------------------------------------------------------


async def test_tiles_and_info_ask_the_database_nothing_and_changes_arrive_within_a_second(world: World) -> None:
    from sqlalchemy import event

    app = world.app()
    c = world.client(app)
    token = world.token("reading-room")
    assert (await c.get(image_url(PUBLIC))).status_code == 200  # warm: the snapshot is loaded
    statements: list[str] = []
    event.listen(app.state.catalogue.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *args: statements.append(sql))
    started = time.monotonic()
    for _ in range(20):
        assert (await c.get(image_url(PUBLIC))).status_code == 200
        assert (await c.get(info_url(PUBLIC))).status_code == 200
        assert (await c.get(image_url(ROOM), headers=bearer(token))).status_code == 200
        assert (await c.get(image_url(STAFF))).status_code == 401
    elapsed = time.monotonic() - started
    # 80 access decisions, no query of their own: at most the snapshot's version check every half second
    assert all("catalogue_state" in sql for sql in statements), statements
    assert len(statements) <= elapsed / (MAX_AGE / 2) + 1

    statements.clear()  # what the change costs, whatever the loop above took on a busy machine
    world.replica().set_tier("maps/d1", "staff")
    started = time.monotonic()
    await asyncio.sleep(MAX_AGE + 0.05)
    assert (await c.get(image_url(PUBLIC))).status_code == 401
    elapsed = time.monotonic() - started
    checks = [sql for sql in statements if "catalogue_state" in sql]
    # one reload of four tables; version checks as above (more than one only when the machine is slow)
    assert len(statements) - len(checks) <= 4, statements
    assert 1 <= len(checks) <= elapsed / (MAX_AGE / 2) + 1


async def test_an_uncatalogued_page_under_a_restricted_collection_takes_its_tier(world: World,
                                                                                  tiff_bytes: bytes) -> None:
    # e.g. an access copy written before its row: fail closed, never public
    images = world.settings.image_root
    (images / "letters" / "d9").mkdir()
    (images / "letters" / "d9" / "p1.tif").write_bytes(tiff_bytes)
    (images / "maps" / "d2" / "p9.tif").write_bytes(tiff_bytes)
    (images / "letters" / "loose.tif").write_bytes(tiff_bytes)
    c = world.client()
    for identifier in ("letters/d9/p1", "maps/d2/p9", "letters/loose"):
        assert (await c.get(image_url(identifier))).status_code == 401, identifier
    assert (await c.get(image_url("letters/d9/p1"), headers=bearer(world.token()))).status_code == 200


async def test_home_lists_what_is_not_hidden_the_same_for_everyone(hidden_world: World) -> None:
    """The overview (issue 22) is one page for all: a hidden collection and a staff folder are absent even
    for staff (the console lists them), so the page can be shared."""
    world = hidden_world
    c = world.client()
    anonymous = await c.get("/")
    assert anonymous.status_code == 200
    assert anonymous.headers["cache-control"].startswith("public")
    assert "personnel" not in anonymous.text  # a staff collection: hidden
    assert "vault" not in anonymous.text  # a staff folder by path rule: not listed
    assert "/iiif/presentation/maps/collection" in anonymous.text
    assert "maps%2Fd1%2Fp2" not in anonymous.text  # pages of collections are not listed one by one
    staff = await c.get("/", headers=bearer(world.token("staff")))
    assert staff.content == anonymous.content


# -- images outside the catalogue: --default-tier ------------------------------------------


async def test_loose_images_are_closed_by_default_once_the_catalogue_restricts(world: World) -> None:
    """auto: a folder dropped beside restricted collections takes the highest tier, not public."""
    loose = world.settings.images / "dropped" / "scan.tif"
    loose.parent.mkdir()
    loose.write_bytes((world.settings.images / "vault" / "plan.tif").read_bytes())
    c = world.client()
    assert (await c.get(image_url("dropped/scan"))).status_code == 401
    assert (await c.get(image_url("dropped/scan"), headers=bearer(world.token("reading-room")))).status_code == 403
    assert (await c.get(image_url("dropped/scan"), headers=bearer(world.token("staff")))).status_code == 200
    # the operator's choice wins; path rules still win over it
    opened = world.client(world.app(default_tier="public"))
    assert (await opened.get(image_url("dropped/scan"))).status_code == 200
    assert (await opened.get(image_url(VAULT))).status_code == 401
    room = world.client(world.app(default_tier="reading-room"))
    assert (await room.get(image_url("dropped/scan"), headers=bearer(world.token("reading-room")))).status_code == 200
    with pytest.raises(ValueError):
        world.app(default_tier="nobody")


async def test_loose_images_are_public_while_the_catalogue_restricts_nothing(world: World) -> None:
    """A plain folder of images (or the demo) works out of the box (a new app: a fresh snapshot)."""
    with world.catalogue.session() as session:
        for coll in session.query(Collection):
            coll.tier = "public"
            for doc in coll.documents:
                doc.tier = None
                for image in doc.images:
                    image.tier = None
    loose = world.settings.images / "dropped" / "scan.tif"
    loose.parent.mkdir()
    loose.write_bytes((world.settings.images / "vault" / "plan.tif").read_bytes())
    c = world.client(world.app(path_tiers=()))
    assert (await c.get(image_url("dropped/scan"))).status_code == 200
    assert (await c.get(image_url(VAULT))).status_code == 200
