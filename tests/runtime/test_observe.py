"""What operators see: the access log, the audit log, errors, /metrics (in one process and across workers)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import quadrants, start_server, stop_server, write_pyramid

from iiif_server import config
from iiif_server.cli import main, token_store
from iiif_server.runtime import metrics, observe
from iiif_server.tiles import service as service_module
from iiif_server.web.app import create_app

SECRET = "a-test-signing-key-that-is-long-enough-0123456789"
OUTSIDE = ("203.0.113.7", 40000)
ROOM = "192.0.2.5"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    (images / "vault").mkdir(parents=True)
    write_pyramid(quadrants(1024, 768), images / "pyramid.tif")
    quadrants(400, 300).pngsave(str(images / "plain.png"))
    quadrants(400, 300).pngsave(str(images / "vault" / "plan.png"))
    return images


@pytest.fixture
def obs_settings(root: Path, tmp_path: Path) -> config.Settings:
    return config.Settings(data_dir=tmp_path / "data", images=root, demo=False, secret_key=SECRET,
                           path_tiers=("vault=reading-room",), networks=(f"reading-room={ROOM}/32",))


@pytest.fixture
async def app_client(obs_settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(obs_settings)
    transport = httpx.ASGITransport(app=app, client=OUTSIDE)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def access_log(settings: config.Settings) -> list[dict[str, Any]]:
    observe.flush_logs()
    return lines(Path(settings.access_log_target))


def audit_log(settings: config.Settings) -> list[dict[str, Any]]:
    return lines(Path(settings.audit_log_target))


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format; 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


async def test_access_log_has_a_line_per_request_with_kind_and_outcome(
        app_client: httpx.AsyncClient, obs_settings: config.Settings) -> None:
    tile = "/iiif/3/pyramid/0,0,256,256/256,/0/default.jpg"  # exactly one stored tile
    scaled = "/iiif/3/pyramid/full/100,/0/default.png"
    for url in (tile, tile, scaled, scaled, "/iiif/3/pyramid/info.json", "/iiif/3/pyramid", "/iiif/3/nothing/info.json",
                "/iiif/presentation/collections", "/iiif/discovery/activity/all-changes", "/healthz"):
        await app_client.get(url)
    log = access_log(obs_settings)
    assert [(e["kind"], e["status"], e["outcome"]) for e in log] == [
        ("image", 200, "passthrough"), ("image", 200, "cache_hit"), ("image", 200, "decoded"),
        ("image", 200, "cache_hit"), ("info", 200, None), ("redirect", 303, None), ("info", 404, None),
        ("collection", 200, None), ("discovery", 200, None), ("health", 200, None)]
    first = log[0]
    assert first["identifier"] == "pyramid" and first["client"] == OUTSIDE[0] and first["method"] == "GET"
    assert first["bytes"] > 1000 and first["ms"] > 0 and first["time"].endswith("Z")
    assert log[2]["bytes"] == len((await app_client.get(scaled)).content)


async def test_metrics_count_each_request_kind_and_tile_outcome(obs_settings: config.Settings) -> None:
    app = create_app(obs_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        before = (await c.get("/metrics")).text
        tile = "/iiif/3/pyramid/256,0,256,256/256,/0/default.jpg"
        for _ in range(3):
            assert (await c.get(tile)).status_code == 200
        await c.get("/iiif/3/pyramid/info.json")
        await c.get("/iiif/3/vault%2Fplan/full/100,/0/default.jpg")  # 401
        r = await c.get("/metrics")
    app.state.catalogue.engine.dispose()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("iiif_http_requests_total", kind="image", status="200") == 3
    assert grew("iiif_http_requests_total", kind="info", status="200") == 1
    assert grew("iiif_http_requests_total", kind="image", status="401") == 1
    assert grew("iiif_image_responses_total", outcome="passthrough") == 1
    assert grew("iiif_image_responses_total", outcome="cache_hit") == 2
    assert grew("iiif_image_render_seconds_count", outcome="passthrough") == 1
    assert grew("iiif_http_request_duration_seconds_count", kind="image") == 4
    assert grew("iiif_access_decisions_total", verdict="login") == 1
    assert metric(after, "iiif_catalogue_query_seconds_count") > 0
    assert metric(after, "iiif_http_requests_in_flight") == 0


async def test_metrics_only_for_the_allowed_networks(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/metrics")  # from OUTSIDE, not loopback
    assert r.status_code == 404 and "iiif_" not in r.text


async def test_granted_restricted_access_is_audited_and_the_token_is_written_nowhere(
        obs_settings: config.Settings, app_client: httpx.AsyncClient) -> None:
    token, row = token_store(obs_settings).issue("reading-room", "Partner archive X", 1)
    url = "/iiif/3/vault%2Fplan/full/100,/0/default.jpg"
    assert (await app_client.get(url)).status_code == 401
    assert (await app_client.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert (await app_client.get("/iiif/3/plain/full/100,/0/default.jpg",
                                 headers={"Authorization": f"Bearer {token}"})).status_code == 200
    app = create_app(obs_settings)  # from the reading room's network, no token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ROOM, 1)), base_url="http://t") as c:
        assert (await c.get("/iiif/3/vault%2Fplan/info.json")).status_code == 200
    app.state.catalogue.engine.dispose()

    log = access_log(obs_settings)
    assert [(e["status"], e["clearance"], e["token_id"]) for e in log] == [
        (401, "public", None), (200, "reading-room", row.id), (200, None, None), (200, "reading-room", None)]
    audit = audit_log(obs_settings)
    assert len(audit) == 2  # the refused and the public requests are not in it
    assert audit[0]["identifier"] == "vault/plan" and audit[0]["tier"] == "reading-room"
    assert (audit[0]["token_id"], audit[0]["holder"], audit[0]["client"]) == (row.id, "Partner archive X", OUTSIDE[0])
    assert (audit[1]["kind"], audit[1]["token_id"], audit[1]["network"], audit[1]["client"]) == (
        "info", None, "reading-room", ROOM)
    for path in (obs_settings.access_log_target, obs_settings.audit_log_target):
        assert token not in Path(path).read_text()


async def test_an_unhandled_error_is_logged_once_with_its_traceback(
        obs_settings: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(service_module, "process", boom)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    app = create_app(obs_settings)
    logging.getLogger("iiif_server").addHandler(handler)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.get("/iiif/3/plain/full/77,/0/default.jpg")
    finally:
        logging.getLogger("iiif_server").removeHandler(handler)
        app.state.catalogue.engine.dispose()
    assert r.status_code == 500 and r.headers["access-control-allow-origin"] == "*"
    errors = [rec for rec in records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "the disk caught fire" in str(errors[0].exc_info[1])
    entry = access_log(obs_settings)[-1]
    assert entry["status"] == 500 and "the disk caught fire" in entry["error"]


def test_logs_can_go_elsewhere_or_nowhere(obs_settings: config.Settings, tmp_path: Path) -> None:
    import dataclasses

    elsewhere = tmp_path / "var" / "access.jsonl"
    s = dataclasses.replace(obs_settings, access_log=str(elsewhere), audit_log="off")
    app = create_app(s)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            await c.get("/healthz")

    asyncio.run(go())
    app.state.catalogue.engine.dispose()
    observe.flush_logs()
    assert [e["kind"] for e in lines(elsewhere)] == ["health"]
    assert not Path(obs_settings.access_log_target).exists()


def test_metrics_are_summed_over_worker_processes(root: Path, tmp_path: Path) -> None:
    proc, url = start_server(["--images", str(root), "--data-dir", str(tmp_path / "d"), "--no-demo",
                              "--workers", "2", "--access-log", "off"])
    try:
        with httpx.Client(base_url=url) as c:
            for _ in range(40):  # new connections: both workers take some
                assert httpx.get(url + "/iiif/3/plain/full/50,/0/default.png").status_code == 200
            time.sleep(metrics.FLUSH_SECONDS + 0.5)  # each worker hands its numbers over within FLUSH_SECONDS
            text = c.get("/metrics").text
    finally:
        stop_server(proc)
    assert metric(text, "iiif_http_requests_total", kind="image", status="200") == 40
    assert metric(text, "iiif_image_responses_total", outcome="decoded") + metric(
        text, "iiif_image_responses_total", outcome="cache_hit") == 40


def test_ingest_writes_its_progress_for_prometheus(tmp_path: Path) -> None:
    src = tmp_path / "masters" / "doc1"
    src.mkdir(parents=True)
    for n in range(3):
        quadrants(64, 48).pngsave(str(src / f"p{n}.png"))
    out = tmp_path / "textfile" / "ingest.prom"
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "masters"), "--collection", "c1",
                                       "--data-dir", str(tmp_path / "d"), "--processes", "1",
                                       "--metrics-file", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert metric(text, "iiif_ingest_images_done", collection="c1") == 3
    assert metric(text, "iiif_ingest_images_failed", collection="c1") == 0
    assert metric(text, "iiif_ingest_finished_timestamp_seconds", collection="c1") > 0
    shutil.rmtree(tmp_path / "d", ignore_errors=True)


@pytest.mark.parametrize("text", ["/iiif/3/plain/full/max/0/default.jpg", 'a "quoted" \\ path\twith\x01 control',
                                  "/iiif/3/Żółć%2Fé/info.json"])
def test_an_access_line_is_the_json_of_its_entry(text: str) -> None:
    fields = ("2026-11-29T12:00:00.123Z", "2001:db8::1", "GET", text, "image", text, 200, 15578, 0.125,
              "passthrough", None, None)
    entry = dict(zip(("time", "client", "method", "path", "kind", "identifier", "status", "bytes", "ms",
                      "outcome", "clearance", "token_id"), fields, strict=True))
    line = observe.access_line(*fields)
    assert line == observe._encode(entry)
    assert json.loads(line) == entry


def test_buffered_lines_are_written_when_enough_wait_or_at_flush(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = observe.JsonLines(str(path), buffered=True)

    async def go() -> None:
        log.write({"n": 1})
        assert path.read_text() == ""  # waiting for the timer
        await asyncio.sleep(observe.FLUSH_SECONDS + 0.2)
        assert lines(path) == [{"n": 1}]
        for n in range(observe.BUFFER_BYTES // 8):  # about BUFFER_BYTES of lines: written without the timer
            log.write({"n": n})
        assert len(lines(path)) > 1

    asyncio.run(go())
    log.flush()
    assert len(lines(path)) == 1 + observe.BUFFER_BYTES // 8
    log.close()


def test_a_stopped_server_has_logged_every_request(root: Path, tmp_path: Path) -> None:
    """Workers write their access lines in batches: what waits is written when they stop."""
    data = tmp_path / "d"
    proc, url = start_server(["--images", str(root), "--data-dir", str(data), "--no-demo", "--workers", "2"])
    try:
        for _ in range(30):  # new connections: both workers take some
            assert httpx.get(url + "/iiif/3/plain/full/50,/0/default.png").status_code == 200
    finally:
        stop_server(proc)
    entries = lines(data / "logs" / "access.jsonl")
    assert sum(e["kind"] == "image" for e in entries) == 30
