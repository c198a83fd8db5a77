"""Change Discovery held to a rate per client (`--discovery-rate`): over it, 429 with Retry-After that shared
caches never keep; each client counted by its own address (a trusted proxy's X-Forwarded-For); memory bounded
by a number of clients, the least recently seen dropped first."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from iiif_server import config
from iiif_server.runtime.ratelimit import RateLimit
from iiif_server.web.app import create_app

STREAM = "/iiif/discovery/activity/all-changes"


def test_a_bucket_refills_at_the_rate_and_says_how_long_to_wait() -> None:
    now = [0.0]
    limit = RateLimit(60, burst=3, clock=lambda: now[0])  # one a second, three at once
    assert [limit.wait("a") for _ in range(4)] == [0, 0, 0, 1]
    assert limit.wait("b") == 0  # another client has its own
    now[0] = 0.5
    assert limit.wait("a") == 1  # half a request earned: wait the rest
    now[0] = 1.6
    assert limit.wait("a") == 0
    now[0] = 100.0
    assert [limit.wait("a") for _ in range(4)] == [0, 0, 0, 1]  # never more than the burst saved up
    assert RateLimit(6000).burst == 600 and RateLimit(5).burst == 1


def test_the_clients_remembered_are_bounded() -> None:
    now = [0.0]
    limit = RateLimit(60, burst=1, clock=lambda: now[0], max_clients=100)
    for n in range(1000):
        limit.wait(f"10.0.{n // 256}.{n % 256}")
    assert len(limit) == 100
    assert limit.wait("10.0.3.231") == 1  # among the last hundred: still empty
    assert limit.wait("10.0.0.0") == 0  # dropped long ago: a full bucket again


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    return config.Settings(data_dir=tmp_path / "data", images=tmp_path / "images", demo=False, discovery_rate=60,
                           trusted_proxies=("10.0.0.1",))


async def test_a_client_over_the_rate_is_answered_429_with_retry_after(settings: config.Settings) -> None:
    (settings.images).mkdir(parents=True)  # type: ignore[union-attr]
    app = create_app(settings)

    def client(peer: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 4000)),
                                 base_url="http://testserver")

    async with client("203.0.113.5") as harvester, client("203.0.113.6") as other, client("10.0.0.1") as proxy:
        statuses = [(await harvester.get(STREAM if n % 2 else "/iiif/discovery/activity/page/0")).status_code
                    for n in range(7)]
        assert statuses == [200] * 6 + [429]  # 60 a minute: 6 at once
        refused = await harvester.get(STREAM)
        assert refused.status_code == 429 and refused.headers["cache-control"] == "no-store"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await other.get(STREAM)).status_code == 200
        # behind a trusted proxy, each client by the address it forwards
        assert (await proxy.get(STREAM, headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 429
        assert (await proxy.get(STREAM, headers={"X-Forwarded-For": "198.51.100.9"})).status_code == 200
        # the rest of the server is not limited
        assert (await harvester.get("/iiif/presentation/collections")).status_code == 200
    app.state.catalogue.engine.dispose()
    unlimited = create_app(dataclasses.replace(settings, discovery_rate=0), migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=unlimited, client=("203.0.113.5", 1)),
                                 base_url="http://testserver") as c:
        assert {(await c.get(STREAM)).status_code for _ in range(20)} == {200}
    unlimited.state.catalogue.engine.dispose()
