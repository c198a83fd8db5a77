"""Searches are bounded per process: at most SEARCH_SLOTS run at once, one that waits longer than SEARCH_WAIT for a
slot is a 503 with Retry-After, and the rest of the server (pages, tiles) never waits for them (issue 17,
finding 6)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import quadrants, write_pyramid

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.search.across import Across
from iiif_server.web import app as app_module
from iiif_server.web.app import create_app


async def test_searches_beyond_the_slots_are_503_and_tiles_do_not_wait(catalogue: Catalogue, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "SEARCH_WAIT", 0.3)
    running, most, lock = [0], [0], threading.Lock()
    release = threading.Event()
    real = Across.described

    def slow(self: Across, *args: Any) -> Any:  # a search that costs what its client chose: held until released
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return real(self, *args)

    monkeypatch.setattr(Across, "described", slow)
    images = tmp_path / "images"
    images.mkdir()
    write_pyramid(quadrants(512, 512), images / "plain.tif")  # served by its name without the suffix
    settings = config.Settings(data_dir=tmp_path, images=images, database=catalogue.url, demo=False)
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        searches = [asyncio.create_task(client.get("/iiif/search", params={"q": f"word{n}", "format": "json"}))
                    for n in range(2 + app_module.SEARCH_SLOTS)]
        await asyncio.sleep(0.6)  # past SEARCH_WAIT: the searches without a slot have their answer
        started = time.monotonic()
        tile = await client.get("/iiif/3/plain/full/128,/0/default.jpg")
        assert tile.status_code == 200, tile.text
        assert time.monotonic() - started < 2  # the slots do not hold the I/O pool
        release.set()
        answers = await asyncio.gather(*searches)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * app_module.SEARCH_SLOTS + [503, 503]
    assert most[0] == app_module.SEARCH_SLOTS
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "2" and r.headers["cache-control"] == "no-store"
            assert "busy" in r.text
    app.state.catalogue.engine.dispose()
