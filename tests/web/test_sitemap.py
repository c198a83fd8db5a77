"""robots.txt and the sitemaps: an index of files of at most URLS_PER_FILE URLs (here 10, read 3 at a time, so
that files and chunks both end mid-way), listing every collection that is not hidden and exactly the public
documents' viewer pages, each once, with the time of their last activity; through the ASGI app on each backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from bulk import fill

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.web import sitemap
from iiif_server.web.app import create_app

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
async def client(catalogue: Catalogue, database_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(sitemap, "URLS_PER_FILE", 10)
    monkeypatch.setattr(sitemap, "CHUNK", 3)
    fill(catalogue, "portraits", 23, 1, staff_every=5)  # doc4, doc9, doc14, doc19 are staff-only
    fill(catalogue, "letters", 25, 1, tier="reading-room")
    fill(catalogue, "vault", 3, 1, tier="staff")
    catalogue.set_tier("letters/doc17", "public")  # one public document of a reading-room collection
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", database=database_url, demo=False,
                               secret_key="s" * 40)
    transport = httpx.ASGITransport(app=create_app(settings), client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def parsed(r: httpx.Response) -> ET.Element:
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml"), r.status_code
    return ET.fromstring(r.content)


async def test_the_sitemaps_list_exactly_the_public_pages_in_bounded_files(client: httpx.AsyncClient) -> None:
    robots = await client.get("/robots.txt")
    assert "Sitemap: http://testserver/sitemap.xml" in robots.text and "Disallow: /staff/" in robots.text
    index = parsed(await client.get("/sitemap.xml"))
    files = [e.findtext(f"{NS}loc", "").removeprefix("http://testserver") for e in index.iter(f"{NS}sitemap")]
    assert files == ["/sitemaps/collections-0.xml", "/sitemaps/documents/letters/1.xml",
                     "/sitemaps/documents/portraits/0.xml", "/sitemaps/documents/portraits/1.xml",
                     "/sitemaps/documents/portraits/2.xml"]
    listed: list[str] = []
    when: dict[str, str] = {}
    for path in files:
        urls = list(parsed(await client.get(path)).iter(f"{NS}url"))
        assert 0 < len(urls) <= 10, path
        for url in urls:
            loc = url.findtext(f"{NS}loc", "").removeprefix("http://testserver")
            listed.append(loc)
            if url.findtext(f"{NS}lastmod"):
                when[loc] = url.findtext(f"{NS}lastmod", "")
    public = [f"/view/portraits/doc{d}" for d in range(23) if d % 5 != 4]
    assert listed == ["/collections/letters", "/collections/portraits", "/view/letters/doc17", *public]
    # the public document's time is its Add's, in the protocol's W3C form
    stamp = dt.datetime.strptime(when["/view/letters/doc17"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 120
    # beyond the files, hidden or unknown collections: 404, never an empty file or a 500
    for path in ("/sitemaps/documents/portraits/3.xml", "/sitemaps/documents/vault/0.xml",
                 "/sitemaps/documents/nothing/0.xml", "/sitemaps/collections-1.xml"):
        assert (await client.get(path)).status_code == 404, path


async def test_a_sitemap_file_is_compressed_and_answers_if_modified_since(client: httpx.AsyncClient) -> None:
    plain = await client.get("/sitemaps/documents/portraits/1.xml", headers={"Accept-Encoding": "identity"})
    packed = await client.send(client.build_request("GET", "/sitemaps/documents/portraits/1.xml",
                                                    headers={"Accept-Encoding": "gzip"}), stream=True)
    raw = b"".join([part async for part in packed.aiter_raw()])
    assert packed.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == plain.content
    assert plain.headers["vary"] == "Accept-Encoding"
    await asyncio.sleep(1.1)  # a change within the current second is never vouched for
    again = await client.get("/sitemaps/documents/portraits/1.xml",
                             headers={"If-Modified-Since": plain.headers["last-modified"]})
    assert again.status_code == 304
