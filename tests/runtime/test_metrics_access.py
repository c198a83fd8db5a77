"""/metrics answers the metrics networks only, judged on the client, not on a proxy in front; and one worker's
metrics are its own values, not an empty page (issue 17, finding 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support import start_server, stop_server

from iiif_server import config
from iiif_server.web.app import create_app

PROXY = "10.0.0.1"


@pytest.fixture
async def app(image_root: Path, tmp_path: Path) -> AsyncIterator[object]:
    made = create_app(config.Settings(data_dir=tmp_path, images=image_root, demo=False, trusted_proxies=(PROXY,),
                                      metrics_networks=("127.0.0.0/8", "198.51.100.0/24")))
    yield made
    made.state.runtime.shutdown()
    made.state.catalogue.engine.dispose()


async def metrics_status(app: object, peer: str, headers: dict[str, str] | None = None) -> int:
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        return (await c.get("/metrics", headers=headers or {})).status_code


async def test_metrics_are_judged_on_the_client_behind_a_trusted_proxy(app: object) -> None:
    assert await metrics_status(app, "127.0.0.1") == 200  # a scraper on the machine
    assert await metrics_status(app, PROXY, {"X-Forwarded-For": "198.51.100.9"}) == 200  # Prometheus via the proxy
    assert await metrics_status(app, PROXY, {"X-Forwarded-For": "203.0.113.7"}) == 404  # the public via the proxy
    assert await metrics_status(app, PROXY, {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}) == 404


async def test_a_request_forwarded_by_a_proxy_nobody_trusts_is_refused(app: object) -> None:
    """A proxy on the same machine that the operator did not list: its peer address is loopback, but what it
    forwards comes from anyone."""
    for headers in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"},
                    {"X-Forwarded-For": "127.0.0.1"}):
        assert await metrics_status(app, "127.0.0.1", headers) == 404, headers


def test_one_worker_shows_its_own_metrics(image_root: Path, tmp_path: Path) -> None:
    proc, url = start_server(["--images", str(image_root), "--data-dir", str(tmp_path), "--no-demo",
                              "--workers", "1"])
    try:
        for _ in range(3):
            assert httpx.get(url + "/iiif/3/quadrants/info.json", timeout=10).status_code == 200
        r = httpx.get(url + "/metrics", timeout=10)
        assert r.status_code == 200
        assert 'iiif_http_requests_total{kind="info",status="200"}' in r.text, r.text[:500]
    finally:
        stop_server(proc)
