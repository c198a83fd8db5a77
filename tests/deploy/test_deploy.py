"""deploy/: two replicas on one PostgreSQL catalogue behind Debian's nginx with a shared cache, as
real processes on 127.0.0.1 (deploy/local.py starts them the way an operator would)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from support import REPOSITORY, free_port, fresh_postgres

from iiif_server.auth.snapshot import MAX_AGE

LOCAL = REPOSITORY / "deploy" / "local.py"
SHARED_MAX_AGE = 3  # the replicas' --max-age here: how long nginx may keep a public copy
TILE = "/iiif/3/sample%2Fletter%2Fp1/0,0,256,256/256,/0/default.jpg"
RESTRICTED = "/iiif/3/sample%2Falbum%2Fp2/full/200,/0/default.jpg"


def load_local():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("deploy_local", LOCAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_local"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    local = load_local()
    local.free_port = free_port  # the replicas' ports too from this worker's own share (tests/support.py)
    if not os.path.exists(local.NGINX):
        if os.environ.get("IIIF_SERVER_REQUIRE_NGINX"):
            pytest.fail("nginx is not installed but the deployment test is required")
        pytest.skip("needs Debian's nginx (apt-get install nginx); .ci/run installs it")
    database = fresh_postgres("for the deployment test: the replicas share a PostgreSQL catalogue")
    workdir = tmp_path_factory.mktemp("deploy")
    topo = local.Topology(workdir, database, replicas=2, port=free_port(), max_age=SHARED_MAX_AGE,
                          sample_size=(2048, 1536))
    try:
        topo.start()
        yield topo
    finally:
        topo.stop()
        shutil.rmtree(workdir / "nginx" / "cache", ignore_errors=True)


def until(check, bound: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `check()` holds; fails after `bound`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < bound, f"not within {bound} s"
        time.sleep(0.1)
    return time.monotonic() - started


def stored_then_hit(proxy: str) -> str:
    """X-Cache-Status of a second GET right after the one that stored the tile. nginx keeps the copy for the
    replicas' max-age (3 s here): a second GET sent later than that, as on a machine under load, proves nothing
    either way and the pair is asked again; one within it must be a HIT."""
    for attempt in range(5):
        sent = time.monotonic()
        first = httpx.get(proxy + TILE)
        assert first.status_code == 200
        assert attempt or first.headers["x-cache-status"] in ("MISS", "EXPIRED")  # the module's first request
        second = httpx.get(proxy + TILE).headers["x-cache-status"]
        if second == "HIT" or time.monotonic() - sent < SHARED_MAX_AGE:
            return second
    return second


def test_a_tier_change_is_honoured_by_both_replicas_and_the_shared_cache_within_the_bound(topology) -> None:  # type: ignore[no-untyped-def]
    proxy, replicas = topology.url, [r.url for r in topology.servers]
    assert stored_then_hit(proxy) == "HIT"

    topology.admin("set-tier", "sample/letter", "reading-room")  # the operator's command on the shared catalogue
    changed = time.monotonic()
    for url in replicas:
        until(lambda url=url: httpx.get(url + TILE).status_code == 401, MAX_AGE + 0.5)
    assert time.monotonic() - changed <= MAX_AGE + 0.5
    # nginx may serve its public copy until it expires: at most the replicas' max-age (+ the 1 s above)
    until(lambda: httpx.get(proxy + TILE).status_code == 401, SHARED_MAX_AGE + MAX_AGE + 0.5)
    for _ in range(3):
        refused = httpx.get(proxy + TILE)
        assert refused.status_code == 401 and refused.headers["x-cache-status"] != "HIT"

    topology.admin("set-tier", "sample/letter", "public")
    for url in replicas + [proxy]:  # nothing restricted was kept: public again at once
        until(lambda url=url: httpx.get(url + TILE).status_code == 200, MAX_AGE + 0.5)


def test_restricted_responses_never_enter_the_shared_cache(topology) -> None:  # type: ignore[no-untyped-def]
    # a public tile in the cache whichever tests ran before: the check of the stored entries has entries
    assert httpx.get(topology.url + TILE).status_code == 200
    topology.admin("set-tier", "sample/album/p2", "reading-room")
    token = topology.admin("token", "issue", "--tier", "reading-room", "--holder", "deploy test", "--days", "1",
                           "--secret-key-file", str(topology.workdir / "secret.key")).stdout.decode().strip()
    proxy = topology.url
    until(lambda: httpx.get(proxy + RESTRICTED).status_code == 401, MAX_AGE + 0.5)
    for _ in range(3):
        ok = httpx.get(proxy + RESTRICTED, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.headers["x-cache-status"] == "BYPASS"
        assert ok.headers["cache-control"].startswith("private")
        anonymous = httpx.get(proxy + RESTRICTED)
        assert anonymous.status_code == 401 and anonymous.headers["x-cache-status"] != "HIT"
    info = httpx.get(proxy + "/iiif/3/sample%2Falbum%2Fp2/info.json", cookies={"iiif_access": token})
    assert info.status_code == 200 and info.headers["x-cache-status"] == "BYPASS"
    for _ in range(2):  # a restricted info.json without credentials: 401, never stored either
        assert httpx.get(proxy + "/iiif/3/sample%2Falbum%2Fp2/info.json").headers["x-cache-status"] != "HIT"
    # nginx stores the upstream headers with each entry: none of them is a private response
    stored = [p.read_bytes() for p in (topology.workdir / "nginx" / "cache").rglob("*") if p.is_file()]
    assert stored and not [b for b in stored if b"private" in b.split(b"\r\n\r\n", 1)[0]]
    assert all(token.encode() not in b for b in stored)
    # the granted accesses are in a replica's audit log, with the token's id, never the token
    audits = "".join((r.data / "logs" / "audit.jsonl").read_text() for r in topology.servers
                     if (r.data / "logs" / "audit.jsonl").exists())
    assert "sample/album/p2" in audits and "deploy test" in audits and token not in audits


async def _load(url: str, paths: list[str], concurrency: int, progress: list[int]) -> list[int]:
    statuses: list[int] = []
    queue = list(reversed(paths))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as c:

        async def worker() -> None:
            while queue:
                path = queue.pop()
                try:
                    statuses.append((await c.get(path)).status_code)
                except httpx.HTTPError as exc:
                    statuses.append(-1)
                    print("failed:", path, exc)
                progress[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def test_a_replica_killed_under_load_costs_no_failed_request(topology) -> None:  # type: ignore[no-untyped-def]
    # distinct URLs (each one render, so both replicas work) mixed with a hot tile from the cache
    paths = [f"/iiif/3/sample%2Falbum%2Fp{1 + n % 2 * 2}/full/{60 + n // 2},/0/default.jpg" if n % 4 else TILE
             for n in range(2000)]
    progress = [0]

    async def run() -> list[int]:
        load = asyncio.ensure_future(_load(topology.url, paths, 8, progress))
        while progress[0] < 400:
            await asyncio.sleep(0.02)
        await asyncio.get_running_loop().run_in_executor(None, topology.kill_replica, topology.servers[0])
        return await load

    statuses = asyncio.run(run())
    assert len(statuses) == 2000
    assert topology.servers[0].proc.poll() is not None  # it really went down mid-run
    assert progress[0] == 2000 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
