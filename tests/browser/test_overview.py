"""A visitor's `/` in Debian's Chromium (issue 22's done-when): every collection that is not hidden, described.

A public collection shows its thumbnail and opens in the viewer; a reading-room one, described from a CSV,
shows its description, extent, provenance and where it can be consulted (the configured sentence and the
partner named by its network rule), and nothing of what it holds: no image is asked for, no document named.
Its own page says the same. The staff collection is absent. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import quadrants, start_server, stop_server

from .viewing import ARTIFACTS, Session, cli, screenshot, wait_until

pytestmark = pytest.mark.browser

CONSULT = "in the reading room of Kazerne Dossin or at a partner institution"
PARTNER = "Partner archive X"
SUMMARY = "Letters written by deportees from the Dossin barracks to their families"
SECRET_WORDS = ("zylberberg", "personnel", "dossier")  # a restricted document's name, the hidden collection's


@pytest.fixture(scope="module")
def overview_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("overview-data")
    for cid, tier, label, doc in (("portraits", "public", "Portraits", "portrait-1"),
                                  ("letters", "reading-room", "Letters from Dossin", "letter-of-zylberberg"),
                                  ("personnel", "staff", "Personnel files", "dossier")):
        src = tmp_path_factory.mktemp(f"overview-{cid}")
        (src / doc).mkdir()
        quadrants(1200, 900).pngsave(str(src / doc / "p1.png"))
        cli("ingest", str(src), "--collection", cid, "--label", label, "--tier", tier, "--processes", "1",
            "--data-dir", str(data))
    sheet = data / "describe.csv"
    sheet.write_text("id,summary,dates,provenance\n"
                     f'letters,"{SUMMARY}",1942-1944,"Donated by the Lévy family"\n', encoding="utf-8")
    cli("collections", "describe", str(sheet), "--data-dir", str(data))
    proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(data), "--no-demo",
                              "--consult", f"reading-room={CONSULT}",
                              "--networks", f'reading-room=192.0.2.0/24 "{PARTNER}"'])
    try:
        yield url
    finally:
        stop_server(proc)


def test_a_visitor_sees_every_collection_described_and_nothing_restricted(session: Session,
                                                                          overview_server: str) -> None:
    server, page = overview_server, session.page
    print(f"screenshots in {ARTIFACTS}")
    page.goto(f"{server}/")
    cards = page.locator("li.card")
    assert sorted(c.get_attribute("id") for c in cards.all()) == ["collection-letters", "collection-portraits"]
    public, letters = page.locator("#collection-portraits"), page.locator("#collection-letters")
    assert "public" in (public.get_attribute("class") or "") and public.locator("a.open").is_visible()
    wait_until(lambda: page.evaluate("document.querySelector('#collection-portraits img').naturalWidth") > 0, 15,
               "the public collection's thumbnail", page)
    # the reading-room collection: described, where to consult it, and no image of it
    text = letters.inner_text()
    assert "Letters from Dossin" in text and SUMMARY in text and "1942-1944" in text
    assert "Donated by the Lévy family" in text and CONSULT in text
    assert letters.locator("img").count() == 0 and letters.locator("a.open").count() == 0
    assert PARTNER in page.inner_text("body")
    page.wait_for_timeout(500)
    shown = page.content().lower()
    assert not any(word in shown for word in SECRET_WORDS), "a restricted name on a visitor's /"
    screenshot(page, "overview-1-visitor-home")
    # its own page: the same description, no document listed
    letters.get_by_role("link", name="Letters from Dossin").click()
    page.wait_for_url(f"{server}/collections/letters")
    body = page.inner_text("main")
    assert SUMMARY in body and CONSULT in body and "zylberberg" not in page.content().lower()
    assert page.locator("main img").count() == 0
    screenshot(page, "overview-2-visitor-reading-room-collection")
    # a visitor's browser asked for no image of the reading-room or staff collection, and got nothing but 200s
    asked = [url for url in session.traffic.requests if url.startswith(server)]
    assert not [url for url in asked if "letters" in url.split("/iiif/3/")[-1] and "/iiif/3/" in url]
    assert not [url for url in asked if "personnel" in url]
    assert all(status == 200 for url, status, _ in session.traffic.responses if url.startswith(server)), \
        session.traffic.responses
