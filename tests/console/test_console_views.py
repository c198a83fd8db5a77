"""The staff console's read-only views: ingest runs, the audit log (filters, paging, CSV), tokens' last
use; and the rules every /staff route keeps (no answer without a staff session, no CORS).

Through the ASGI app on SQLite and PostgreSQL, with the staff console's world (tests/worlds.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from worlds import BASE, OUTSIDE, World, audit_lines, bearer, console_routes, image_url, sign_in

from iiif_server.auth.tokens import Usage
from iiif_server.console import audit, tail
from iiif_server.console.session import COOKIE, Sessions
from iiif_server.db.models import TokenRow
from iiif_server.ingest import runs as ingest_runs
from iiif_server.ingest.report import write_report


@pytest.fixture
def world(console_world: World) -> World:
    """The staff console's world (tests/worlds.py): staff hidden, a staff network, an audit log."""
    return console_world


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def run_data(n: int, failures: int = 0) -> dict[str, Any]:
    return {"collection": f"c{n % 3}", "source": f"/masters/batch{n}", "finished": f"2026-11-{1 + n // 100:02d}T"
            f"{n % 24:02d}:{n % 60:02d}:00+00:00", "converted": n, "unchanged": 2 * n, "failed": failures,
            "skipped": 0, "not_done": 0, "stopped_by": None,
            "failures": [{"path": f"/masters/batch{n}/f{i}.tif", "reason": f"broken {i}"} for i in range(failures)]}


# -- ingest runs ----------------------------------------------------------------------------------------


async def test_ingest_runs_are_listed_newest_first_in_pages_from_the_index(world: World) -> None:
    reports = world.settings.data_dir / "reports"
    reports.mkdir(parents=True)
    # two reports written before there was an index: the first look builds it from them
    for n in (0, 1):
        (reports / f"ingest-c{n}-2026110{n}T000000000000Z.json").write_text(json.dumps(run_data(n)))
    for n in range(2, 120):
        write_report(reports, f"c{n % 3}", "text", run_data(n, failures=250 if n == 7 else 0))
    assert len((reports / ingest_runs.INDEX).read_text().splitlines()) == 120
    client, _ = await sign_in(world)
    first = await client.get("/staff/ingest")
    assert first.status_code == 200
    sources = re.findall(r"<code>/masters/batch(\d+)</code>", first.text)
    assert sources == [str(n) for n in range(119, 69, -1)]
    row = re.search(r'<tr id="run-[^"]+">.*?batch119.*?</tr>', first.text, re.S).group(0)
    assert ">119<" in row and ">238<" in row  # converted, unchanged
    older = re.search(r'rel="next" href="/staff/ingest\?before=(\d+)"', first.text).group(1)
    second = await client.get(f"/staff/ingest?before={older}")
    assert re.findall(r"<code>/masters/batch(\d+)</code>", second.text) == [str(n) for n in range(69, 19, -1)]
    older = re.search(r'rel="next" href="/staff/ingest\?before=(\d+)"', second.text).group(1)
    third = await client.get(f"/staff/ingest?before={older}")
    assert re.findall(r"<code>/masters/batch(\d+)</code>", third.text) == [str(n) for n in range(19, -1, -1)]
    assert 'rel="next"' not in third.text
    # the listing comes from the index alone: the reports themselves are not read for it
    for path in reports.glob("ingest-*.json"):
        if "batch7" not in path.read_text():
            path.write_text("not json")
    again = await client.get("/staff/ingest")
    assert re.findall(r"<code>/masters/batch(\d+)</code>", again.text)[:3] == ["119", "118", "117"]
    # one run's failures, with paths and reasons, in pages
    name = re.search(r'href="/staff/ingest/(ingest-[^"]+\.json)">Report</a>', third.text.split("batch7<")[1]).group(1)
    run = await client.get(f"/staff/ingest/{name}")
    assert run.status_code == 200
    assert "7 converted · 14 unchanged · 250 failed" in text_of(run.text)
    assert "/masters/batch7/f0.tif" in run.text and "broken 99" in run.text and "broken 100" not in run.text
    assert "1–100 of 250" in run.text
    last = await client.get(f"/staff/ingest/{name}?from=200")
    assert "broken 249" in last.text and "broken 199" not in last.text and 'rel="next"' not in last.text
    for bad in ("../secret.key", "runs.jsonl", "ingest-nothing.json", "..%2Fsecret.key"):
        assert (await client.get(f"/staff/ingest/{bad}")).status_code == 404


