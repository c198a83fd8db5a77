"""A replica that dies in the middle of an ingest it started from the console (the server, the run and its
workers killed at once, as when its machine stops): another replica shows the run interrupted once its
heartbeat is silent and the collection's run lock is free, and the next run from the console finishes it, as
the command line does. Real servers on loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import quadrants, start_server, stop_server

from iiif_server.db import runs
from iiif_server.db.catalogue import Catalogue

PAGES = 60


@pytest.fixture
def masters(tmp_path: Path) -> Path:
    png = tmp_path / "page.png"
    quadrants(2400, 1800).pngsave(str(png))
    root = tmp_path / "masters"
    for n in range(PAGES // 6):
        (root / "big" / f"b{n}").mkdir(parents=True)
        for p in range(6):
            shutil.copy(png, root / "big" / f"b{n}" / f"p{p}.png")
    return root


def staff_client(url: str, common: list[str]) -> tuple[httpx.Client, str]:
    """Signed in through the emergency door with a new staff token; the client and its CSRF value."""
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "token", "issue", "--tier", "staff",
                           "--holder", "Night archivist", "--days", "1", *common], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/staff/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/staff/login", data={"csrf": csrf, "token": token})
    assert r.status_code == 303, r.text
    home = client.get("/staff/")
    return client, re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)


def progress(client: httpx.Client, rid: str) -> dict[str, Any]:
    r = client.get(f"/staff/ingest/runs/{rid}/progress")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait(client: httpx.Client, rid: str, done: Any, seconds: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        p = progress(client, rid)
        if done(p):
            return p
        assert time.monotonic() < deadline, p
        time.sleep(0.3)


def test_a_run_whose_replica_dies_is_marked_interrupted_and_the_next_run_finishes_it(
        database_url: str, masters: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--database", database_url]
    serve = [*common, "--images", str(tmp_path / "images"), "--create-images", "--no-demo",
             "--masters-root", str(masters), "--ingest-workers", "1"]
    first, url = start_server(serve)
    try:
        client, csrf = staff_client(url, common)
        r = client.post("/staff/ingest/start", data={"csrf": csrf, "path": "big", "collection": "big",
                                                     "tier": "reading-room"})
        assert r.status_code == 303, r.text
        rid = r.headers["location"].rsplit("/", 1)[1]
        wait(client, rid, lambda p: p["done"] >= 8 or p["state"] not in runs.LIVE)
        catalogue = Catalogue(database_url)
        row = runs.get(catalogue, rid)
        assert row is not None and row.state == "running" and row.pid, row
        # the machine stops: the server, the run and its workers at once
        os.kill(first.pid, signal.SIGKILL)
        os.killpg(row.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            stop_server(first)
    assert runs.get(catalogue, rid).state == "running"  # nothing could say otherwise
    second, url2 = start_server(serve)
    try:
        client2, csrf2 = staff_client(url2, common)
        dead = wait(client2, rid, lambda p: p["state"] != "running", seconds=60)
        assert dead["state"] == "interrupted" and "ended without finishing" in dead["message"], dead
        listing = client2.get("/staff/ingest")
        assert re.search(rf'id="live-{rid}">.*?<td class="state">interrupted</td>', listing.text, re.S)
        committed = catalogue.collection("big").image_count
        assert 0 <= committed < PAGES
        r = client2.post("/staff/ingest/start", data={"csrf": csrf2, "path": "big", "collection": "big"})
        assert r.status_code == 303, r.text
        rid2 = r.headers["location"].rsplit("/", 1)[1]
        finished = wait(client2, rid2, lambda p: p["state"] not in runs.LIVE)
        assert finished["state"] == "finished" and finished["failed"] == 0, finished
        report = client2.get(f"/staff/ingest/{finished['report']}").text
        numbers = re.search(r"(\d+) converted · (\d+) unchanged", report)
        assert numbers and int(numbers.group(1)) + int(numbers.group(2)) == PAGES, report
        assert int(numbers.group(2)) == committed  # what the dead run had committed stays
        assert catalogue.collection("big").image_count == PAGES
        assert not [p for p in (tmp_path / "images" / "big").iterdir() if p.name.startswith(".ingest-")]
    finally:
        stop_server(second)
        catalogue.engine.dispose()
