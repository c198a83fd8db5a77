"""Content Search in the viewers (issue 12): a name typed without accents is found and highlighted.

A public transport list (one page, white with grey "name" blocks) gets a name index through
`iiif-server text import` (a CSV with boxes, names with accents). Mirador 4's search panel and
Universal Viewer 4's search box find `Levy` for `Lévy`; the test then checks that the highlight
is drawn where the imported box is, scaled to the viewer's viewport:

- Mirador paints hits into a canvas over OpenSeadragon, so no element has the highlight's
  geometry: the test reads the viewer's centre and zoom from Mirador's store, maps the box to
  screen pixels, and finds the highlight in a screenshot as the only coloured pixels on a page
  that is all greys.
- UV draws each hit as an OpenSeadragon overlay element: its rectangle is compared directly.

Screenshots go to test-artifacts/browser/ (the tests print the path).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from .viewing import (
    ARTIFACTS,
    NAMES,
    SETTLE_MS,
    TRANSPORT_LIST,
    TRANSPORTS,
    TRANSPORTS_RR,
    VIEWPORT,
    Session,
    assert_near,
    coloured_box,
    grey_blocks,
    mirador_screen_box,
    screenshot,
    wait_until,
)

pytestmark = pytest.mark.browser

COLLECTION, DOCUMENT = TRANSPORTS, TRANSPORT_LIST  # in the shared archive (tests/browser/viewing.py)
RESTRICTED = TRANSPORTS_RR  # the same list in a reading-room collection
FOUND = NAMES[0]
QUERY = "Levy"  # typed without the accent


@pytest.fixture(scope="module")
def search_server(server: str) -> str:
    """The browser tests' shared IIIF server: its archive holds the transport lists with their name index."""
    return server


def manifest(server: str, collection: str = COLLECTION) -> str:
    return f"{server}/iiif/presentation/{collection}/{DOCUMENT}/manifest"


# -- Mirador 4 ------------------------------------------------------------------------

def test_mirador_search_panel_finds_and_highlights_a_name(session: Session, pages: str, search_server: str) -> None:
    page = session.page
    print(f"screenshots in {ARTIFACTS}")
    page.goto(f"{pages}/mirador.html?manifest={quote(manifest(search_server), safe='')}&panel=search")
    field = page.get_by_role("combobox")
    field.wait_for()
    field.fill(QUERY)
    field.press("Enter")
    # the hit is listed, with the imported text (accent and all), as the only one
    panel = page.get_by_role("complementary", name="Search")
    panel.get_by_text(FOUND[1], exact=True).wait_for()
    panel.get_by_text("1 of 1", exact=True).wait_for()
    asked = [u for u, status, _ in session.traffic.responses
             if u.startswith(f"{search_server}/iiif/search/1/{COLLECTION}/{DOCUMENT}/search?") and status == 200]
    assert asked and "q=Levy" in asked[0], asked
    page.wait_for_timeout(2500)  # Mirador pans to the hit; let the animation end
    view = wait_until(lambda: page.evaluate(VIEWPORT), 10, "Mirador's viewer state", page)
    shot = screenshot(page, "mirador-search-hit")
    print(f"screenshot: {shot}")
    expected = mirador_screen_box(view, FOUND[2:])
    region = {"x": view["left"], "y": view["top"], "width": view["width"], "height": view["height"]}
    found = wait_until(lambda: coloured_box(page.screenshot(), region), 10, "the highlight on the page", page)
    print(f"highlight drawn at {found}, the box maps to {tuple(round(v, 1) for v in expected)}")
    assert_near(found, expected, "Mirador's highlight")
    # the same from the page's own landmarks (the mapping above is not the viewer's word alone)
    assert_near(found, landmark_screen_box(page.screenshot(), region, FOUND[2:]), "Mirador's highlight (landmarks)")


