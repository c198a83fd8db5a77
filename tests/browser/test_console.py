"""The staff console and the landing page in Debian's Chromium, end to end (issue 13's done-when).

A member of staff signs in with a staff token; changes a document from public to reading-room and an
anonymous request for it is refused; issues a reading-room token, which a reader uses in Mirador (a
document's viewer page, Mirador loaded from --viewer-url, here the npm package served on loopback);
revokes it, and it is refused; withdraws a page; and reads all four actions in the audit log. A visitor's
`/` shows the public and the reading-room collection and opens the public one in the viewer. A screenshot
of each screen goes to test-artifacts/browser/ (the test prints the folder).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import quadrants, start_server, stop_server

from .viewing import (
    ARTIFACTS,
    CONFIRM,
    LOGIN_LABEL,
    SETTLE_MS,
    Session,
    Traffic,
    cli,
    screenshot,
    shows_image,
    sign_in,
    wait_until,
)

pytestmark = pytest.mark.browser

SIZE = (1200, 900)


def info(server: str, identifier: str) -> str:
    return f"{server}/iiif/3/{quote(identifier, safe='')}/info.json"


@pytest.fixture(scope="module")
def console_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A public collection of two documents, a reading-room and a staff collection; a staff token."""
    data = tmp_path_factory.mktemp("console-data")
    for cid, tier, docs in (("open", "public", {"a": 2, "b": 1}), ("rr", "reading-room", {"letter": 2}),
                            ("personnel", "staff", {"file": 1})):
        src = tmp_path_factory.mktemp(f"masters-{cid}")
        for doc, n in docs.items():
            (src / doc).mkdir()
            for p in range(1, n + 1):
                quadrants(*SIZE).pngsave(str(src / doc / f"p{p}.png"))
        cli("ingest", str(src), "--collection", cid, "--label", f"The {cid} collection", "--tier", tier,
            "--processes", "1", "--data-dir", str(data))
    token = cli("token", "issue", "--tier", "staff", "--holder", "Archivist", "--days", "1",
                "--data-dir", str(data)).strip().splitlines()[-1]
    return data, token


@pytest.fixture(scope="module")
def console_server(console_archive: tuple[Path, str], pages: str) -> Iterator[str]:
    data, _ = console_archive
    proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(data), "--no-demo",
                              "--viewer-url", f"{pages}/node_modules/mirador/dist/mirador.min.js"])
    try:
        yield url
    finally:
        stop_server(proc)


def status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=10).status_code


def eventually(url: str, wanted: int, token: str | None = None) -> None:
    """A change reaches every request within a second (the snapshot's bound)."""
    for _ in range(40):
        if status(url, token) == wanted:
            return
        time.sleep(0.1)
    assert status(url, token) == wanted, url


def shot(page: Any, name: str) -> None:
    path = screenshot(page, name)
    print(f"screenshot: {path}")