async def test_no_ingest_runs_yet(world: World) -> None:
    client, _ = await sign_in(world)
    page = await client.get("/staff/ingest")
    assert page.status_code == 200 and "No ingest runs recorded" in page.text


# -- the audit log ----------------------------------------------------------------------------------------


async def test_staff_actions_are_audited_and_filtered_by_holder_collection_and_date(world: World) -> None:
    client, csrf = await sign_in(world)
    assert (await client.post("/staff/tier", data={"csrf": csrf, "target": "maps/d1", "tier": "reading-room"})
            ).status_code == 303
    r = await client.post("/staff/tokens", data={"csrf": csrf, "tier": "reading-room", "holder": "Dr. Reader",
                                                 "days": "7", "collections": "letters"})
    token = re.search(r'id="token" readonly value="([^"]+)"', r.text).group(1)
    tid = world.store.verify(token).id
    reader = world.client(world.apps[0], peer="203.0.113.99")
    assert (await reader.get(image_url("letters/d1/p1"), headers=bearer(token))).status_code == 200
    assert (await client.post(f"/staff/tokens/{tid}/revoke", data={"csrf": csrf})).status_code == 303
    assert (await client.post("/staff/withdraw", data={"csrf": csrf, "target": "maps/d1/p1", "reason": "Privacy"})
            ).status_code == 200
    # every action: who, what, when, from where
    entries = audit_lines(world)
    staff = [e for e in entries if e.get("event") == "staff"]
    assert [e["action"] for e in staff] == ["sign-in", "set-tier", "token-issue", "token-revoke", "withdraw"]
    assert all(e["holder"] == "Partner archive" and e["client"] == OUTSIDE and e["time"].endswith("Z") for e in staff)
    page = await client.get("/staff/audit")
    assert page.status_code == 200
    actions = re.findall(r'<td class="action">([^<]*)</td>', page.text)
    assert actions[:5] == ["withdraw", "token-revoke", "allow image", "token-issue", "set-tier"], actions
    # by holder: the reader's access (holder of the token), and the issue and revocation naming that holder
    by_reader = await client.get("/staff/audit", params={"holder": "dr. reader"})
    assert re.findall(r'<td class="action">([^<]*)</td>', by_reader.text) == ["token-revoke", "allow image",
                                                                              "token-issue"]
    by_token = await client.get("/staff/audit", params={"holder": tid})
    assert "allow image" in by_token.text and "set-tier" not in by_token.text
    # by collection: what touched maps
    maps = await client.get("/staff/audit", params={"collection": "maps"})
    assert re.findall(r'<td class="action">([^<]*)</td>', maps.text) == ["withdraw", "set-tier"]
    letters = await client.get("/staff/audit", params={"collection": "letters"})
    assert re.findall(r'<td class="action">([^<]*)</td>', letters.text) == ["token-revoke", "allow image",
                                                                            "token-issue"]
    # by date: today has them all, another day none
    today = staff[0]["time"][:10]
    assert len(re.findall(r'class="entry', (await client.get("/staff/audit", params={"since": today, "until": today})
                                            ).text)) == 6
    assert "class=\"entry" not in (await client.get("/staff/audit", params={"until": "2020-01-01"})).text
    assert "class=\"entry" not in (await client.get("/staff/audit", params={"since": "2999-01-01"})).text
    # the CSV: the same filters, one row per entry
    export = await client.get("/staff/audit.csv", params={"collection": "maps"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["action"], r["target"], r["holder"], r["client"]) for r in rows] == [
        ("set-tier", "maps/d1", "Partner archive", OUTSIDE), ("withdraw", "maps/d1/p1", "Partner archive", OUTSIDE)]
    assert json.loads(rows[1]["detail"])["reason"] == "Privacy"
    assert token not in export.text and token not in page.text
    assert [e["action"] for e in audit_lines(world) if e.get("event") == "staff"][-1] == "audit-export"
    assert (await client.post("/staff/logout", data={"csrf": csrf})).status_code == 303
    out = audit_lines(world)[-1]
    assert out["action"] == "sign-out" and out["holder"] == "Partner archive" and out["client"] == OUTSIDE