def test_mirador_finds_nothing_in_a_reading_room_list_without_clearance(session: Session, pages: str,
                                                                       search_server: str) -> None:
    """The same list in a reading-room collection: to a visitor its manifest keeps the sign-in but offers no
    search (its words are content, issue 22), Mirador shows none of them, and the search URL itself answers
    no hit, no count and no text (tests/search/test_search.py checks every route over HTTP)."""
    page = session.page
    url = manifest(search_server, RESTRICTED)
    assert "SearchService" not in httpx.get(url, timeout=10).text
    page.goto(f"{pages}/mirador.html?manifest={quote(url, safe='')}&panel=search")
    wait_until(lambda: any(u == url for u, _, _ in session.traffic.responses), 15, "Mirador's manifest request",
               page)
    page.wait_for_timeout(SETTLE_MS)
    shot = screenshot(page, "mirador-search-reading-room-anonymous")
    print(f"screenshot: {shot}")
    assert page.get_by_text("Abraham").count() == 0
    assert not [u for u, _, _ in session.traffic.responses if "/iiif/search/" in u]
    answer = httpx.get(f"{search_server}/iiif/search/1/{RESTRICTED}/{DOCUMENT}/search?q={QUERY}", timeout=10)
    assert answer.status_code == 200 and answer.json()["within"]["total"] == 0 and answer.json()["resources"] == []
    assert "private" in answer.headers["cache-control"]


# -- Universal Viewer 4 ---------------------------------------------------------------


def landmark_screen_box(png: bytes, region: dict[str, float], box: tuple[int, int, int, int]) -> tuple[float, ...]:
    """An image-pixel box on screen, located by the page's last two name blocks (never highlighted here):
    their distance gives the scale, the second one the offset."""
    blocks = grey_blocks(png, region)
    assert len(blocks) >= 2, f"the page's name blocks are not on screen: {blocks}"
    (_, ay, _, _), (bx, by, bw, _) = blocks[-2], blocks[-1]
    iy2 = NAMES[1][3]
    ix3, iy3, iw3, _ = NAMES[2][2:]
    scale = (by - ay) / (iy3 - iy2)
    assert abs(bw / iw3 - scale) / scale < 0.05, (bw, iw3, scale)  # one scale both ways
    left, top = bx - ix3 * scale, by - iy3 * scale
    x, y, w, h = box
    return left + x * scale, top + y * scale, w * scale, h * scale


def test_uv_search_box_finds_and_highlights_a_name(session: Session, pages: str, search_server: str) -> None:
    page = session.page
    print(f"screenshots in {ARTIFACTS}")
    page.goto(f"{pages}/uv.html?manifest={quote(manifest(search_server), safe='')}")
    field = page.locator(".searchTextContainer input.searchText")
    field.wait_for()
    field.fill(QUERY)
    field.press("Enter")
    # the hit is drawn as an overlay titled with the imported text; the pager counts one result
    overlay = page.locator(".openseadragon-overlay-wrapper .annotationRect")
    overlay.wait_for()
    assert overlay.count() == 1
    assert overlay.get_attribute("title") == FOUND[1]
    info = page.locator(".searchResultsInfo")
    info.wait_for()
    assert "1" in info.inner_text() and QUERY in info.inner_text(), info.inner_text()
    asked = [u for u, status, _ in session.traffic.responses
             if u.startswith(f"{search_server}/iiif/search/1/{COLLECTION}/{DOCUMENT}/search?") and status == 200]
    assert asked and "q=Levy" in asked[0], asked
    page.wait_for_timeout(2500)  # UV zooms to the hit; let the animation end
    shot = screenshot(page, "uv-search-hit")
    print(f"screenshot: {shot}")
    box = overlay.bounding_box()
    assert box is not None
    region = page.evaluate("""() => {
      const r = document.querySelector('.openseadragon-canvas').getBoundingClientRect();
      return {x: r.left, y: r.top, width: r.width, height: r.height};
    }""")
    expected = landmark_screen_box(page.screenshot(), region, FOUND[2:])
    found = (box["x"], box["y"], box["width"], box["height"])
    print(f"highlight drawn at {found}, the box maps to {tuple(round(v, 1) for v in expected)}")
    assert_near(found, expected, "UV's highlight")
