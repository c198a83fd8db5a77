"""A refused whole image loaded by a browser as an image shows a padlock, not a broken image.

UV 4 builds its thumbnails from the image service (`full/90,/0/default.jpg`) and never uses the
manifest's thumbnail, so a restricted page's thumbnail is a refused image request. Asked for by a
browser's image load (Accept starts with image/), a whole-image request up to 1024 px gets the
placeholder at the size asked for as the body of its 401/403; tiles, large sizes, other clients
and hidden material keep their plain answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pyvips
from worlds import HEIGHT, ROOM, STAFF, WIDTH, World, image_url, make_tiff, make_world

from iiif_server.db.catalogue import Catalogue

BROWSER_IMAGE = {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}


@pytest.fixture(scope="module")
def tiff_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tiff(tmp_path_factory.mktemp("refused-image"))


@pytest.fixture
async def world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    async for w in make_world(catalogue, tmp_path, tiff_bytes):  # staff hidden (the default)
        yield w


@pytest.mark.libvips
async def test_a_refused_thumbnail_is_a_padlock_of_the_size_asked_for(world: World) -> None:
    c = world.client()
    r = await c.get(image_url(ROOM, "full/90,/0/default.jpg"), headers=BROWSER_IMAGE)
    assert r.status_code == 401
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "private, no-store" and "Cookie" in r.headers["vary"]
    img = pyvips.Image.new_from_buffer(r.content, "")
    assert (img.width, img.height) == (90, round(90 * HEIGHT / WIDTH))
    # grey with a darker padlock in the middle: a picture, not an empty rectangle
    assert img.getpoint(2, 2)[0] > 200 and img.min() < 180
    # a token for other material: 403, the same picture
    other = await c.get(image_url(ROOM, "full/90,/0/default.jpg"),
                        headers={**BROWSER_IMAGE, "Authorization": f"Bearer {world.token(collections=('diaries',))}"})
    assert other.status_code == 403 and other.headers["content-type"] == "image/png"


@pytest.mark.parametrize(("rest", "headers"), [
    ("full/90,/0/default.jpg", {}),  # a client that did not ask for an image
    ("full/90,/0/default.jpg", {"Accept": "application/json"}),
    ("0,0,200,150/100,/0/default.jpg", BROWSER_IMAGE),  # a tile: a canvas is not tiled with padlocks
    ("full/2000,/0/default.jpg", BROWSER_IMAGE),  # larger than a thumbnail or an overview
    ("full/90,/0/nonsense.jpg", BROWSER_IMAGE),  # a bad request stays one
])
async def test_other_refusals_keep_their_plain_answer(world: World, rest: str, headers: dict[str, str]) -> None:
    r = await world.client().get(image_url(ROOM, rest), headers=headers)
    assert r.status_code in (400, 401) and r.headers["content-type"].startswith("text/plain"), (rest, r.status_code)


async def test_hidden_material_still_answers_as_unknown(world: World) -> None:
    c = world.client()
    hidden = await c.get(image_url(STAFF, "full/90,/0/default.jpg"), headers=BROWSER_IMAGE)
    unknown = await c.get(image_url("personnel/d1/nothing", "full/90,/0/default.jpg"), headers=BROWSER_IMAGE)
    assert hidden.text.replace(STAFF, "?") == unknown.text.replace("personnel/d1/nothing", "?")
    assert hidden.status_code == 404 and hidden.headers["content-type"].startswith("text/plain")
