"""Ingest from the console: the folder picker stays below the masters folder (traversal, symbolic links, encoded
dots, hidden and absolute paths refused); an archivist starts a run, a child process of the server, watches
its progress until it finishes and finds its report among the runs; a second run of the collection is
refused while one runs; a run is stopped safely from the console. Through the ASGI app on SQLite and
PostgreSQL, with real child processes converting real masters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import quadrants
from worlds import World, audit_lines, with_roles

from iiif_server.db import runs

DOCS = {"d1": 2, "d2": 1}


@pytest.fixture(scope="module")
def master_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("master") / "page.png"
    quadrants(1200, 900).pngsave(str(path))
    return path


def fill(folder: Path, png: Path, docs: dict[str, int]) -> None:
    for doc, pages in docs.items():
        (folder / doc).mkdir(parents=True, exist_ok=True)
        for n in range(1, pages + 1):
            shutil.copy(png, folder / doc / f"p{n}.png")


@pytest.fixture(scope="module")
def large_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A master slow enough to convert that a run of sixty is still going when the test stops it."""
    path = tmp_path_factory.mktemp("large") / "page.png"
    quadrants(2400, 1800).pngsave(str(path))
    return path


@pytest.fixture
async def world(console_world: World, tmp_path: Path, master_png: Path, large_png: Path) -> AsyncIterator[World]:
    """The console's world with a masters folder: incoming/letters (three pages), incoming/big (sixty), a
    metadata CSV, and beside the masters folder a secret one that must never be reached."""
    root = tmp_path / "masters"
    fill(root / "incoming" / "letters", master_png, DOCS)
    fill(root / "incoming" / "big", large_png, {f"b{n}": 6 for n in range(10)})
    (root / "incoming" / "letters.csv").write_text("id,label\nd1,The first letter\n", encoding="utf-8")
    (root / ".hidden").mkdir()
    secret = tmp_path / "secret-outside"
    fill(secret, master_png, {"s1": 1})
    (root / "incoming" / "escape").symlink_to(secret)  # a link out of the masters folder
    (root / "shortcut").symlink_to(root / "incoming")  # a link that stays inside
    console_world.settings = dataclasses.replace(console_world.settings, masters_root=root, ingest_workers=1)
    yield console_world
    for app in console_world.apps:  # the runs' supervisors see their children end before the loop closes
        supervisors = list(app.state.console.children.values())
        if supervisors:
            await asyncio.wait(supervisors, timeout=120)


