"""X-Forwarded-Host and X-Forwarded-Proto are believed only where the operator said so.

A proxy passes on the headers a client sent unless it overwrites them (nginx does not set
X-Forwarded-Host by default), so a trusted proxy is not enough for the host: a forwarded host is
used only when it is in an explicit --allowed-hosts list (else it is ignored, and the Host header
counts). X-Forwarded-Proto is believed from a trusted proxy only, and only `http` or `https`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from test_auth import PROXY, World, make_tiff, make_world

from iiif_server.manifests.catalogue import Catalogue

PAGE = quote("maps/d1/p1", safe="")  # a public page of test_auth's catalogue
INFO = f"/iiif/3/{PAGE}/info.json"


@pytest.fixture(scope="module")
def tiff_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tiff(tmp_path_factory.mktemp("forwarded-image"))


@pytest.fixture
async def world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    async for w in make_world(catalogue, tmp_path, tiff_bytes):
        yield w


async def info_id(world: World, peer: str, headers: dict[str, str], **settings: object) -> tuple[int, str]:
    c = world.client(world.app(**settings), peer=peer)
    r = await c.get(INFO, headers=headers)
    return r.status_code, (r.json()["id"] if r.status_code == 200 else r.text)


async def test_a_trusted_proxy_passing_a_clients_host_on_is_not_believed(world: World) -> None:
    # no --allowed-hosts: the forwarded host is ignored, the Host header names the server
    status, ident = await info_id(world, PROXY, {"X-Forwarded-Host": "evil.example"},
                                  trusted_proxies=(f"{PROXY}/32",))
    assert status == 200 and ident.startswith("http://testserver/"), ident


async def test_a_forwarded_host_in_the_allowed_list_is_used_from_a_trusted_proxy(world: World) -> None:
    allowed = ("images.example.org", "testserver")
    status, ident = await info_id(world, PROXY, {"X-Forwarded-Host": "images.example.org"},
                                  trusted_proxies=(f"{PROXY}/32",), allowed_hosts=allowed)
    assert status == 200 and ident.startswith("http://images.example.org/"), ident
    # one outside the list is refused, before anything is served
    status, text = await info_id(world, PROXY, {"X-Forwarded-Host": "evil.example"},
                                 trusted_proxies=(f"{PROXY}/32",), allowed_hosts=allowed)
    assert status == 400 and "evil" not in text
    # from anyone but a trusted proxy it is not even looked at
    status, ident = await info_id(world, "203.0.113.7", {"X-Forwarded-Host": "images.example.org"},
                                  trusted_proxies=(f"{PROXY}/32",), allowed_hosts=allowed)
    assert status == 200 and ident.startswith("http://testserver/"), ident


async def test_forwarded_proto_only_from_a_trusted_proxy_and_only_http_or_https(world: World) -> None:
    trusted = {"trusted_proxies": (f"{PROXY}/32",)}
    assert (await info_id(world, PROXY, {"X-Forwarded-Proto": "https"}, **trusted))[1].startswith("https://testserver/")
    assert (await info_id(world, PROXY, {"X-Forwarded-Proto": "javascript"}, **trusted))[1].startswith("http://")
    assert (await info_id(world, "203.0.113.7", {"X-Forwarded-Proto": "https"}, **trusted))[1].startswith("http://")
    no_proxy = await info_id(world, PROXY, {"X-Forwarded-Proto": "https"}, trusted_proxies=())
    assert no_proxy[1].startswith("http://")  # no proxy trusted
    # with a base URL nothing forwarded counts
    _, ident = await info_id(world, PROXY, {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
                             base_url="https://images.example.org", **trusted)
    assert ident.startswith("https://images.example.org/"), ident
