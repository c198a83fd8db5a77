"""Issue 23's done-when in Debian's Chromium: an archivist signs in through the institution's OpenID provider
(oidc-provider on loopback, its own sign-in page), changes a tier, starts an ingest of a small folder from
the console and watches it finish, opens a reading-room document in Mirador without a second sign-in, and
signs out, which signs the viewer out too. A reading-room desk signs in the same way and is offered no form.
A screenshot of each screen goes to test-artifacts/browser/ (staff-oidc-*.png).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openid_provider
import pytest
from support import free_port, quadrants, start_server, stop_server

from .viewing import LOGIN_LABEL, SETTLE_MS, Traffic, cli, screenshot, shows_image, wait_until

pytestmark = pytest.mark.browser

SIZE = (1200, 900)


def info(server: str, identifier: str) -> str:
    return f"{server}/iiif/3/{quote(identifier, safe='')}/info.json"


@pytest.fixture(scope="module")
def oidc_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A public and a reading-room collection, and a masters folder holding one small folder to ingest."""
    data = tmp_path_factory.mktemp("oidc-data")
    png = tmp_path_factory.mktemp("oidc-png") / "page.png"
    quadrants(*SIZE).pngsave(str(png))
    for cid, tier, docs in (("open", "public", {"a": 1}), ("rr", "reading-room", {"letter": 2})):
        src = tmp_path_factory.mktemp(f"oidc-masters-{cid}")
        for doc, n in docs.items():
            (src / doc).mkdir()
            for p in range(1, n + 1):
                shutil.copy(png, src / doc / f"p{p}.png")
        cli("ingest", str(src), "--collection", cid, "--label", f"The {cid} collection", "--tier", tier,
            "--processes", "1", "--data-dir", str(data))
    masters = tmp_path_factory.mktemp("oidc-masters-root")
    for doc, n in (("d1", 2), ("d2", 1)):
        (masters / "incoming" / "letters-1943" / doc).mkdir(parents=True)
        for p in range(1, n + 1):
            shutil.copy(png, masters / "incoming" / "letters-1943" / doc / f"p{p}.png")
    return data, masters


@pytest.fixture(scope="module")
def oidc_server(oidc_archive: tuple[Path, Path], pages: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, openid_provider.Provider]]:
    """The server, pointed at a provider on a port chosen first; the provider, started once the server's
    callback address is known."""
    openid_provider.install()
    data, masters = oidc_archive
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    secret = tmp_path_factory.mktemp("oidc-secret") / "client-secret"
    secret.write_text(openid_provider.CLIENT_SECRET + "\n")
    proc, url = start_server([
        "--host", "127.0.0.1", "--data-dir", str(data), "--no-demo",
        "--viewer-url", f"{pages}/node_modules/mirador/dist/mirador.min.js",
        "--oidc-issuer", issuer, "--oidc-client-id", openid_provider.CLIENT_ID,
        "--oidc-client-secret-file", str(secret), "--oidc-scopes", ",".join(openid_provider.SCOPES),
        "--oidc-role-map", ",".join(openid_provider.ROLE_MAP), "--oidc-label", "the archive's account",
        "--masters-root", str(masters), "--ingest-workers", "1"])
    provider = openid_provider.start([f"{url}/staff/oidc/callback"], port=port)
    try:
        yield url, provider
    finally:
        provider.stop()
        stop_server(proc)


def shot(page: Any, name: str) -> None:
    print(f"screenshot: {screenshot(page, name)}")


def eventually(url: str, wanted: int) -> None:
    for _ in range(40):
        if httpx.get(url, timeout=10).status_code == wanted:
            return
        time.sleep(0.1)
    assert httpx.get(url, timeout=10).status_code == wanted, url


def sign_in(page: Any, server: str, user: str, name: str) -> None:
    page.goto(f"{server}/staff/")
    assert page.url == f"{server}/staff/login"
    page.click("#oidc")
    page.wait_for_selector("input[name=password]")
    assert page.title() == "Institution sign-in"  # the provider's own page
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", openid_provider.PASSWORD)
    shot(page, f"staff-oidc-{name}-provider-sign-in")
    page.click("button:has-text('Sign in')")
    # the callback answers a "Signed in" page that moves on by itself: wait for the console's own page, loaded,
    # so that no navigation of the test races that one
    page.wait_for_url(lambda url: url.startswith(f"{server}/staff/") and "/staff/oidc/" not in url)
    page.wait_for_selector("#who")


