"""A visitor finds a person and opens their line on the transport list in a viewer (issue 21).

The archive: a public transport list (white, a grey block where each name stands: nothing coloured) with its
name index, a portrait, and the list of people from a CSV linking two people to their lines and one to the
portrait. The visitor searches a name typed without its accent, opens the person, sees the portrait and the
picture of their line, and follows "open in the viewer":

- Mirador (our /view page, which turns the content state into Mirador's window settings) shows the list zoomed
  to the line, with the name annotation drawn around it: found in a screenshot as coloured pixels where the
  line's box maps on screen (from Mirador's viewport, and from the grey block of the line itself), and listed
  in the annotations panel;
- Universal Viewer (our /uv page; UV reads the content state itself) shows the same, its name overlay over
  the line's grey block.

Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support import quadrants, start_server, stop_server

from .viewing import (
    ARTIFACTS,
    NAMES,
    TRANSPORT_LIST,
    VIEWPORT,
    Session,
    assert_near,
    cli,
    coloured_box,
    mirador_screen_box,
    screenshot,
    transport_page,
    wait_until,
)

pytestmark = pytest.mark.browser

LEVY, GOLD = NAMES[0], NAMES[1]  # ("p1", "Lévy, Abraham", x, y, w, h)
PEOPLE = f"""id,surname,given names,birth date,birth place,transport,number,portrait,list page,line box
1,Lévy,Abraham,1921-03,Warszawa,XX,12,portraits/levy,lists/{TRANSPORT_LIST}/p1,"{','.join(map(str, LEVY[2:]))}"
2,Goldsztajn,Chaja,1930,Łódź,XX,13,,lists/{TRANSPORT_LIST}/p1,"{','.join(map(str, GOLD[2:]))}"
"""


@pytest.fixture(scope="module")
def people_server(pages: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("people-data")
    lists, portraits = tmp_path_factory.mktemp("people-lists"), tmp_path_factory.mktemp("people-portraits")
    (lists / TRANSPORT_LIST).mkdir()
    transport_page(lists / TRANSPORT_LIST / "p1.png")
    (portraits / "levy").mkdir()
    quadrants(600, 800).pngsave(str(portraits / "levy" / "p1.png"))
    names = tmp_path_factory.mktemp("people-text") / "names.csv"
    names.write_text("document,page,text,x,y,w,h,kind\n" + "".join(
        f'{TRANSPORT_LIST},{p},"{t}",{x},{y},{w},{h},name\n' for p, t, x, y, w, h in NAMES), encoding="utf-8")
    people = data / "people.csv"
    people.write_text(PEOPLE, encoding="utf-8")
    for src, cid in ((lists, "lists"), (portraits, "portraits")):
        cli("ingest", str(src), "--collection", cid, "--label", cid.title(), "--processes", "1",
            "--data-dir", str(data))
    cli("text", "import", str(names), "--collection", "lists", "--data-dir", str(data))
    cli("persons", "import", str(people), "--data-dir", str(data))
    proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(data), "--no-demo",
                              "--viewer-url", f"{pages}/node_modules/mirador/dist/mirador.min.js",
                              "--uv-url", f"{pages}/node_modules/universalviewer/dist"])
    yield url
    stop_server(proc)


def find_and_open(session: Session, server: str, shot: str) -> Any:
    """Search a name without its accent, open the person; their portrait and line picture show."""
    page = session.page
    page.goto(f"{server}/persons?q=Levy")
    page.get_by_role("link", name="Lévy, Abraham").click()
    page.wait_for_url(f"{server}/persons/1")
    page.get_by_role("heading", name="Lévy, Abraham").wait_for()
    for alt in ("Portrait of Abraham Lévy", "The line of Abraham Lévy on the list"):
        img = page.get_by_alt_text(alt)
        img.wait_for()
        wait_until(lambda img=img: img.evaluate("i => i.complete && i.naturalWidth > 0"), 15, f"the image {alt}", page)
    assert page.get_by_alt_text("Portrait of Abraham Lévy").evaluate("i => i.naturalWidth") >= 300
    screenshot(page, shot)
    return page


def canvas_region(page: Any) -> dict[str, float]:
    return page.evaluate("""() => {
      const r = document.querySelector('.openseadragon-canvas').getBoundingClientRect();
      return {x: r.left, y: r.top, width: r.width, height: r.height};
    }""")


def block_under(png: bytes, near: tuple[float, float, float, float], margin: int = 24) -> tuple[int, int, int, int]:
    """The grey block of a line of the list on screen, found around a box: its dark pixels (the block is grey
    90 on a white page; a viewer's tinted overlay or coloured outline leaves it darker than anything else)."""
    import numpy as np
    import pyvips

    img = pyvips.Image.new_from_buffer(png, "")
    arr = np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))
    x0, y0 = max(0, int(near[0]) - margin), max(0, int(near[1]) - margin)
    x1, y1 = int(near[0] + near[2]) + margin, int(near[1] + near[3]) + margin
    dark = arr[y0:y1, x0:x1, :3].max(axis=-1) < 180
    assert dark.sum() > 100, "no line of the list under the box"
    ys, xs = np.nonzero(dark)
    return x0 + int(xs.min()), y0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_mirador_opens_the_list_at_the_persons_line_with_their_name(session: Session,
                                                                    people_server: str) -> None:
    print(f"screenshots in {ARTIFACTS}")
    page = find_and_open(session, people_server, "person-page")
    page.get_by_role("link", name="Open in the viewer at this line").click()
    page.wait_for_url(f"{people_server}/view?iiif-content=*")
    # the annotations panel lists the names on the page, the person's among them
    panel = page.get_by_role("complementary", name="Annotations")
    panel.get_by_text("Lévy, Abraham").wait_for(timeout=30_000)
    panel.get_by_text("Goldsztajn, Chaja").wait_for()

    def zoomed() -> dict[str, float] | None:
        view = page.evaluate(VIEWPORT)
        if not view:
            return None
        box = mirador_screen_box(view, LEVY[2:])
        return view if box[2] >= 0.5 * view["width"] else None

    view = wait_until(zoomed, 20, "Mirador zoomed to the line", page)
    page.wait_for_timeout(1500)  # the zoom's animation
    view = wait_until(lambda: page.evaluate(VIEWPORT), 10, "Mirador's viewer state", page)
    shot = screenshot(page, "mirador-person-line")
    print(f"screenshot: {shot}")
    expected = mirador_screen_box(view, LEVY[2:])
    # the line is in the middle of the view
    assert abs(expected[0] + expected[2] / 2 - (view["left"] + view["width"] / 2)) < 0.1 * view["width"], expected
    assert abs(expected[1] + expected[3] / 2 - (view["top"] + view["height"] / 2)) < 0.1 * view["height"], expected
    # the annotation is drawn around it: the only coloured pixels near the line's box
    margin = 30
    near = {"x": expected[0] - margin, "y": expected[1] - margin, "width": expected[2] + 2 * margin,
            "height": expected[3] + 2 * margin}
    png = page.screenshot()
    found = coloured_box(png, near)
    assert found is not None, "no annotation drawn at the line"
    print(f"annotation drawn at {found}, the box maps to {tuple(round(v, 1) for v in expected)}")
    assert_near(found, expected, "Mirador's name annotation (from its viewport)")
    assert_near(found, block_under(png, found), "Mirador's name annotation (around the line's block)")


