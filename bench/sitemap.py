"""Sitemap benchmark at full size: a 200,000-document public collection served as sitemap files of 50,000 URLs.

Builds (once, kept in --workdir while the size stays the same) a catalogue by bulk SQL in the shape ingest
writes: a public collection of --documents documents (every 20th staff-only, so not listed), one page each and
one Create activity each (the `lastmod`); and a reading-room collection of a quarter of that size whose every
100th document is public (its files list only those). Then, --runs times, for every file the sitemap index
names: a fresh `iiif-server serve` (one worker, nothing cached in it; the database's files are in the OS page
cache, as on a running server), the file asked for once (cold) and once more (warm), as a crawler does
(gzip); its URLs counted and checked (at most 50,000, every listed document once, no staff document). Memory:
the worker's peak RSS (VmHWM) serving the file against its RSS after start-up. The peer, measured in the
same run: the same rows read by one plain SQL statement in this process (what the file cannot be faster
than), so the ratio is what generating and sending the XML costs.

    python bench/sitemap.py [--backend sqlite|postgresql] [--database URL] [--documents 200000] [--runs 3]

Results, with the command that produced them: docs/benchmarks.md, "Sitemaps at full size".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.db.models import Activity, Collection, Document, Image, sort_key  # noqa: E402

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
MIB = 1024 * 1024
EPOCH = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
BATCH = 20_000


def fill(catalogue: Catalogue, cid: str, tier: str, documents: int, own_tier: tuple[int, str]) -> None:
    """A collection of `documents` documents of one page and one Create each; every own_tier[0]-th document
    has the tier own_tier[1]."""
    every, other = own_tier
    described = {"summary": None, "metadata_pairs": [], "rights": None, "required_statement": None,
                 "nav_date": None, "created": EPOCH, "updated": EPOCH}
    with catalogue.engine.begin() as conn:
        conn.execute(insert(Collection.__table__), [{
            "id": cid, "label": f"Collection {cid}", "tier": tier, "revision": 1, "document_count": documents,
            "image_count": documents, **described}])
        for start in range(0, documents, BATCH):
            rows = range(start, min(documents, start + BATCH))
            conn.execute(insert(Document.__table__), [
                {"collection_id": cid, "ident": f"doc{d}", "sort_key": sort_key(f"doc{d}"), "position": d,
                 "label": f"Dossier {d}", "tier": other if d % every == every - 1 else None, **described}
                for d in rows])
            pks = dict(conn.execute(text("SELECT ident, pk FROM documents WHERE collection_id = :c AND position "
                                         ">= :a AND position < :b"), {"c": cid, "a": start, "b": rows.stop}).all())
            conn.execute(insert(Image.__table__), [
                {"document_pk": pks[f"doc{d}"], "ident": "p1", "position": 0, "label": "1", "width": 2000,
                 "height": 3000, "checksum": "0" * 64, "source_path": f"/m/{d}.tif", "source_page": 0,
                 "source_size": 1, "source_mtime": 0.0, "tier": None, "created": EPOCH, "updated": EPOCH}
                for d in rows])
            conn.execute(insert(Activity.__table__), [
                {"type": "Create", "object_type": "Manifest", "collection_id": cid, "document_ident": f"doc{d}",
                 "tier": other if d % every == every - 1 else tier, "end_time": EPOCH + dt.timedelta(seconds=d)}
                for d in rows])


def build(url: str, documents: int) -> Catalogue:
    catalogue = Catalogue(url)
    catalogue.upgrade()
    with catalogue.engine.connect() as conn:
        have = conn.execute(text("SELECT document_count FROM collections WHERE id = 'portraits'")).scalar()
    if have == documents:
        return catalogue
    if have is not None:
        raise SystemExit(f"the database holds another size ({have} documents): use a new one or --fresh")
    t0 = time.monotonic()
    fill(catalogue, "portraits", "public", documents, (20, "staff"))
    fill(catalogue, "letters", "reading-room", documents // 4, (100, "public"))
    print(f"built {documents} + {documents // 4} documents in {time.monotonic() - t0:.0f} s", flush=True)
    return catalogue


def rss(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """`iiif-server serve`, one worker, in a session of its own (stopped by its process group)."""

    def __init__(self, url: str, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "iiif_server.cli", "serve", "--database", url, "--data-dir", str(data_dir),
             "--images", str(data_dir / "images"), "--no-demo", "--workers", "1", "--port", str(port),
             "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("iiif-server serve did not start")
            time.sleep(0.1)
        kids = [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        self.pid = kids[0] if len(kids) == 1 else self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def fetch(client: httpx.Client, url: str) -> tuple[float, bytes, int]:
    """Seconds to the last byte, the body (decoded) and its size on the wire."""
    t0 = time.perf_counter()
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        body = b"".join(r.iter_bytes())
        wire = r.num_bytes_downloaded
    took = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code)
    return took, body, wire


def rows_by_sql(catalogue: Catalogue, cid: str, first: int, stop: int) -> tuple[float, int]:
    """The peer: the same documents and last activities by one SQL statement, in this process."""
    own = "d.tier = 'public'" if cid == "letters" else "(d.tier IS NULL OR d.tier = 'public')"
    t0 = time.perf_counter()
    with catalogue.engine.connect() as conn:
        n = len(conn.execute(text(
            "SELECT d.ident, (SELECT a.end_time FROM activities a WHERE a.collection_id = d.collection_id AND "
            "a.document_ident = d.ident ORDER BY a.id DESC LIMIT 1) FROM documents d WHERE d.collection_id = :c "
            f"AND d.position >= :a AND d.position < :b AND {own} ORDER BY d.position"),
            {"c": cid, "a": first, "b": stop}).all())
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--database", help="database URL (default: SQLite in --workdir)")
    ap.add_argument("--documents", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "iiif-bench-sitemap")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "images").mkdir(exist_ok=True)
    url = args.database or f"sqlite:///{args.workdir / f'sitemap-{args.documents}.db'}"
    if args.backend == "postgresql" and not url.startswith("postgresql"):
        raise SystemExit("--backend postgresql needs --database postgresql://...")
    catalogue = build(url, args.documents)
    print(f"load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])} ({os.cpu_count()} cores)")

    server = Server(url, args.workdir)
    try:
        with httpx.Client(timeout=60) as client:
            index = ET.fromstring(fetch(client, server.base + "/sitemap.xml")[1])
    finally:
        server.stop()
    files = [e.findtext(f"{NS}loc", "").removeprefix(server.base) for e in index.iter(f"{NS}sitemap")]
    files = [f for f in files if f.startswith("/sitemaps/documents/")]
    cold: dict[str, list[float]] = {f: [] for f in files}
    warm: dict[str, list[float]] = {f: [] for f in files}
    peer: dict[str, list[float]] = {f: [] for f in files}
    grew: dict[str, list[float]] = {f: [] for f in files}
    counts: dict[str, tuple[int, int, int]] = {}
    for _ in range(args.runs):
        for path in files:
            server = Server(url, args.workdir)
            try:
                start_rss = rss(server.pid, "VmRSS")
                with httpx.Client(timeout=60) as client:
                    took, body, wire = fetch(client, server.base + path)
                    cold[path].append(took)
                    warm[path].append(fetch(client, server.base + path)[0])
                grew[path].append((rss(server.pid, "VmHWM") - start_rss) / MIB)
            finally:
                server.stop()
            locs = [e.text or "" for e in ET.fromstring(body).iter(f"{NS}loc")]
            idents = [loc.rsplit("/", 1)[1] for loc in locs]
            assert len(locs) <= 50_000 and len(set(idents)) == len(idents), path
            cid, n = path.split("/")[3], int(path.rsplit("/", 1)[1].removesuffix(".xml"))
            sql_took, sql_rows = rows_by_sql(catalogue, cid, n * 50_000, (n + 1) * 50_000)
            assert sql_rows == len(locs), (path, sql_rows, len(locs))  # exactly the public documents
            peer[path].append(sql_took)
            counts[path] = (len(locs), len(body), wire)
    total = {cid: sum(c[0] for p, c in counts.items() if p.split("/")[3] == cid) for cid in ("portraits", "letters")}
    print(f"\nsitemap files of {args.backend}, {args.runs} runs each, medians; cold = a fresh server's first request")
    print(f"{'file':34} {'URLs':>6} {'XML MiB':>8} {'gzip KiB':>9} {'cold s':>7} {'warm s':>7} {'SQL s':>6} "
          f"{'cold/SQL':>8} {'RSS +MiB':>8}")
    for path in files:
        urls, size, wire = counts[path]
        c, w, s, g = (statistics.median(x[path]) for x in (cold, warm, peer, grew))
        print(f"{path:34} {urls:6d} {size / MIB:8.2f} {wire / 1024:9.0f} {c:7.3f} {w:7.3f} {s:6.3f} {c / s:8.1f} "
              f"{g:8.1f}")
    worst = max(max(v) for v in cold.values())
    print(f"\nURLs listed: portraits {total['portraits']} (of {args.documents}), letters {total['letters']} "
          f"(of {args.documents // 4}); slowest cold file {worst:.3f} s (target < 1 s); largest RSS growth "
          f"{max(max(v) for v in grew.values()):.1f} MiB")
    print(f"load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