def write_log(path: Path, n: int, day: str = "2026-11-") -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"time": f"{day}{1 + i * 28 // n:02d}T10:00:{i % 60:02d}.{i % 1000:03d}Z",
                                 "identifier": f"c{i % 5}/d{i}/p1", "kind": "image", "tier": "reading-room",
                                 "access": "allow", "token_id": f"t{i % 7}", "holder": f"Holder {i % 7}",
                                 "client": "192.0.2.5", "seq": i}) + "\n")


def test_audit_pages_by_position_and_bounds_what_a_filter_reads(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 20_000)
    seen: list[int] = []
    before = None
    while True:
        got = audit.page(path, audit.Filter(), before, 1000)
        seen += [json.loads(e["detail"])["seq"] for e in got.entries]
        if got.older is None:
            break
        before = got.older
    assert seen == list(range(19_999, -1, -1))
    # a holder filter: only its lines, newest first; a rare match is searched for in bounded steps
    flt = audit.Filter(holder="Holder 3")
    got = audit.page(path, flt, None, 50)
    expected = [i for i in range(19_999, -1, -1) if i % 7 == 3][:50]
    assert [json.loads(e["detail"])["seq"] for e in got.entries] == expected
    rare = audit.Filter(holder="nobody")
    got = audit.page(path, rare, None, 50, budget=100_000)
    assert got.entries == [] and got.cut and got.older is not None and got.older > path.stat().st_size - 300_000
    # dates: found by bisection; the page starts at the end of the last day asked for
    flt = audit.Filter(until=audit._date("2026-11-10"), since=audit._date("2026-11-10"))
    got = audit.page(path, flt, None, 100_000)
    assert got.entries and all(e["time"].startswith("2026-11-10") for e in got.entries)
    assert len(got.entries) == sum(1 for i in range(20_000) if 1 + i * 28 // 20_000 == 10)
    assert got.older is None and not got.cut
    rows = list(csv.DictReader(io.StringIO("".join(audit.csv_lines(path, flt)))))
    assert [r["time"] for r in rows] == [e["time"] for e in reversed(got.entries)]  # oldest first
    assert rows[0]["target"].startswith("c") and rows[0]["holder"].startswith("Holder")


def test_bisection_and_backward_reading_agree_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    write_log(path, 3000)
    lines = path.read_bytes().split(b"\n")[:-1]
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    assert list(tail.backwards(path)) == list(reversed(list(zip(starts, lines, strict=True))))
    assert [s for s, _ in tail.backwards(path, starts[1234])] == list(reversed(starts[:1234]))
    assert list(tail.forwards(path, starts[2990])) == list(zip(starts[2990:], lines[2990:], strict=True))
    for day in ("2026-11-01", "2026-11-15", "2026-11-28", "2026-12-01", "2026-01-01"):
        at = tail.first_at_or_after(path, "time", day)
        expected = next((s for s, line in zip(starts, lines, strict=True) if json.loads(line)["time"] >= day),
                        path.stat().st_size)
        assert at == expected, day


def test_csv_cells_never_become_formulas() -> None:
    assert audit._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and audit._cell("-1") == "'-1"
    assert audit._cell("maps/d1") == "maps/d1" and audit._cell(None) == ""


# -- tokens: last use ----------------------------------------------------------------------------------------


async def test_token_list_shows_state_and_last_use(world: World) -> None:
    client, csrf = await sign_in(world)
    token, row = world.store.issue("reading-room", "Visiting scholar", 3, ["letters"])
    listing = await client.get("/staff/tokens")
    line = re.search(rf'<tr id="token-{row.id}">.*?</tr>', listing.text, re.S).group(0)
    assert '<td class="state">active</td>' in line and '<td class="used">never</td>' in line
    reader = world.client(world.apps[0])
    assert (await reader.get(image_url("letters/d1/p1"), headers=bearer(token))).status_code == 200
    listing = await client.get("/staff/tokens")
    line = re.search(rf'<tr id="token-{row.id}">.*?</tr>', listing.text, re.S).group(0)
    used = re.search(r'<td class="used">([^<]*)</td>', line).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", used), used
    assert (await client.post(f"/staff/tokens/{row.id}/revoke", data={"csrf": csrf})).status_code == 303
    listing = await client.get("/staff/tokens")
    line = re.search(rf'<tr id="token-{row.id}">.*?</tr>', listing.text, re.S).group(0)
    assert '<td class="state">revoked</td>' in line and used in line


def test_token_uses_are_written_coalesced_not_per_request(world: World) -> None:
    token, row = world.store.issue("reading-room", "Busy reader", 1)
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().lower().startswith("update tokens"):
            writes.append(statement)

    engine = world.catalogue.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        usage = Usage(world.catalogue, every=3600)
        world.store.usage = usage
        for _ in range(500):
            assert world.store.verify(token) is not None
        assert writes == []  # 500 uses, no write yet
        usage.flush()
        assert len(writes) == 1
        usage.flush()
        assert len(writes) == 1  # nothing new noted, nothing written
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    with world.catalogue.sessions() as session:
        assert session.get(TokenRow, row.id).last_used is not None
    # due: the write happens in the background, the request does not wait for it
    due = Usage(world.catalogue, every=0)
    due.touch(row.id)
    for _ in range(100):
        if not due.flushing:
            break
        time.sleep(0.02)
    assert not due.pending


# -- every route --------------------------------------------------------------------------------------------


async def test_every_console_route_refuses_without_a_session_and_never_answers_cors(world: World) -> None:
    tid = world.store.issue("reading-room", "Partner", 1)[1].id
    reports = world.settings.data_dir / "reports"
    reports.mkdir(parents=True)
    write_report(reports, "maps", "text", run_data(3, failures=2))
    name = next(reports.glob("ingest-*.json")).name
    routes = console_routes(world)
    paths = {p for _, p in routes}
    assert {"/staff/ingest", "/staff/ingest/{name}", "/staff/audit", "/staff/audit.csv"} <= paths
    forged = Sessions("another-signing-key-that-no-replica-uses-9876543210")
    foreign = forged.serializer.dumps(forged.new("token", tid, "Mallory", 2**31).payload())
    client = world.client(base_url=BASE)
    for method, path in routes:
        filled = path.replace("{cid}", "maps").replace("{doc}", "d1").replace("{tid}", tid).replace("{name}", name)
        filled = filled.replace("{rid}", "none")
        for headers in ({}, {"Authorization": f"Bearer {world.token('staff')}"}, {"Cookie": f"{COOKIE}={foreign}"},
                        {"Origin": "https://evil.example"}):
            r = await client.request(method, filled, headers=headers, data={"csrf": "x"} if method == "POST" else None)
            assert "access-control-allow-origin" not in r.headers, (method, path)
            if path in ("/staff/login", "/staff", "/staff/oidc/login", "/staff/oidc/callback"):
                continue  # the ways in
            assert r.status_code in (303, 403), (method, path, r.status_code)
            assert "batch3" not in r.text and "maps" not in r.text and "Partner" not in r.text
    preflight = await client.options("/staff/tier", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    # signed in, the pages answer, still without CORS
    staff, _ = await sign_in(world)
    for method, path in routes:
        if method != "GET" or path.startswith("/staff/oidc/"):  # no provider here: 404 (tests/console/test_oidc.py)
            continue
        filled = path.replace("{cid}", "maps").replace("{doc}", "d1").replace("{tid}", tid).replace("{name}", name)
        filled = filled.replace("{rid}", "none")
        r = await staff.get(filled, headers={"Origin": "https://evil.example"})
        # 400: a confirmation without its target; 404: ingest without a masters folder, a run that is not, a
        # person that does not exist (no one is catalogued here)
        may_miss = path.startswith(("/staff/ingest/", "/staff/persons/{pid}"))
        allowed = (200, 308, 400, 404) if may_miss else (200, 308, 400)
        assert r.status_code in allowed, (path, r.status_code)
        assert "access-control-allow-origin" not in r.headers
    # the public server keeps its CORS
    assert (await client.get(image_url("maps/d1/p1"))).headers["access-control-allow-origin"] == "*"
