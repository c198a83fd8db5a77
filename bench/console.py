"""Staff console pages and the landing page at the archive's size, timed in process.

Fills a fresh catalogue (SQLite in a temporary folder, or --database URL, which is emptied) with one
collection of --documents documents and --collections - 1 small ones by bulk SQL (tests/bulk.py), an
audit log of --audit-lines lines and --runs ingest reports, signs in with a staff token and times
each page through the ASGI app (median and worst of --repeat requests, after one warm-up). The
issue's target: a 200k-document collection page under 200 ms.

    python bench/console.py [--database URL] [--documents 200000] [--collections 200]
                            [--audit-lines 500000] [--runs 2000] [--repeat 20]

Results, with the command that produced them: docs/benchmarks.md, "Console and landing page".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bulk import fill  # noqa: E402

from iiif_server import config  # noqa: E402
from iiif_server.auth.tokens import TokenStore  # noqa: E402
from iiif_server.db.catalogue import Catalogue, make_engine  # noqa: E402
from iiif_server.ingest.report import write_report  # noqa: E402
from iiif_server.web.app import create_app  # noqa: E402

SECRET = "a-benchmark-signing-key-that-is-long-enough-0123456789"


async def measure(client: httpx.AsyncClient, path: str, repeat: int) -> tuple[float, float, int]:
    r = await client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200
    return statistics.median(times), max(times), len(r.content)


async def run(args: argparse.Namespace, work: Path) -> None:
    url = args.database or f"sqlite:///{work / 'catalogue.db'}"
    if args.database:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    catalogue = Catalogue(url)
    catalogue.upgrade()
    started = time.perf_counter()
    fill(catalogue, "big", args.documents, 1, staff_every=1000)
    for n in range(args.collections - 1):
        fill(catalogue, f"c{n:03d}", 10, 2, tier="public" if n % 4 else "reading-room")
    print(f"filled {args.documents} documents in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
    audit_log = work / "audit.jsonl"
    started = time.perf_counter()
    with audit_log.open("w") as fh:
        for i in range(args.audit_lines):  # a month of granted accesses, oldest first
            fh.write(json.dumps({"time": f"2026-11-{1 + i * 28 // args.audit_lines:02d}T10:{i // 60 % 60:02d}:"
                                 f"{i % 60:02d}.000Z", "identifier": f"c{i % 199:03d}/doc{i % 10}/p1", "kind": "image",
                                 "tier": "reading-room", "access": "allow", "token_id": f"t{i % 50}",
                                 "holder": f"Reader {i % 50}", "client": "192.0.2.5", "status": 200}) + "\n")
    reports = work / "data" / "reports"
    for i in range(args.runs):
        write_report(reports, f"c{i % 199:03d}", "", {
            "collection": f"c{i % 199:03d}", "source": f"/masters/{i}", "finished": f"2026-11-01T00:00:{i % 60:02d}",
            "converted": i, "unchanged": 0, "failed": 1, "skipped": 0, "not_done": 0, "stopped_by": None,
            "failures": [{"path": f"/masters/{i}/bad.tif", "reason": "truncated"}]})
    print(f"wrote {args.audit_lines} audit lines ({audit_log.stat().st_size // 2**20} MiB) and {args.runs} "
          f"ingest reports in {time.perf_counter() - started:.1f} s")
    settings = config.Settings(data_dir=work / "data", images=work / "images", demo=False, database=url,
                               secret_key=SECRET, audit_log=str(audit_log), access_log="off")
    (work / "images").mkdir(exist_ok=True)
    app = create_app(settings)
    token = TokenStore(catalogue, SECRET).issue("staff", "bench", 1)[0]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        form = await client.get("/staff/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        r = await client.post("/staff/login", data={"csrf": csrf, "token": token})
        assert r.status_code == 303, r.text
        last = args.documents - 50
        pages = [
            ("overview", "/staff/"),
            ("collection, first page", "/staff/collections/big"),
            ("collection, middle page", f"/staff/collections/big?from={args.documents // 2}"),
            ("collection, last page", f"/staff/collections/big?from={last}"),
            ("collection, find by prefix", "/staff/collections/big?find=doc19999"),
            ("document", f"/staff/collections/big/doc{args.documents - 1}"),
            ("tier confirmation, collection", "/staff/tier?target=big&tier=staff"),
            ("tokens", "/staff/tokens"),
            ("ingest runs, newest", "/staff/ingest"),
            ("audit, newest", "/staff/audit"),
            ("audit, one holder", "/staff/audit?holder=Reader+7"),
            ("audit, one collection", "/staff/audit?collection=c042"),
            ("audit, one day", "/staff/audit?since=2026-11-10&until=2026-11-10"),
            ("audit, no match (bounded)", "/staff/audit?holder=nobody"),
            ("landing page /", "/"),
            ("landing page /, page 4", "/?after=c143"),
            ("viewer page", "/view/big"),
        ]
        print(f"{'page':32} {'median ms':>10} {'worst ms':>10} {'bytes':>8}")
        for name, path in pages:
            median, worst, size = await measure(client, path, args.repeat)
            print(f"{name:32} {median:10.1f} {worst:10.1f} {size:8d}")
    app.state.catalogue.engine.dispose()
    catalogue.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="a PostgreSQL URL to use (its public schema is dropped first)")
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--collections", type=int, default=200)
    parser.add_argument("--audit-lines", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