def test_an_archivist_signs_in_through_the_provider_and_works_without_a_second_sign_in(
        browser: Any, oidc_server: tuple[str, openid_provider.Provider]) -> None:
    server, provider = oidc_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    traffic = Traffic()
    context.on("request", traffic.on_request)
    context.on("response", traffic.on_response)
    page = context.new_page()

    # 1. through the provider's sign-in page and back, as an archivist
    sign_in(page, server, "anna", "1")
    assert page.url == f"{server}/staff/"
    assert page.inner_text("#who") == "Anna Archivist (archivist)"
    assert page.locator("a[href='/staff/tokens']").count() == 0  # an admin's, not an archivist's
    assert any(url.startswith(provider.issuer + "/auth") for url in traffic.requests)
    shot(page, "staff-oidc-2-signed-in")

    # 2. a tier: the public document becomes reading-room
    assert httpx.get(info(server, "open/a/p1"), timeout=10).status_code == 200
    page.goto(f"{server}/staff/collections/open/a")
    page.locator("form[action='/staff/tier']").first.locator("select[name=tier]").select_option("reading-room")
    page.locator("form[action='/staff/tier']").first.locator("button").click()
    page.wait_for_url(re.compile(r".*/staff/tier\?.*"))
    page.click("button:has-text('Change to reading-room')")
    page.wait_for_url(f"{server}/staff/collections/open/a?changed=1")
    eventually(info(server, "open/a/p1"), 401)

    # 3. an ingest from the console: pick the folder, start, watch it finish, find its report
    page.goto(f"{server}/staff/ingest")
    page.click("a:has-text('New ingest')")
    page.click("#folders a:has-text('incoming')")
    page.click("#folders a:has-text('letters-1943')")
    assert page.input_value("input[name=collection]") == "letters-1943"
    page.select_option("select[name=tier]", "reading-room")
    page.fill("input[name=label]", "Letters, 1943")
    shot(page, "staff-oidc-3-ingest-form")
    page.click("button:has-text('Start the ingest')")
    page.wait_for_url(re.compile(r".*/staff/ingest/runs/[0-9a-f]+$"))
    wait_until(lambda: page.inner_text("#state").startswith("finished"), 120, "the run to finish", page)
    assert page.inner_text("#done") == "3" and page.inner_text("#failed") == "0" and page.inner_text("#left") == "0"
    assert "From incoming/letters-1943," in page.inner_text("main")  # as picked, not the server's own path
    shot(page, "staff-oidc-4-ingest-finished")
    page.click("#report a")
    page.wait_for_selector("#counts")
    assert "3 converted" in page.inner_text("#counts")
    page.goto(f"{server}/staff/ingest")
    assert "letters-1943" in page.inner_text("#latest") and "finished" in page.inner_text("#latest")
    shot(page, "staff-oidc-5-runs")

    # 4. a reading-room document in Mirador on the same site: shown, with no sign-in window and no token typed
    opened = len(context.pages)
    viewer = context.new_page()
    viewer.goto(f"{server}/view/rr/letter")  # the document: its collection page is all a visitor gets of /view/rr
    wait_until(lambda: shows_image(viewer), 40, "Mirador showing the reading-room letter", viewer)
    viewer.wait_for_timeout(SETTLE_MS)
    assert len(context.pages) == opened + 1  # the viewer only: no sign-in window opened
    assert not [u for u in traffic.requests if "/iiif/auth/login" in u]
    assert viewer.get_by_text(LOGIN_LABEL).count() == 0  # no notice either: info.json names an external service
    shot(viewer, "staff-oidc-6-mirador")

    # 5. signing out of the console signs the viewer out
    page.goto(f"{server}/staff/")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{server}/staff/login")
    assert not [c for c in context.cookies(server) if c["name"] in ("iiif_access", "iiif_staff")]
    assert context.request.get(info(server, "rr/letter/p1")).status == 401
    viewer.reload()
    viewer.get_by_text(LOGIN_LABEL).wait_for()
    viewer.wait_for_timeout(SETTLE_MS)
    assert not shows_image(viewer)
    shot(viewer, "staff-oidc-7-mirador-signed-out")
    assert not traffic.foreign, traffic.foreign[:5]
    context.close()


def test_the_reading_room_desk_signs_in_and_is_offered_no_form(
        browser: Any, oidc_server: tuple[str, openid_provider.Provider]) -> None:
    server, _ = oidc_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, server, "rita", "desk")
    assert page.inner_text("#who") == "Rita Reading-Room (reading-room)"
    page.goto(f"{server}/staff/collections/rr/letter")
    assert page.locator("form[action='/staff/tier']").count() == 0
    assert page.locator("form[action='/staff/withdraw']").count() == 0
    shot(page, "staff-oidc-8-reading-room-desk")
    page.goto(f"{server}/staff/ingest/new")
    assert "does not include this part" in page.inner_text("main")
    # a form posted all the same, with the session's own CSRF value, is refused
    csrf = page.goto(f"{server}/staff/").text() and page.get_attribute("input[name=csrf]", "value")
    r = context.request.post(f"{server}/staff/tier", form={"csrf": csrf, "target": "rr", "tier": "public"},
                             headers={"Origin": server})
    assert r.status == 403
    assert httpx.get(info(server, "rr/letter/p1"), timeout=10).status_code == 401
    context.close()
