"""Restricted pages look restricted, not broken (issue 8), in Mirador 4.0.0 and Universal Viewer 4.

Mirador's thumbnail strip of a reading-room document shows the server's public placeholder (a
padlock on grey) for each page: before sign-in and after it. After sign-in Mirador keeps the
manifest it fetched anonymously (it fetches manifests without credentials, and would keep them
anyway), so the strip keeps the placeholders. That is what we want: a thumbnail is fetched without
credentials by every viewer, and a placeholder that loads is honest where a real thumbnail
would be a broken image; the page itself loads once the reader turns to it (test_viewers).

Mirador 4.0.0's signed-in bar renders only the logout service's label, as its button, with no
text beside it (its IIIFAuthentication passes no label to the bar once signed in); so the
server's logout label says that the reader is signed in.

UV 4.4.0 builds its thumbnails from each canvas's image service (`full/90,/0/default.jpg`), never
from the manifest's thumbnail: the server answers such a refused whole-image request from a
browser's image load with the placeholder drawn at the size asked for (still 401, private), so
UV's thumbnails show padlocks, not broken images.

UV 4.4.0 colours its auth dialogue's confirm button (an <a class="btn btn-primary">) with its
own link colour, which is the button's background colour: the label is there but invisible
unless the embedding page sets the text colour (pages/uv.html does; the README says so).

Screenshots go to test-artifacts/browser/ (the tests print the path).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from .viewing import (
    ARTIFACTS,
    CONFIRM,
    HEADING,
    LOGIN_LABEL,
    NOTE,
    PAGES_OF_DOCUMENT,
    Archive,
    Session,
    manifest_url,
    screenshot,
    sign_in,
    wait_until,
)

pytestmark = pytest.mark.browser

PLACEHOLDER_SIZE = 256  # iiif_server.tiles.placeholder.SIZE
SIGNED_IN = "Signed in"  # the start of the logout service's label
STRIP_IMAGES = """() => [...document.querySelectorAll('.mirador-thumb-navigation img')].map(i => {
  const r = i.getBoundingClientRect();
  return {src: i.currentSrc || i.src, complete: i.complete, natural: i.naturalWidth, width: r.width, height: r.height};
})"""


UV_THUMBS = """() => [...document.querySelectorAll('.thumbs img')].filter(i => i.src.includes('/iiif/3/')).map(i => {
  const r = i.getBoundingClientRect();
  return {src: i.currentSrc || i.src, complete: i.complete, natural: i.naturalWidth, width: r.width};
})"""


def strip(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(STRIP_IMAGES))


def assert_strip_shows_placeholders(session: Session, server: str, shot: str) -> None:
    """One loaded, visible placeholder per page; no thumbnail request refused."""
    page = session.page

    def loaded() -> list[dict[str, Any]] | None:
        """One reading of the strip, each image loaded from its own source (not Mirador's 1-pixel data: stand-in
        while it waits to load it); asserted as read, since Mirador may redraw the strip meanwhile."""
        images = strip(page)
        done = all(i["complete"] and not i["src"].startswith("data:") for i in images)
        return images if len(images) == len(PAGES_OF_DOCUMENT) and done else None

    images = wait_until(loaded, 15, "the thumbnail strip's images to load", page)
    path = screenshot(page, shot)
    print(f"screenshot: {path}")
    for img in images:
        # a broken <img> is complete with naturalWidth 0; a sliver is a few pixels wide
        assert img["natural"] == PLACEHOLDER_SIZE, img
        assert img["src"] == f"{server}/iiif/placeholder.png", img
        assert img["width"] >= 40 and img["height"] >= 40, img
    # what the strip draws: the placeholder's light grey and its darker padlock
    import numpy as np
    import pyvips

    shot_png = page.locator(".mirador-thumb-navigation img").first.screenshot()
    picture = pyvips.Image.new_from_buffer(shot_png, "")
    arr = np.ndarray(buffer=picture.write_to_memory(), dtype=np.uint8,
                     shape=(picture.height, picture.width, picture.bands))[..., :3].astype(np.int16)
    grey = (np.abs(arr - 232) <= 12).all(axis=-1).mean()
    padlock = (np.abs(arr - 150) <= 20).all(axis=-1).mean()
    assert grey > 0.3 and padlock > 0.03, (grey, padlock)
    sources = {img["src"] for img in images}
    refused = [(u, s) for u, s, _ in session.traffic.responses if s >= 400 and u in sources]
    assert refused == [], f"thumbnail requests refused: {refused}"


def test_mirador_strip_and_bar_before_and_after_sign_in(session: Session, pages: str, server: str,
                                                      archive: Archive) -> None:
    page = session.page
    page.goto(f"{pages}/mirador.html?manifest={quote(manifest_url(server), safe='')}&thumbnails=far-bottom")
    print(f"screenshots in {ARTIFACTS}")
    page.get_by_text(LOGIN_LABEL).wait_for()
    # 1. before sign-in: placeholders, and the bar names the sign-in
    assert_strip_shows_placeholders(session, server, "mirador-strip-1-before-sign-in")

    # 2. sign in through Mirador's auth bar
    page.get_by_text(LOGIN_LABEL).click()
    confirm = page.get_by_role("button", name=CONFIRM, exact=True)
    confirm.wait_for()
    sign_in(session, server, archive.token, confirm.click, "mirador-strip-2-login-window")
    sign_out = page.get_by_role("button", name="Sign out")
    sign_out.wait_for()
    page.wait_for_timeout(1500)  # whatever Mirador reloads after the token
    bar = sign_out.locator("xpath=ancestor::*[contains(@class, 'MuiPaper-root')][1]")
    text = " ".join(bar.inner_text().split())
    assert SIGNED_IN.lower() in text.lower(), f"the signed-in bar says only {text!r}"
    assert "sign out" in text.lower(), text
    box = sign_out.bounding_box()
    assert box is not None and box["width"] > 100, box  # the whole label is drawn, not a bare "SIGN OUT"
    # 3. after sign-in: the strip still shows loaded placeholders (see the module's docstring)
    assert_strip_shows_placeholders(session, server, "mirador-strip-3-after-sign-in")


def contrast(page: Any, selector: str) -> float:
    """WCAG contrast ratio of an element's text colour against the first opaque background behind it."""
    return float(page.evaluate("""(sel) => {
      const el = document.querySelector(sel);
      const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
      let bg = null;
      for (let n = el; n; n = n.parentElement) {
        const c = parse(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { bg = c.slice(0, 3); break; }
      }
      bg = bg || [255, 255, 255];
      const fg = parse(getComputedStyle(el).color).slice(0, 3);
      const lum = rgb => {
        const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      return (a + 0.05) / (b + 0.05);
    }""", selector))