def test_universal_viewer_opens_the_list_at_the_persons_line_with_their_name(session: Session,
                                                                             people_server: str) -> None:
    page = find_and_open(session, people_server, "person-page-uv")
    page.get_by_role("link", name="in Universal Viewer").click()
    page.wait_for_url(f"{people_server}/uv#?iiif-content=*")
    overlay = page.locator('.openseadragon-overlay-wrapper .annotationRect[title="Lévy, Abraham"]')
    overlay.wait_for(timeout=30_000)
    assert page.locator(".openseadragon-overlay-wrapper .annotationRect").count() == 2  # both names on the page
    page.wait_for_timeout(2500)  # UV fits the view to the content state's region
    region = canvas_region(page)
    box = overlay.bounding_box()
    assert box is not None
    found = (box["x"], box["y"], box["width"], box["height"])
    shot = screenshot(page, "uv-person-line")
    print(f"screenshot: {shot}; name overlay at {found}")
    assert found[2] >= 0.4 * region["width"], "not zoomed to the line"
    assert abs(found[1] + found[3] / 2 - (region["y"] + region["height"] / 2)) < 0.15 * region["height"]
    assert_near(found, block_under(page.screenshot(), found), "UV's name overlay (over the line's block)")
    # a click on the name leads to the person
    overlay.click()
    page.wait_for_url(f"{people_server}/persons/1")
