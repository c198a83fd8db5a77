"""Change Discovery and set-tier at the archive's size, on SQLite or PostgreSQL.

Builds (once, by bulk SQL) a catalogue of 200 collections with kept counts, one of them
`portraits` with 200k documents, and 1.5 M activities (one in ten restricted); then
measures through the ASGI app the discovery stream and its first, middle and last
pages (built, and for complete pages served again from the page cache), the
`collections` counts, and `set-tier portraits reading-room` / back to public in a child
process (wall time and peak RSS). Prints medians.

    python bench/discovery.py --database sqlite:///big.db
    python bench/discovery.py --database 'postgresql://user:pw@host/db?options=-csearch_path%3Dbig'

Results, with the command that produced them: docs/benchmarks.md, "Catalogue at the image bank's size".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iiif_server import config  # noqa: E402
from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.manifests import discovery  # noqa: E402
from iiif_server.web.app import create_app  # noqa: E402

COLLECTIONS = 200


def series(n: int) -> str:
    """Numbers 1..n as a table `s(i)`, in both engines."""
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "


def build(cat: Catalogue, documents: int, activities: int) -> None:
    with cat.engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM collections")).scalar():
            return
        t0 = time.perf_counter()
        conn.execute(text(
            series(COLLECTIONS) + "INSERT INTO collections (id, label, tier, revision, metadata, created, updated, "
            "document_count, image_count) SELECT CASE WHEN i = 1 THEN 'portraits' ELSE 'c' || i END, 'C', "
            "'public', 1, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 7500, 61000 FROM s"))
        conn.execute(text(
            series(documents) + "INSERT INTO documents (collection_id, ident, sort_key, position, label, metadata, "
            "created, updated) SELECT 'portraits', 'p' || i, 'p' || i, i, 'P', '[]', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP FROM s"))
        conn.execute(text("UPDATE documents SET tier = 'staff' WHERE pk % 50 = 0"))  # some own a tier
        conn.execute(text(
            series(activities) + "INSERT INTO activities (type, object_type, collection_id, document_ident, tier, "
            "end_time) SELECT 'Update', 'Manifest', 'c' || (i % 199 + 2), 'd' || i, "
            "CASE WHEN i % 10 = 0 THEN 'staff' ELSE 'public' END, CURRENT_TIMESTAMP FROM s"))
        conn.execute(text("UPDATE catalogue_state SET value = (SELECT count(*) FROM activities "
                          "WHERE tier = 'public') WHERE key = 'public_activities'"))
        print(f"built in {time.perf_counter() - t0:.1f} s")
    if cat.engine.dialect.name == "postgresql":
        with cat.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with cat.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def median_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:7.1f} ms"


async def pages(cat: Catalogue, rounds: int) -> None:
    cache_get = discovery.PageCache.get
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.Settings(database=cat.url, data_dir=Path(tmp) / "data", images=Path(tmp) / "img",
                                   demo=False)
        app = create_app(settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            stream = (await client.get("/iiif/discovery/activity/all-changes")).json()
            last = int(stream["last"]["id"].rsplit("/", 1)[1])
            print(f"totalItems {stream['totalItems']}, last page {last}")
            for name, url in (("all-changes", "/iiif/discovery/activity/all-changes"),
                              ("page 0", "/iiif/discovery/activity/page/0"),
                              (f"page {last // 2}", f"/iiif/discovery/activity/page/{last // 2}"),
                              (f"page {last} (last)", f"/iiif/discovery/activity/page/{last}")):
                built, cached = [], []
                for _ in range(rounds):
                    discovery.PageCache.get = lambda self, key: None  # type: ignore[method-assign]
                    t0 = time.perf_counter()  # nothing cached: built from the catalogue
                    r = await client.get(url)
                    built.append(time.perf_counter() - t0)
                    discovery.PageCache.get = cache_get  # type: ignore[method-assign]
                    await client.get(url)  # cached now if complete
                    t0 = time.perf_counter()
                    await client.get(url)
                    cached.append(time.perf_counter() - t0)
                items = len(r.json().get("orderedItems", []))
                print(f"{name:22s} built {median_ms(built)}  again {median_ms(cached)}  "
                      f"{len(r.content) // 1024} KiB, {items} items, {r.headers['cache-control']}")


def set_tier_child(url: str, tier: str) -> None:
    cat = Catalogue(url)
    t0 = time.perf_counter()
    cat.set_tier("portraits", tier)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"seconds": elapsed, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--activities", type=int, default=1_500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--set-tier-child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.set_tier_child:
        set_tier_child(args.database, args.set_tier_child[0])
        return
    cat = Catalogue(args.database)
    cat.upgrade()
    build(cat, args.documents, args.activities)
    asyncio.run(pages(cat, args.rounds))
    t0 = time.perf_counter()
    counts = cat.counts()
    print(f"collections counts      {(time.perf_counter() - t0) * 1000:7.1f} ms for {len(counts)} collections")
    print(f"discovery.PAGE_SIZE = {discovery.PAGE_SIZE}")
    for tier in ("reading-room", "public"):
        out = subprocess.run([sys.executable, __file__, "--database", args.database, "--set-tier-child", tier],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"set-tier portraits {tier:13s} {result['seconds']:6.1f} s, peak RSS {result['max_rss_mb']:.0f} MB")
    cat.engine.dispose()


if __name__ == "__main__":
    main()
