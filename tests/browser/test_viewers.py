"""The access flow in real viewers: Mirador 4.0.0 and Universal Viewer 4, in headless Chromium.

On a two-page reading-room document, for each viewer:
1. without clearance it shows the login service's notice and no restricted tile arrives;
2. signing in through the login window (a token from `iiif-server token issue`) lets the tiles
   load and the canvas show the image;
3. from the reading room's network (kiosk), tiles load without any click.
A screenshot of each state goes to test-artifacts/browser/.

What the viewers cannot do is written where it shows, with the reason found in their bundles:
Mirador 4.0.0 does not reload a tile source it opened from a 401 info.json (state 2 turns the
page), and UV 4 never sends the cookie with tile requests to another origin (state 2 runs with
UV served from the image server's origin; across origins it is skipped with that reason).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .viewing import (
    CONFIRM,
    HEADING,
    IDENTIFIER,
    LOGIN_LABEL,
    NOTE,
    SETTLE_MS,
    Archive,
    Session,
    manifest_url,
    quadrant_colours,
    screenshot,
    shows_image,
    sign_in,
    wait_until,
)

pytestmark = pytest.mark.browser

PAGE_1 = quote(IDENTIFIER, safe="")
PAGE_2 = quote(IDENTIFIER.replace("/p1", "/p2"), safe="")
UV_CROSS_ORIGIN = (
    "Universal Viewer 4 cannot show cookie-protected tiles from another origin: its OpenSeadragon panel "
    "hard-codes crossOriginPolicy 'Anonymous' (tiles are CORS requests without credentials) and sends "
    "no Authorization header with them, so Auth 1.0's iiif_access cookie never reaches a tile request "
    "across origins, same site or not. Serve UV from the image server's origin (one reverse proxy): "
    "test_uv_login_flow[same-origin] shows that working."
)


def open_viewer(session: Session, pages: str, viewer: str, server: str) -> Any:
    page = session.page
    page.goto(f"{pages}/{viewer}.html?manifest={quote(manifest_url(server), safe='')}")
    return page


def info_json(page_id: str = PAGE_1) -> str:
    return f"/iiif/3/{page_id}/info.json"


def assert_nothing_delivered(session: Session, server: str) -> None:
    """No image request answered 200 with image bytes, and what the viewer asked for is refused."""
    traffic = session.traffic
    assert traffic.delivered(server) == [], "a restricted image was delivered without clearance"
    assert 401 in traffic.statuses(server, info_json())
    # The viewer's image requests answered 401 or were cut off by the browser (ORB blocks a
    # cross-origin error body meant for an <img>); asked again without credentials, each is refused.
    asked = traffic.image_requests(server)
    assert asked, "the viewer asked for no image at all: the check above proves nothing"
    for url in asked[:5]:
        assert httpx.get(url, timeout=10).status_code == 401, url


def wait_for_image(session: Session, server: str, what: str, page_id: str = PAGE_1) -> None:
    """Tiles of `page_id` answered 200 and the viewer shows the red/green/blue test image."""
    page = session.page
    prefix = f"{server}/iiif/3/{page_id}/"
    try:
        wait_until(lambda: any(u.startswith(prefix) for u in session.traffic.delivered(server)), 30,
                   f"{what}: a tile answered 200", page)
        wait_until(lambda: shows_image(page), 30, f"{what}: the canvas showing the test image", page)
    except AssertionError as exc:
        screenshot(page, "failed-" + "-".join(what.lower().split()))
        log = "\n".join(f"{status} {url}" for url, status, _ in session.traffic.responses if url.startswith(server))
        raise AssertionError(f"{exc}\nresponses from the IIIF server:\n{log}") from None


def token_used(session: Session, server: str) -> int:
    """The viewer fetched the token (1.0 token service) and info.json then answered 200; where that is in the log."""
    wait_until(lambda: 200 in session.traffic.statuses(server, info_json()), 15, "info.json with the token",
               session.page)
    assert 200 in session.traffic.statuses(server, "/iiif/auth/token1"), "the 1.0 token service was not used"
    return next(i for i, (url, status, _) in enumerate(session.traffic.responses)
                if url == server + info_json() and status == 200)


# -- Mirador 4 ------------------------------------------------------------------------


def test_mirador_login_flow(session: Session, pages: str, server: str, archive: Archive) -> None:
    page = open_viewer(session, pages, "mirador", server)
    # 1. no clearance: the login notice, and no tile
    notice = page.get_by_text(LOGIN_LABEL)
    notice.wait_for()
    page.wait_for_timeout(SETTLE_MS)
    notice.click()  # Mirador folds the header and description away behind the label
    page.get_by_text(f"{HEADING}: {NOTE}", exact=False).wait_for()
    confirm = page.get_by_role("button", name=CONFIRM, exact=True)
    confirm.wait_for()
    page.wait_for_timeout(500)  # the unfolding animation
    screenshot(page, "mirador-1-login-notice")
    assert_nothing_delivered(session, server)
    assert not shows_image(page), quadrant_colours(page.screenshot())

    # 2. sign in through the login window
    sign_in(session, server, archive.token, confirm.click, "mirador-2-login-window")
    page.get_by_role("button", name="Sign out").wait_for()  # Mirador offers the logout service once signed in
    token_used(session, server)
    # Mirador 4.0.0 keeps the tiled image it opened from the 401 info.json: its OpenSeadragonTileSource
    # adds a tile source again only when the OpenSeadragon viewer or a plain image's url changes, not
    # when the info response turns from degraded to authorised, and OpenSeadragon does not retry failed
    # tiles. A page that is opened afresh loads: turn to page 2 and back.
    page.get_by_role("button", name="Next item").click()
    wait_for_image(session, server, "Mirador page 2 after signing in", PAGE_2)
    page.get_by_role("button", name="Previous item").click()
    wait_for_image(session, server, "Mirador page 1 after signing in", PAGE_1)
    screenshot(page, "mirador-2-signed-in")


def test_mirador_kiosk(session: Session, pages: str, kiosk_server: str) -> None:
    page = open_viewer(session, pages, "mirador", kiosk_server)
    wait_for_image(session, kiosk_server, "Mirador in the reading room")
    screenshot(page, "mirador-3-kiosk")
    assert len(session.windows) == 1, "a window was opened in the reading room"
    assert page.get_by_text(LOGIN_LABEL).count() == 0


# -- Universal Viewer 4 ---------------------------------------------------------------


@pytest.mark.parametrize("origin", ["same-origin", "cross-origin"])
def test_uv_login_flow(origin: str, session: Session, request: pytest.FixtureRequest, archive: Archive) -> None:
    if origin == "same-origin":
        pages = server = request.getfixturevalue("same_origin")
    else:
        pages, server = request.getfixturevalue("pages"), request.getfixturevalue("server")
    page = open_viewer(session, pages, "uv", server)
    # 1. no clearance: UV opens its auth dialogue with the login service's header and description
    dialogue = page.locator(".overlay.auth")
    dialogue.get_by_text(HEADING).wait_for()
    dialogue.get_by_text(NOTE, exact=False).wait_for()
    page.wait_for_timeout(SETTLE_MS)
    screenshot(page, f"uv-{origin}-1-login-notice")
    assert_nothing_delivered(session, server)
    assert not shows_image(page), quadrant_colours(page.screenshot())

    # 2. sign in through the login window
    sign_in(session, server, archive.token, dialogue.get_by_text(CONFIRM, exact=True).click,
            f"uv-{origin}-2-login-window")
    mark = token_used(session, server)
    if origin == "cross-origin":
        wait_until(lambda: session.traffic.images(server, since=mark), 15, "UV asking for tiles after signing in",
                   page)
        if not session.traffic.delivered(server):
            refused = [url for url, status, _ in session.traffic.images(server) if status == 401]
            cookie = next(c["value"] for c in session.context.cookies(server) if c["name"] == "iiif_access")
            # the browser holds the cookie and the cookie works: UV's tile requests just do not carry it
            assert refused and httpx.get(refused[-1], cookies={"iiif_access": cookie}).status_code == 200
            screenshot(page, "uv-cross-origin-2-signed-in-no-tiles")
            pytest.skip(UV_CROSS_ORIGIN)
    wait_for_image(session, server, f"UV ({origin}) after signing in")
    screenshot(page, f"uv-{origin}-2-signed-in")


def test_uv_kiosk(session: Session, pages: str, kiosk_server: str) -> None:
    page = open_viewer(session, pages, "uv", kiosk_server)
    wait_for_image(session, kiosk_server, "UV in the reading room")
    screenshot(page, "uv-3-kiosk")
    # info.json answers 200 here, yet UV 4 opens the 1.0 kiosk service in a window of its own (the
    # spec's kiosk pattern; the window closes itself, nobody clicks): manifesto's getData compares
    # unescape(info.json's id) with the service URL from the manifest, which keeps the %2F that an
    # identifier with '/' must have, so it takes any 200 info.json listing a login or kiosk service
    # for a "moved temporarily" (degraded) answer and runs its auth chain.
    for extra in session.windows[1:]:
        assert extra.url.startswith(f"{kiosk_server}/iiif/auth/kiosk?origin="), extra.url
        if not extra.is_closed():
            extra.wait_for_event("close", timeout=10_000)
