"""The Host header is an RFC 3986 authority without userinfo, normalised, or the request is refused (400).

A Host the server answers to becomes the ids, redirects and auth service URLs of what it serves, and a
shared cache keyed without it (nginx's default key) hands that answer to everyone: `[::1]@evil.example`
must never get that far, nor a listed name on a port nobody listed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from iiif_server import config
from iiif_server.runtime.hosts import AllowedHosts, split_host
from iiif_server.web.app import create_app

FORGED = ["[::1]@evil.example", "[::1].evil.example", "[::1]x/y", "localhost@evil.example", "evil.example#localhost",
          "localhost:80@evil.example", "user@localhost", "localhost:8000:1", "[::1", "localhost/", "loc alhost",
          "[::1]:99999", "[fe80::1%25eth0]", "localhost\\x", "-localhost", "localhost.", ""]


@pytest.mark.parametrize("host", FORGED)
def test_what_is_not_an_authority_is_no_host(host: str) -> None:
    assert split_host(host) is None
    assert AllowedHosts((), None).normal(host, ("127.0.0.1", 8000)) is None
    assert AllowedHosts(("localhost", "evil.example"), None).normal(host, None) is None


def test_hosts_are_normalised_and_listed_names_answer_on_default_ports_only() -> None:
    hosts = AllowedHosts(("Images.Example.org", "other.example:8080"), None)
    assert hosts.normal("IMAGES.example.ORG", None) == "images.example.org"
    assert hosts.normal("images.example.org:443", None) == "images.example.org"
    assert hosts.normal("images.example.org:80", None) == "images.example.org"
    assert hosts.normal("images.example.org:9999", None) is None  # a port nobody listed
    assert hosts.normal("other.example:8080", None) == "other.example:8080"
    assert hosts.normal("other.example", None) is None
    default = AllowedHosts((), None)  # loopback and the address connected to, on any port (development)
    assert default.normal("localhost:8000", ("127.0.0.1", 8000)) == "localhost:8000"
    assert default.normal("[::1]:8000", ("::1", 8000)) == "[::1]:8000"
    assert default.normal("192.0.2.9:8000", ("192.0.2.9", 8000)) == "192.0.2.9:8000"
    assert default.normal("evil.example", ("192.0.2.9", 8000)) is None
    with pytest.raises(ValueError):
        AllowedHosts(("evil.example@x",), None)


@pytest.fixture
async def client(image_root: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config.Settings(data_dir=tmp_path, images=image_root, demo=False,
                                     allowed_hosts=("images.example.org",)))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.50", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://images.example.org") as c:
        yield c
    app.state.runtime.shutdown()
    app.state.catalogue.engine.dispose()


@pytest.mark.parametrize("host", [*FORGED[:-1], "images.example.org:9999", "images.example.org@evil.example"])
@pytest.mark.parametrize("path", ["/iiif/3/quadrants/info.json", "/iiif/3/quadrants/full/64,/0/default.jpg",
                                  "/iiif/3/quadrants", "/iiif/presentation/collections", "/"])
async def test_a_forged_host_is_400_and_never_stored(client: httpx.AsyncClient, host: str, path: str) -> None:
    await client.get(path)  # the right answer first: cached, and in the hit path's memory
    await client.get(path)
    r = await client.get(path, headers={"Host": host})
    assert r.status_code == 400, (host, path, r.status_code)
    assert "evil" not in r.text and r.headers.get("cache-control") == "no-store"


async def test_ids_carry_the_normalised_host(client: httpx.AsyncClient) -> None:
    r = await client.get("/iiif/3/quadrants/info.json", headers={"Host": "IMAGES.Example.Org:443"})
    assert r.json()["id"] == "http://images.example.org/iiif/3/quadrants"
    tile = await client.get("/iiif/3/quadrants/full/64,/0/default.jpg", headers={"Host": "images.example.org:80"})
    assert "<http://images.example.org/iiif/3/quadrants/" in tile.headers["link"]


async def test_health_checks_answer_whatever_the_host(client: httpx.AsyncClient) -> None:
    """An orchestrator's probe is sent to the replica's own address: /healthz names no host, so it answers."""
    for host in ("10.1.2.3:8000", "images.example.org", "[::1]@evil.example"):
        r = await client.get("/healthz", headers={"Host": host})
        assert r.status_code == 200 and "evil" not in r.text
    assert (await client.get("/healthz/", headers={"Host": "10.1.2.3:8000"})).status_code == 400