async def wait_for(client: httpx.AsyncClient, rid: str, states: tuple[str, ...], seconds: float = 180,
                   until: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        p = (await client.get(f"/staff/ingest/runs/{rid}/progress")).json()
        if p["state"] in states or (until is not None and until(p)):
            return p
        assert time.monotonic() < deadline, p
        await asyncio.sleep(0.3)


async def start(client: httpx.AsyncClient, csrf: str, path: str, collection: str, **extra: str) -> httpx.Response:
    return await client.post("/staff/ingest/start",
                             data={"csrf": csrf, "path": path, "collection": collection, **extra})


async def test_the_picker_never_leaves_the_masters_folder(world: World) -> None:
    client, csrf = await with_roles(world, ("archivist",))
    top = await client.get("/staff/ingest/new")
    assert top.status_code == 200 and ">incoming<" in top.text and ">shortcut<" in top.text
    assert ".hidden" not in top.text
    inside = await client.get("/staff/ingest/new", params={"path": "incoming"})
    assert ">letters<" in inside.text and ">big<" in inside.text and "incoming/letters.csv" in inside.text
    assert (await client.get("/staff/ingest/new", params={"path": "shortcut"})).status_code == 200
    refused = ["..", "../secret-outside", "incoming/../..", "incoming/../../secret-outside", "/etc", "/",
               "incoming/escape", "incoming/escape/s1", "incoming/./letters", "incoming//letters", ".hidden",
               "incoming\\..\\..", "incoming/\x00", "incoming/\n"]
    for path in refused:
        r = await client.get("/staff/ingest/new", params={"path": path})
        assert r.status_code == 400, (path, r.status_code)
        assert "s1" not in r.text and "secret" not in r.text
    # dots spelled as escapes are names like any other, here of nothing: never a way up
    for raw in ("%252e%252e", "%252e%252e%252fsecret-outside", "%2e%2e%2fsecret-outside", "..%2fsecret-outside",
                "%EF%BC%8E%EF%BC%8E"):
        r = await client.get(f"/staff/ingest/new?path={raw}")
        assert r.status_code in (400, 404), (raw, r.status_code)
        assert "s1" not in r.text
    for path in refused + ["%2e%2e/secret-outside", "nowhere"]:
        r = await start(client, csrf, path, "stolen", tier="public")
        assert r.status_code in (400, 404), (path, r.status_code)
    r = await start(client, csrf, "incoming/letters", "stolen", tier="public", metadata="../secret.csv")
    assert r.status_code == 400
    r = await start(client, csrf, "incoming/letters", "stolen", tier="public", metadata="incoming/letters")
    assert r.status_code == 404  # a folder is no CSV
    assert runs.recent(world.catalogue, 10) == []  # nothing started
    assert world.catalogue.collection("stolen") is None


async def test_the_form_is_checked_before_anything_starts(world: World) -> None:
    client, csrf = await with_roles(world, ("archivist",))
    for data, why in (({"collection": "bad id!", "tier": "public"}, "may hold only"),
                      ({"collection": "letters", "tier": "secret"}, "known tier"),
                      ({"collection": "newone"}, "choose its tier")):
        r = await start(client, csrf, "incoming/letters", **data)
        assert r.status_code == 400 and why in r.text, (data, r.text)
    assert (await start(client, csrf, "", "all", tier="public")).status_code == 400  # not the whole of it
    assert runs.recent(world.catalogue, 10) == []
    unset = world.client(world.app(masters_root=None))
    client2, csrf2 = await with_roles(world, ("archivist",), app=world.apps[-1])
    assert (await client2.get("/staff/ingest/new")).status_code == 404
    assert (await start(client2, csrf2, "incoming/letters", "letters", tier="public")).status_code == 404
    await unset.aclose()


async def test_an_archivist_starts_an_ingest_watches_it_finish_and_finds_its_report(world: World) -> None:
    client, csrf = await with_roles(world, ("archivist",), name="Anna Archivist")
    r = await start(client, csrf, "incoming/letters", "letters2", tier="reading-room", label="Letters, 1942",
                    metadata="incoming/letters.csv")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/ingest/runs/"), r.text
    rid = r.headers["location"].rsplit("/", 1)[1]
    page = await client.get(r.headers["location"])
    assert page.status_code == 200 and 'data-progress="/staff/ingest/runs/' in page.text
    assert "Anna Archivist" in page.text
    done = await wait_for(client, rid, ("finished", "failed", "stopped", "refused", "interrupted"))
    assert done["state"] == "finished", done
    assert (done["done"], done["total"], done["failed"], done["left"]) == (3, 3, 0, 0)
    assert done["rate"] and done["report"].startswith("ingest-letters2-")
    row = runs.get(world.catalogue, rid)
    assert row is not None and row.pid and row.host and row.subject == "anna.archivist"
    listing = await client.get("/staff/ingest")
    assert f'id="live-{rid}"' in listing.text and f'/staff/ingest/{done["report"]}' in listing.text
    report = await client.get(f'/staff/ingest/{done["report"]}')
    assert report.status_code == 200 and "3 converted" in report.text
    coll = world.catalogue.collection("letters2")
    assert coll is not None and coll.tier == "reading-room" and coll.label == "Letters, 1942"
    assert world.catalogue.document("letters2", "d1").label == "The first letter"  # from the CSV
    entry = [e for e in audit_lines(world) if e.get("action") == "ingest-start"][0]
    assert entry["target"] == "letters2" and entry["run"] == rid and entry["subject"] == "anna.archivist"
    # a reading-room session watches the runs, but starts and stops none
    desk, desk_csrf = await with_roles(world, ("reading-room",))
    assert (await desk.get(f"/staff/ingest/runs/{rid}")).status_code == 200
    assert (await desk.get("/staff/ingest/new")).status_code == 403
    assert (await start(desk, desk_csrf, "incoming/letters", "letters3", tier="public")).status_code == 403
    assert (await desk.post(f"/staff/ingest/runs/{rid}/stop", data={"csrf": desk_csrf})).status_code == 403


def pause_outside_writes(pid: int, url: str) -> None:
    """Stop the run's process group where it holds no write transaction: a SQLite writer stopped inside one
    would keep every other writer out (a stopped process is no case the server has to survive)."""
    import sqlite3

    for _ in range(200):
        os.killpg(pid, signal.SIGSTOP)
        if not url.startswith("sqlite"):
            return
        probe = sqlite3.connect(url.split("///", 1)[1], timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:  # caught inside a write: let it finish it
            os.killpg(pid, signal.SIGCONT)
            time.sleep(0.02)
        finally:
            probe.close()
    raise AssertionError("the run never left its write transactions")


async def test_one_run_per_collection_and_a_safe_stop_from_the_console(world: World) -> None:
    client, csrf = await with_roles(world, ("archivist",))
    r = await start(client, csrf, "incoming/big", "big", tier="public")
    assert r.status_code == 303
    rid = r.headers["location"].rsplit("/", 1)[1]
    # another replica refuses a second run of the collection while this one runs
    other, other_csrf = await with_roles(world, ("admin",), app=world.app())
    second = await start(other, other_csrf, "incoming/letters", "big", tier="public")
    assert second.status_code == 409 and "running already" in second.text
    # and so does the command line, which keeps a row of its own: asked while the run holds the collection's
    # lock, paused (its process group stopped, the lock kept) so that it cannot finish first on a busy machine
    await wait_for(client, rid, ("running",))
    pid = runs.get(world.catalogue, rid).pid
    assert pid
    pause_outside_writes(pid, world.catalogue.url)
    try:
        cli = subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest",
                              str(world.settings.masters_root / "incoming" / "letters"), "--collection", "big",
                              "--data-dir", str(world.settings.data_dir), "--database", world.catalogue.url,
                              "--images", str(world.settings.images)], capture_output=True, text=True, timeout=120)
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert cli.returncode == 1 and "another ingest of collection 'big' is running" in cli.stderr, cli.stderr
    refused = [r for r in runs.recent(world.catalogue, 5) if r.state == "refused"]
    assert len(refused) == 1 and refused[0].started_by.startswith("command line (")
    await wait_for(client, rid, ("finished",), until=lambda p: p["done"] >= 2)
    stop = await other.post(f"/staff/ingest/runs/{rid}/stop", data={"csrf": other_csrf})
    assert stop.status_code == 303
    ended = await wait_for(client, rid, ("finished", "stopped", "failed"))
    assert ended["state"] == "stopped" and ended["report"], ended
    assert ended["done"] < 60
    row = runs.get(world.catalogue, rid)
    assert row is not None and row.stop_by == "Staff member"
    assert [e["action"] for e in audit_lines(world) if e.get("run") == rid] == ["ingest-start", "ingest-stop"]
    # its pages in flight were finished, complete documents published: a new run finishes the rest
    again = await start(client, csrf, "incoming/big", "big", tier="public")
    rid2 = again.headers["location"].rsplit("/", 1)[1]
    finished = await wait_for(client, rid2, ("finished", "failed", "stopped"))
    assert finished["state"] == "finished" and finished["failed"] == 0
    assert world.catalogue.collection("big").image_count == 60
    assert os.path.exists(world.settings.data_dir / "reports" / finished["report"])
