"""A large collection in Mirador 4: from the top collection through a part to a document's pages.

The catalogue holds a 5,000-document collection (five parts of 1000) made by bulk SQL; only the
document opened at the end has image files. Mirador's collection dialog lists the collections,
then the parts of the large one by their range and first and last names, then the part's
manifests; choosing one opens it and its first page shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from bulk import fill
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from support import quadrants, start_server, stop_server

from iiif_server.db.catalogue import Catalogue

from .viewing import Session, screenshot, shows_image, wait_until

pytestmark = pytest.mark.browser

DOCUMENTS = 5000
OPENED = 1234  # the document reached: in the second part


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("big-data")
    images = tmp_path_factory.mktemp("big-images")
    url = f"sqlite:///{data / 'catalogue.db'}"
    catalogue = Catalogue(url)
    catalogue.upgrade()
    fill(catalogue, "registers", DOCUMENTS, 2)
    catalogue.engine.dispose()
    for page in range(2):  # the pages of the document we open: real files of the catalogued size
        path = images / "registers" / f"doc{OPENED}" / f"p{page}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        quadrants(2000 + OPENED % 7, 3000).tiffsave(str(path), tile=True, pyramid=True, compression="jpeg", Q=85)
    proc, server = start_server(["--host", "127.0.0.1", "--database", url, "--images", str(images),
                                 "--data-dir", str(data), "--no-demo"])
    yield server
    stop_server(proc)


def test_mirador_reaches_a_document_of_a_large_collection_from_the_top(session: Session, pages: str,
                                                                      big_server: str) -> None:
    page: Any = session.page
    top = f"{big_server}/iiif/presentation/collections"
    page.goto(f"{pages}/mirador.html?manifest={quote(top, safe='')}")
    dialog = page.locator("#select-collection")
    registers = page.get_by_role("menuitem", name="Collection registers")
    # a window on a Collection offers its dialog; Mirador may have opened it already (on a slow machine the
    # click came after it had, and the dialog intercepted it)
    show = page.get_by_text("Show collection")
    wait_until(lambda: registers.count() > 0 or show.count() > 0, 30, "Mirador's collection window", page)
    if registers.count() == 0:
        try:
            show.click(timeout=5_000)
        except PlaywrightTimeout:  # the dialog opened meanwhile, over the button
            pass
    registers.click()
    part = page.get_by_role("menuitem", name="1001–2000: Dossier 1000 … Dossier 1999")
    part.wait_for()
    assert page.get_by_role("menuitem", name="4001–5000: Dossier 4000 … Dossier 4999").count() == 1
    screenshot(page, "mirador-large-collection-parts")
    part.click()
    document = page.get_by_role("menuitem", name=f"Dossier {OPENED}", exact=True)
    document.wait_for()
    assert page.get_by_role("menuitem", name="Dossier 1000", exact=True).count() == 1
    screenshot(page, "mirador-large-collection-part-2")
    document.click()
    dialog.wait_for(state="detached")  # the dialog closes on the opened manifest
    wait_until(lambda: shows_image(page), 30, "the document's first page in Mirador", page)
    screenshot(page, "mirador-large-collection-document")
    tiles = [url for url in session.traffic.delivered(big_server) if f"doc{OPENED}" in url]
    assert tiles, "no tile of the opened document was delivered"