def test_uv_sign_in_dialogue_is_readable(session: Session, pages: str, server: str) -> None:
    page = session.page
    page.goto(f"{pages}/uv.html?manifest={quote(manifest_url(server), safe='')}")
    dialogue = page.locator(".overlay.auth")
    dialogue.get_by_text(HEADING).wait_for()
    page.wait_for_timeout(500)
    print(f"screenshots in {ARTIFACTS}")
    heading = dialogue.locator(".heading")
    button = dialogue.locator("a.confirm")
    assert heading.inner_text().strip() == HEADING
    assert NOTE in dialogue.locator(".message").inner_text()
    assert button.inner_text().strip() == CONFIRM
    box = button.bounding_box()
    assert box is not None and box["width"] > 30 and box["height"] > 10, box
    heading_contrast = contrast(page, ".overlay.auth .heading")
    button_contrast = contrast(page, ".overlay.auth a.confirm")
    screenshot(page, "uv-sign-in-dialogue")
    outer = dialogue.bounding_box()
    assert outer is not None
    bottom = max(outer["y"] + outer["height"], box["y"] + box["height"]) + 8  # the buttons overflow the box
    page.screenshot(path=str(ARTIFACTS / "uv-sign-in-dialogue-close-up.png"),
                    clip={"x": outer["x"], "y": outer["y"], "width": outer["width"], "height": bottom - outer["y"]})
    assert heading_contrast >= 4.5, heading_contrast  # WCAG AA for normal text
    assert button_contrast >= 4.5, button_contrast

    # UV builds its thumbnails from the image service (full/90,/...), never from the manifest's thumbnail:
    # refused, they come as the placeholder drawn at the size asked for, not as broken images
    thumbs = wait_until(lambda: [t for t in page.evaluate(UV_THUMBS) if t["complete"]] or None, 15,
                        "UV's thumbnails", page)
    assert len(thumbs) == len(PAGES_OF_DOCUMENT), thumbs
    for thumb in thumbs:
        assert thumb["natural"] == 90 and thumb["width"] > 40, thumb  # loaded: a broken image has 0
        answers = [(status, ctype) for url, status, ctype in session.traffic.responses if url == thumb["src"]]
        assert answers and all(a == (401, "image/png") for a in answers), answers  # refused all the same
    assert session.traffic.delivered(server) == []

    # without the page's rule, UV 4.4.0 draws the label in the button's own colour (why the rule is there)
    page.evaluate("""() => { for (const s of document.querySelectorAll('style'))
                               if (s.textContent.includes('link colour')) s.remove(); }""")
    page.wait_for_timeout(200)
    assert contrast(page, ".overlay.auth a.confirm") < 1.5
