"""Forwarding headers are believed only where the operator said so, and never let a client pick its
own address.

A client's address comes from X-Forwarded-For / Forwarded only through proxies listed by their own
addresses (or, where their addresses vary, through a counted number of hops), never from a range
that may hold clients, and never where a network rule overlaps the proxies.

A proxy passes on the headers a client sent unless it overwrites them (nginx does not set
X-Forwarded-Host by default), so a trusted proxy is not enough for the host: a forwarded host is
used only when it is in an explicit --allowed-hosts list (else it is ignored, and the Host header
counts). X-Forwarded-Proto is believed from a trusted proxy only, and only `http` or `https`.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from support import REPOSITORY
from worlds import OUTSIDE, PROXY, READING_ROOM_V4, ROOM, World, image_url, make_tiff, make_world

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.runtime.addresses import trusted_proxies

PAGE = quote("maps/d1/p1", safe="")  # a public page of the access tests' catalogue (tests/worlds.py)
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


# -- who the client is ----------------------------------------------------------------------


@pytest.mark.parametrize("proxies", [("10.0.0.0/8",), ("172.16.0.0/12", "10.0.0.1"), ("fd00::/64",)])
def test_a_range_of_trusted_proxies_is_refused_without_a_hop_count(proxies: tuple[str, ...]) -> None:
    """Inside a trusted range, every machine could write X-Forwarded-For: <a staff address>."""
    with pytest.raises(ValueError, match="is a range"):
        config.Settings(trusted_proxies=proxies)
    assert trusted_proxies(config.Settings(trusted_proxies=proxies, proxy_hops=1)).hops == 1


@pytest.mark.parametrize(("proxies", "hops", "rule"), [
    (("10.0.0.1",), 0, "staff=10.0.0.0/24"),
    (("10.0.0.0/8",), 1, "reading-room=10.20.0.0/16"),
    (("2001:db8::1",), 0, "reading-room=2001:db8::/48"),
])
def test_a_network_rule_overlapping_the_trusted_proxies_is_refused(proxies: tuple[str, ...], hops: int,
                                                                   rule: str) -> None:
    with pytest.raises(ValueError, match="overlaps trusted proxy"):
        config.Settings(trusted_proxies=proxies, proxy_hops=hops, networks=(rule,))


def test_serve_refuses_to_start_with_a_range_of_trusted_proxies(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "serve", "--data-dir", str(tmp_path),
                           "--no-demo", "--trusted-proxies", "172.16.0.0/12,10.0.0.0/8"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "is a range" in done.stderr and "Traceback" not in done.stderr


async def test_a_client_beside_the_proxy_cannot_pass_for_a_reading_room(world: World) -> None:
    """Only the proxy's own address vouches for a forwarded address; its neighbours speak for themselves."""
    neighbour = world.client(peer="10.0.0.7")  # on the proxy's network, not a proxy
    for headers in ({"X-Forwarded-For": READING_ROOM_V4}, {"Forwarded": f"for={READING_ROOM_V4}"}):
        assert (await neighbour.get(image_url(ROOM), headers=headers)).status_code == 401, headers
        assert (await world.client(peer=PROXY).get(image_url(ROOM), headers=headers)).status_code == 200, headers


@pytest.mark.parametrize(("hops", "chain", "status"), [
    (1, f"{OUTSIDE}, {READING_ROOM_V4}", 200),
    (1, f"{READING_ROOM_V4}, {OUTSIDE}", 401),  # the left part is the client's own writing
    (2, f"{OUTSIDE}, {READING_ROOM_V4}, 172.30.0.2", 200),
    (2, f"{READING_ROOM_V4}, {OUTSIDE}, 172.30.0.2", 401),
    (2, READING_ROOM_V4, 401),  # fewer entries than proxies: nobody is known
])
async def test_with_a_hop_count_the_outermost_proxys_entry_names_the_client(world: World, hops: int, chain: str,
                                                                           status: int) -> None:
    app = world.app(trusted_proxies=("172.30.0.0/24",), proxy_hops=hops)
    r = await world.client(app, peer="172.30.0.9").get(image_url(ROOM), headers={"X-Forwarded-For": chain})
    assert r.status_code == status, (hops, chain, r.status_code)


def test_the_compose_file_trusts_its_proxys_own_address_only() -> None:
    """deploy/docker-compose.yml: the replicas trust nginx's fixed address on the compose network's own
    subnet, and those settings start."""
    import yaml

    compose = yaml.safe_load((REPOSITORY / "deploy" / "docker-compose.yml").read_text())
    env = compose["x-replica"]["environment"]
    nginx = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert env["IIIF_SERVER_TRUSTED_PROXIES"] == nginx
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(subnet)
    config.Settings(trusted_proxies=(nginx,), metrics_networks=tuple(env["IIIF_SERVER_METRICS_NETWORKS"].split(",")))
