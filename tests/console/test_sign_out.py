"""Signing out of the console ends the session everywhere: a copy of its cookie taken before is refused by
every replica, and the access cookie the console set for restricted thumbnails dies with it (issue 17,
findings 3 and 4)."""

from __future__ import annotations

import httpx
from worlds import BASE, STAFF, World, hidden, image_url, settle, sign_in

from iiif_server.auth.policy import COOKIE as ACCESS_COOKIE
from iiif_server.console.session import COOKIE, IDLE_SECONDS


def copied(world: World,
            jar: httpx.Cookies, replica: bool = False) -> httpx.AsyncClient:
    """A fresh client (another browser) holding copies of the console's cookies, on this app or another one."""
    client = world.client(app=world.app() if replica else None, base_url=BASE)
    for name in (COOKIE, ACCESS_COOKIE):
        value = jar.get(name)
        if value is not None:
            client.headers["Cookie"] = "; ".join(filter(None, [client.headers.get("Cookie"), f"{name}={value}"]))
    return client


async def test_a_cookie_copied_before_sign_out_is_refused_after_it(console_world: World) -> None:
    world = console_world
    client, csrf = await sign_in(world)
    staff_token = world.token("staff")
    access = client.cookies.get(ACCESS_COOKIE)
    assert access and access != staff_token
    # before sign-out, the copies work on this replica and another one
    here, there = copied(world, client.cookies), copied(world, client.cookies, replica=True)
    assert (await here.get("/staff/")).status_code == 200
    assert (await there.get("/staff/")).status_code == 200
    assert (await here.get(image_url(STAFF))).status_code == 200  # the thumbnail cookie opens staff images

    assert (await client.post("/staff/logout", data={"csrf": csrf})).status_code == 303
    await settle()
    for c in (here, there):
        assert (await c.get("/staff/")).status_code == 303
        r = await c.post("/staff/tokens", data={"csrf": csrf, "tier": "staff", "holder": "Mallory", "days": "3650"})
        assert r.status_code == 403
        assert (await c.get(image_url(STAFF))).status_code == 404  # hidden again: the access cookie died too
    assert not [t for t in world.store.list() if t.holder == "Mallory"]


async def test_the_console_never_puts_the_staff_token_in_a_cookie(console_world: World) -> None:
    world = console_world
    client = world.client(base_url=BASE)
    form = await client.get("/staff/login")
    staff_token = world.token("staff", days=30)
    r = await client.post("/staff/login", data={"csrf": hidden(form.text, "csrf"), "token": staff_token})
    assert r.status_code == 303
    for header in r.headers.get_list("set-cookie"):
        assert staff_token not in header
        if header.startswith(ACCESS_COOKIE + "="):
            max_age = int(header.lower().split("max-age=")[1].split(";")[0])
            assert 0 < max_age <= IDLE_SECONDS  # lives as long as the session's idle time, not 30 days
