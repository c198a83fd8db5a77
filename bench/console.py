"""Staff console pages at the archive's size: a 200k-document collection, timed in process.

Fills a fresh catalogue (SQLite in a temporary folder, or --database URL, which is emptied) with one
collection of --documents documents by bulk SQL (tests/bulk.py), signs in with a staff token and
times each console page through the ASGI app (median and worst of --repeat requests, after one
warm-up). The issue's target: a 200k-document collection page under 200 ms.

    python bench/console.py [--database URL] [--documents 200000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
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
from iiif_server.app import create_app  # noqa: E402
from iiif_server.auth.tokens import TokenStore  # noqa: E402
from iiif_server.manifests.catalogue import Catalogue, make_engine  # noqa: E402

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
    print(f"filled {args.documents} documents in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
    settings = config.Settings(data_dir=work / "data", images=work / "images", demo=False, database=url,
                               secret_key=SECRET, audit_log="off", access_log="off")
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
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
