"""A rotation by other than a multiple of 90 degrees is held to the size limits (issue 17, finding 9): turning
`full/^12000,4166/45` made an image of 131 megapixels, 2.6 times maxArea, and seconds of CPU."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
import pyvips

from iiif_server import config
from iiif_server.tiles.request import Limits, parse, resolve, rotated_box
from iiif_server.web.app import create_app


@pytest.mark.parametrize("degrees", [30, 45, 135.5, 300])
def test_the_rotated_box_is_held_to_every_limit(degrees: float) -> None:
    request = parse(3, "full", "^1000,", str(degrees), "default.jpg")
    w, h = rotated_box(1000, 750, degrees)
    assert resolve(request, 1000, 750, Limits(w, h, w * h)).out_w == 1000  # exactly at the limits: served
    for limits in (Limits(w - 1, None, None), Limits(None, h - 1, None), Limits(None, None, w * h - 1)):
        with pytest.raises(Exception, match="rotated by") as refused:
            resolve(request, 1000, 750, limits)
        assert getattr(refused.value, "status", None) == 400


async def test_an_oversized_turn_is_400_and_an_allowed_one_fits_its_box(settings: config.Settings) -> None:
    small = dataclasses.replace(settings, max_width=500, max_height=500, max_area=200_000)
    app = create_app(small)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        r = await c.get("/iiif/3/quadrants/full/^400,/45/default.png")  # 400x300 turns into 495x495
        assert r.status_code == 400 and "rotated by 45" in r.text
        ok = await c.get("/iiif/3/quadrants/full/200,/45/default.png")
        assert ok.status_code == 200
        img = pyvips.Image.new_from_buffer(ok.content, "")
        assert (img.width, img.height) <= rotated_box(200, 150, 45)
        assert (await c.get("/iiif/3/quadrants/full/400,/90/default.png")).status_code == 200  # quarter turns as ever
    app.state.runtime.shutdown()
    app.state.catalogue.engine.dispose()
