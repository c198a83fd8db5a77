"""The document view page (/iiif/view/{c}/{d}) shows exactly the pages the document's manifest shows the same
requester: a hidden page is neither named, counted, linked nor sized (issue 17, finding 5)."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from worlds import World, bearer


async def pages_in_manifest(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    r = await client.get("/iiif/presentation/maps/d1/manifest", headers=headers)
    assert r.status_code == 200
    return [c["items"][0]["items"][0]["body"]["service"][0]["id"].rsplit("/", 1)[1] for c in r.json()["items"]]


async def pages_in_view(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[list[str], list[str]]:
    """The image identifiers the view shows, following its `next` links, and the pages' texts."""
    url: str | None = "/iiif/view/maps/d1"
    shown, texts = [], []
    while url:
        r = await client.get(url, headers=headers)
        assert r.status_code == 200
        texts.append(r.text)
        shown += re.findall(r'src="[^"]*/iiif/3/([^/"]+)/full/', r.text)
        found = re.search(r'rel="next" href="([^"]+)"', r.text)
        url = unescape(found.group(1)).removeprefix("http://testserver") if found else None
    return shown, texts


@pytest.mark.parametrize("who", ["anonymous", "reading-room", "staff"])
async def test_the_view_shows_the_pages_the_manifest_shows(hidden_world: World, who: str) -> None:
    client = hidden_world.client()
    headers = {} if who == "anonymous" else bearer(hidden_world.token(who))
    manifest = await pages_in_manifest(client, headers)
    shown, texts = await pages_in_view(client, headers)
    assert shown == manifest
    assert manifest == (["maps%2Fd1%2Fp1", "maps%2Fd1%2Fp2"] if who == "staff" else ["maps%2Fd1%2Fp1"])
    if who != "staff":
        page = texts[0]
        assert "page 1 of 1" in page and "p2" not in page
        # asking for the hidden page by name shows the visible one, and never its name or size
        r = await client.get("/iiif/view/maps/d1", params={"page": "p2"}, headers=headers)
        assert r.status_code == 200 and "p2" not in r.text.replace("page=p2", "") and "of 2" not in r.text