def test_staff_console_and_landing_page(browser: Any, console_archive: tuple[Path, str], console_server: str,
                                        pages: str) -> None:
    server = console_server
    _, staff_token = console_archive
    print(f"screenshots in {ARTIFACTS}")
    staff = browser.new_context(viewport={"width": 1280, "height": 900})
    staff.set_default_timeout(20_000)
    page = staff.new_page()

    # sign in with the staff token
    page.goto(f"{server}/staff/")
    assert page.url == f"{server}/staff/login"
    page.fill("input[name=token]", staff_token)
    shot(page, "console-1-sign-in")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{server}/staff/")
    assert page.locator("a[href='/staff/collections/open']").is_visible()
    shot(page, "console-2-collections")

    # a document from public to reading-room: review, confirm, and anonymous requests are refused
    assert status(info(server, "open/b/p1")) == 200
    page.goto(f"{server}/staff/collections/open/b")
    page.locator("form[action='/staff/tier']").first.locator("select[name=tier]").select_option("reading-room")
    page.locator("form[action='/staff/tier']").first.locator("button").click()
    page.wait_for_url(re.compile(r".*/staff/tier\?.*"))
    assert "1 page becomes reading-room" in page.inner_text("main")
    shot(page, "console-3-tier-confirmation")
    page.click("button:has-text('Change to reading-room')")
    page.wait_for_url(f"{server}/staff/collections/open/b?changed=1")
    shot(page, "console-4-tier-changed")
    eventually(info(server, "open/b/p1"), 401)

    # issue a reading-room token for the rr collection
    page.goto(f"{server}/staff/tokens")
    page.fill("input[name=holder]", "Visiting reader")
    page.select_option("select[name=tier]", "reading-room")
    page.fill("input[name=days]", "7")
    page.fill("input[name=collections]", "rr")
    page.click("button:has-text('Issue')")
    page.wait_for_selector("#token")
    reader_token = page.input_value("#token")
    assert reader_token and status(info(server, "rr/letter/p1"), reader_token) == 200
    shot(page, "console-5-token-issued")

    # the reader uses it in Mirador, on the viewer page behind /
    reader_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    reader_ctx.set_default_timeout(20_000)
    reader = Session(reader_ctx, reader_ctx.new_page(), _traffic(reader_ctx), [])
    # (the collection's own viewer sends those not cleared to its page: the reader opens the document's, which
    # offers the sign-in as its manifest does)
    reader.page.goto(f"{server}/view/rr/letter")
    notice = reader.page.get_by_text(LOGIN_LABEL)
    notice.wait_for()
    reader.page.wait_for_timeout(SETTLE_MS)
    notice.click()
    confirm = reader.page.get_by_role("button", name=CONFIRM, exact=True)
    confirm.wait_for()
    sign_in(reader, server, reader_token, confirm.click, "console-6-reader-login-window")
    # the window's sign-in, the token and info.json again: beyond the default 20 s on a loaded 2-core machine
    reader.page.get_by_role("button", name="Sign out").wait_for(timeout=45_000)
    # Mirador 4.0.0 keeps the tile source it opened from the 401 (see test_viewers): turn the page and back
    reader.page.get_by_role("button", name="Next item").click()
    reader.page.wait_for_timeout(500)
    reader.page.get_by_role("button", name="Previous item").click()
    wait_until(lambda: shows_image(reader.page), 30, "Mirador showing the reading-room page", reader.page)
    shot(reader.page, "console-7-reader-in-mirador")

    # revoke it: refused everywhere, the reader's cookie included
    page.goto(f"{server}/staff/tokens")
    row = page.locator("tr", has_text="Visiting reader")
    assert "active" in row.inner_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row.locator("td.used").inner_text())  # its last use
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_url(f"{server}/staff/tokens")
    assert "revoked" in page.locator("tr", has_text="Visiting reader").inner_text()
    shot(page, "console-8-token-revoked")
    eventually(info(server, "rr/letter/p1"), 401, reader_token)
    assert reader_ctx.request.get(info(server, "rr/letter/p1")).status == 401
    assert not reader.traffic.foreign, reader.traffic.foreign[:5]  # Mirador came from loopback, not a CDN
    reader_ctx.close()

    # withdraw a page, with a reason
    assert status(info(server, "open/a/p2")) == 200
    page.goto(f"{server}/staff/withdraw?target=open/a/p2")
    page.fill("textarea[name=reason]", "Rights holder's request")
    shot(page, "console-9-withdraw")
    page.click("button:has-text('Withdraw open/a/p2')")
    page.wait_for_selector("text=is withdrawn")
    eventually(info(server, "open/a/p2"), 404)

    # the four actions in the audit log, with who and from where
    page.goto(f"{server}/staff/audit")
    rows = page.locator("#audit tr.entry.staff")
    actions = [rows.nth(i).locator("td.action").inner_text() for i in range(rows.count())]
    for action in ("set-tier", "token-issue", "token-revoke", "withdraw"):
        assert action in actions, actions
    withdraw_row = page.locator("#audit tr.entry", has_text="open/a/p2").first.inner_text()
    assert "Archivist" in withdraw_row and "127.0.0.1" in withdraw_row and "Rights holder" in withdraw_row
    shot(page, "console-10-audit-log")
    page.fill("input[name=collection]", "open")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r".*collection=open.*"))
    filtered = page.locator("#audit tr.entry td.action").all_inner_texts()
    assert "set-tier" in filtered and "withdraw" in filtered and "token-issue" not in filtered
    shot(page, "console-11-audit-filtered")
    # the ingest runs that made this archive, as the ingest command recorded them
    page.goto(f"{server}/staff/ingest")
    reports = page.locator("#reports tbody tr").all_inner_texts()
    assert [r.split("\t")[1] for r in reports] == ["personnel", "rr", "open"], reports
    # and each command-line run kept its row in the catalogue, finished
    latest = page.locator("#latest tbody tr").all_inner_texts()
    assert sorted(r.split("\t")[1] for r in latest) == ["open", "personnel", "rr"], latest
    assert all(r.split("\t")[3] == "finished" and r.split("\t")[2].startswith("command line (") for r in latest)
    shot(page, "console-12-ingest-runs")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{server}/staff/login")
    staff.close()

    # a visitor's /: the public collection, which opens in the viewer, and the reading-room one without an
    # image or a document of it (tests/browser/test_overview.py looks at it closer); not the staff one
    visitor_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    visitor_ctx.set_default_timeout(20_000)
    visitor = visitor_ctx.new_page()
    visitor.goto(f"{server}/")
    cards = visitor.locator("li.card")
    assert sorted(c.get_attribute("id") for c in cards.all()) == ["collection-open", "collection-rr"]
    assert visitor.locator("#collection-rr img").count() == 0 and "letter" not in visitor.content()
    assert "personnel" not in visitor.content()
    wait_until(lambda: visitor.evaluate("document.querySelector('#collection-open img').naturalWidth") > 0, 15,
               "the thumbnail", visitor)
    shot(visitor, "console-13-visitor-home")
    visitor.click("#collection-open a.open")
    visitor.wait_for_url(f"{server}/view/open")
    wait_until(lambda: shows_image(visitor), 40, "Mirador showing the public collection's first page", visitor)
    shot(visitor, "console-14-visitor-viewer")
    visitor_ctx.close()


def _traffic(context: Any) -> Any:
    traffic = Traffic()
    context.on("request", traffic.on_request)
    context.on("response", traffic.on_response)
    return traffic
