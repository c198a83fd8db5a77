"""Catalogue benchmark at the image bank's size: every catalogue-bound request and command, timed.

Populates a synthetic catalogue (default: 200 collections, 1.5 M documents, 12.2 M images,
1.5 M activities, with a 200k-document `portraits`, a 30k-document `transport-lists` of 20-60
pages each and a 150k-document `civil-registers` of 2.4 M pages) by bulk SQL, in the shape
`ingest` writes, on SQLite or PostgreSQL. It is kept in --workdir and reused while the size,
the generator and the schema head stay the same. Then it starts `iiif-server serve` (one
worker) on it and times each row cold (first request after a catalogue change) and cached,
with the body size and the worker's peak RSS, runs the CLI commands as subprocesses, and
prints a table against the targets of the scale issue. No image files are needed, except
the few it writes for the tile row.

    python bench/catalogue.py [--backend sqlite|postgresql] [--database URL] [--scale 1.0]
                              [--only ROW ...] [--timeout 120] [--fresh] [--explain] [--json FILE]

Results, with the command that produced them: docs/benchmarks.md, "Catalogue at the image bank's size".
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import operator
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from iiif_server.db.catalogue import MIGRATIONS, Catalogue  # noqa: E402
from iiif_server.db.models import Activity, Base, Collection, Document, Image, State, sort_key  # noqa: E402
from iiif_server.manifests.presentation import Urls  # noqa: E402

GENERATOR = 2  # bump when the synthetic data changes shape: kept databases are then rebuilt
SEED = 20261129
EPOCH = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
FULL_DOCUMENTS = 1_500_000
FULL_IMAGES = 12_200_000
COLLECTIONS = 200
# id, label, documents at full size, pages per document (uniform range), one loose image per document?
BIG = (
    ("portraits", "Portraits", 200_000, (1, 1), True),
    ("transport-lists", "Transport lists", 30_000, (20, 60), False),
    ("civil-registers", "Civil registers", 150_000, (8, 24), False),
)
INGEST_IDENT = "zzz-bench-ingest"  # sorts after every synthetic document: the others keep their positions
EMPTY_COLLECTION = "bench-empty"
TIER_COLLECTION = "portraits"
MIB = 1024 * 1024
ROWS = ("document", "root", "collection", "collection-concurrent", "collection-manifest", "during-build",
        "discovery", "set-tier", "ingest", "collections", "tile")


# -- the synthetic catalogue ------------------------------------------------------------------


@dataclass
class Spec:
    """One collection to generate."""

    id: str
    label: str
    tier: str
    pages: list[int]  # pages per document, in natural (= position) order
    loose: bool  # one image per document, named like the document (an image directly in the source)
    doc_tier_every: int = 0  # every n-th document has its own tier (from a metadata CSV), 0: none

    def ident(self, n: int) -> str:
        prefix = {"portraits": "portrait-", "transport-lists": "list_", "civil-registers": "register-"}
        return f"{prefix.get(self.id, 'd')}{n + 1}"  # unpadded: natural order differs from byte order


def plan(scale: float) -> list[Spec]:
    rng = random.Random(SEED)
    specs = []
    for cid, label, docs, (lo, hi), loose in BIG:
        n = max(1, round(docs * scale))
        specs.append(Spec(cid, label, "public", [rng.randint(lo, hi) for _ in range(n)], loose))
    others = COLLECTIONS - len(BIG)
    rest = round((FULL_DOCUMENTS - sum(b[2] for b in BIG)) * scale)
    weights = [1 / (i + 4) for i in range(others)]  # a few large, many small
    total_w = sum(weights)
    for i, w in enumerate(weights):
        n = max(1, round(rest * w / total_w))
        tier = "staff" if i % 50 == 7 else "reading-room" if i % 10 == 3 else "public"
        specs.append(Spec(f"coll-{i + 1:03d}", f"Collection {i + 1}", tier,
                          [rng.randint(1, 14) for _ in range(n)], False, 50 if i % 25 == 0 else 0))
    return specs


def stamp(ci: int) -> dt.datetime:
    return EPOCH + dt.timedelta(hours=ci)


# One function per table: every column, filled the way Ingest fills it. A column the schema
# gains and these do not fill stops the population with its name (see `check_columns`).


def collection_row(ci: int, spec: Spec) -> dict[str, Any]:
    when = stamp(ci)
    return {"id": spec.id, "label": spec.label, "summary": None, "metadata": [], "rights": None,
            "required_statement": None, "nav_date": None, "created": when, "updated": when,
            "tier": spec.tier, "revision": 2, "document_count": len(spec.pages), "image_count": sum(spec.pages),
            "unannounced": 0, "description": None, "dates": None, "provenance": None, "record": None}


def document_row(ci: int, spec: Spec, pk: int, n: int) -> dict[str, Any]:
    ident = spec.ident(n)
    tier = "reading-room" if spec.doc_tier_every and n % spec.doc_tier_every == 1 else None
    when = stamp(ci)
    return {"pk": pk, "collection_id": spec.id, "ident": ident, "sort_key": sort_key(ident), "position": n,
            "tier": tier, "label": ident, "summary": None, "metadata": [], "rights": None,
            "required_statement": None, "nav_date": None, "created": when, "updated": when}


def image_row(ci: int, spec: Spec, pk: int, doc_pk: int, n: int, page: int) -> dict[str, Any]:
    doc = spec.ident(n)
    ident = doc if spec.loose else f"p{page + 1}"
    master = f"/srv/masters/{spec.id}/{doc}.tif" if spec.loose else f"/srv/masters/{spec.id}/{doc}/{ident}.tif"
    when = stamp(ci)
    return {"pk": pk, "document_pk": doc_pk, "ident": ident, "position": page, "label": str(page + 1),
            "width": 4000 + pk % 2000, "height": 6000 - pk % 1500, "checksum": f"{pk:064x}",
            "source_path": master, "source_page": 0, "source_size": 20_000_000 + pk % 9_000_000,
            "source_mtime": when.timestamp() - 86400.0, "tier": None, "created": when, "updated": when}


def activity_row(aid: int, kind: str, object_type: str, collection: str, document: str | None, tier: str,
                 when: dt.datetime) -> dict[str, Any]:
    return {"id": aid, "type": kind, "object_type": object_type, "collection_id": collection,
            "document_ident": document, "tier": tier, "end_time": when}


def state_rows(version: int, public_activities: int) -> list[dict[str, Any]]:
    return [{"key": "version", "value": version}, {"key": "public_activities", "value": public_activities}]


def image_rows(specs: list[Spec]) -> Iterator[dict[str, Any]]:
    """Every page of every collection's documents, keyed as the documents are (pk in load order)."""
    pk = doc_pk = 0
    for ci, spec in enumerate(specs):
        for n, pages in enumerate(spec.pages):
            doc_pk += 1
            for page in range(pages):
                pk += 1
                yield image_row(ci, spec, pk, doc_pk, n, page)


def generate(specs: list[Spec]) -> dict[str, Callable[[], Iterator[dict[str, Any]]]]:
    """Row streams per table, in load order (re-iterable: each call starts over)."""

    def collections() -> Iterator[dict[str, Any]]:
        for ci, spec in enumerate(specs):
            yield collection_row(ci, spec)

    def documents() -> Iterator[dict[str, Any]]:
        pk = 0
        for ci, spec in enumerate(specs):
            for n in range(len(spec.pages)):
                pk += 1
                yield document_row(ci, spec, pk, n)

    def images() -> Iterator[dict[str, Any]]:
        return image_rows(specs)

    def activities() -> Iterator[dict[str, Any]]:
        aid = 0
        for ci, spec in enumerate(specs):
            when = stamp(ci)
            for kind, obj in (("Create", "Collection"), ("Create", "Manifest")):
                aid += 1
                yield activity_row(aid, kind, obj, spec.id, None, spec.tier, when)
            for n in range(len(spec.pages)):
                aid += 1
                own = "reading-room" if spec.doc_tier_every and n % spec.doc_tier_every == 1 else None
                yield activity_row(aid, "Create", "Manifest", spec.id, spec.ident(n), own or spec.tier, when)

    def state() -> Iterator[dict[str, Any]]:
        public = sum(1 for a in activities() if a["tier"] == "public")
        yield from state_rows(2 * len(specs), public)

    return {Collection.__tablename__: collections, Document.__tablename__: documents,
            Image.__tablename__: images, Activity.__tablename__: activities, State.__tablename__: state}


def check_columns(engine: Engine, table: str, row: dict[str, Any]) -> list[str]:
    """The database's columns in order; fails naming any column the row builder does not fill."""
    columns = [c["name"] for c in inspect(engine).get_columns(table)]
    missing = [c for c in columns if c not in row]
    extra = [c for c in row if c not in columns]
    if missing or extra:
        raise SystemExit(f"bench: {table}: the schema has columns {missing} that the row builder does not fill "
                         f"and the builder fills {extra} that the schema lacks; update {table}'s row function")
    return columns


# -- bulk loading ------------------------------------------------------------------------------


def converters(engine: Engine, table: str, columns: list[str]) -> list[Callable[[Any], Any] | None]:
    """SQLAlchemy's own bind conversion per column (JSON -> text, datetimes for SQLite)."""
    out: list[Callable[[Any], Any] | None] = []
    for name in columns:
        col = Base.metadata.tables[table].c.get(name)
        proc = col.type.dialect_impl(engine.dialect).bind_processor(engine.dialect) if col is not None else None
        out.append(proc)
    return out


def as_tuples(rows: Iterable[dict[str, Any]], columns: list[str],
              procs: list[Callable[[Any], Any] | None]) -> Iterator[tuple[Any, ...]]:
    pick = operator.itemgetter(*columns)
    converted = [(i, proc) for i, proc in enumerate(procs) if proc is not None]
    if not converted:
        yield from map(pick, rows)
        return
    memo: dict[tuple[int, Any], Any] = {}  # the same few datetimes recur millions of times
    for row in rows:
        values = list(pick(row))
        for i, proc in converted:
            value = values[i]
            if value is None:
                continue
            if isinstance(value, (list, dict)):
                values[i] = proc(value)
                continue
            key = (i, value)
            hit = memo.get(key)
            if hit is None:
                hit = proc(value)
                if len(memo) < 100_000:
                    memo[key] = hit
            values[i] = hit
        yield tuple(values)


def batched(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_sqlite(engine: Engine, streams: dict[str, Callable[[], Iterator[dict[str, Any]]]]) -> None:
    import sqlite3

    layouts = {}
    for table, stream in streams.items():
        first = next(stream(), None)
        if first is not None:
            columns = check_columns(engine, table, first)
            layouts[table] = (columns, converters(engine, table, columns))
    engine.dispose()  # the schema's WAL mode can be left only by the sole connection
    db = sqlite3.connect(engine.url.database or "")
    try:
        mode = db.execute("PRAGMA journal_mode=OFF").fetchone()[0]
        if mode != "off":
            raise RuntimeError(f"SQLite stayed in journal mode {mode!r}: is another process using the file?")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-512000")
        db.execute("PRAGMA foreign_keys=OFF")  # every reference is generated consistent
        marks = ",".join("?" * len(streams))
        indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                             f"AND tbl_name IN ({marks})", list(streams)).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        for table, (columns, procs) in layouts.items():
            stream = streams[table]
            db.execute(f"DELETE FROM {table}")
            sql = f'INSERT INTO {table} ({",".join(columns)}) VALUES ({",".join("?" * len(columns))})'
            t0 = time.perf_counter()
            count = 0
            for batch in batched(as_tuples(stream(), columns, procs), 50_000):
                db.executemany(sql, batch)
                count += len(batch)
            db.commit()
            print(f"  {table}: {count} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        for _, sql in indexes:
            db.execute(sql)
        db.commit()
        print(f"  indexes: {time.perf_counter() - t0:.0f} s", flush=True)
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def load_postgresql(engine: Engine, streams: dict[str, Callable[[], Iterator[dict[str, Any]]]]) -> None:
    raw = engine.raw_connection()
    try:
        db = raw.driver_connection
        db.autocommit = True
        cur = db.cursor()
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        names = list(streams)
        foreign = cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)", (names,)).fetchall()
        indexes = cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)", (names,)).fetchall()
        for table, name, _ in foreign:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for table, stream in streams.items():
            first = next(stream(), None)
            if first is None:
                continue
            columns = check_columns(engine, table, first)
            procs = converters(engine, table, columns)
            t0 = time.perf_counter()
            count = 0
            cur.execute(f"DELETE FROM {table}")
            with db.transaction(), cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                for row in as_tuples(stream(), columns, procs):
                    copy.write_row(row)
                    count += 1
            print(f"  {table}: {count} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        for _, sql in indexes:
            cur.execute(sql)
        for table, name, definition in foreign:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table, key in (("documents", "pk"), ("images", "pk"), ("activities", "id")):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), "
                        f"(SELECT coalesce(max({key}), 1) FROM {table}))")
        print(f"  indexes and constraints: {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        cur.execute("VACUUM (ANALYZE)")  # what autovacuum would have done: statistics, visibility map
        print(f"  vacuum analyze: {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        raw.close()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def db_bytes(engine: Engine, url: str) -> int:
    if engine.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def populate(url: str, meta_path: Path, scale: float, fresh: bool) -> dict[str, Any]:
    """The catalogue at `scale`: reused when the kept one matches, else built anew."""
    wanted = {"scale": scale, "generator": GENERATOR, "seed": SEED, "schema": head_revision()}
    catalogue = Catalogue(url)
    if meta_path.exists() and not fresh:
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in wanted} == wanted:
            try:
                with catalogue.engine.connect() as conn:
                    found = conn.scalar(text("SELECT count(*) FROM collections"))
                if found == meta["counts"]["collections"]:
                    print(f"reusing the catalogue populated in {meta['seconds']:.0f} s "
                          f"({meta['bytes'] / 1e9:.2f} GB)", flush=True)
                    catalogue.engine.dispose()
                    return meta
            except Exception as exc:  # noqa: BLE001 - gone or broken: rebuilt below
                print(f"kept catalogue unusable ({type(exc).__name__}), rebuilding", flush=True)
        else:
            print(f"kept catalogue is for {meta.get('scale')}/{meta.get('schema')}, rebuilding", flush=True)
    meta_path.unlink(missing_ok=True)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
    else:
        reflected = MetaData()
        reflected.reflect(catalogue.engine)
        reflected.drop_all(catalogue.engine)
    catalogue.engine.dispose()
    catalogue = Catalogue(url)
    catalogue.upgrade()
    specs = plan(scale)
    streams = generate(specs)
    print(f"populating {url.split('@')[-1]} at scale {scale}: {len(specs)} collections, "
          f"{sum(len(s.pages) for s in specs)} documents, {sum(sum(s.pages) for s in specs)} images", flush=True)
    t0 = time.perf_counter()
    if catalogue.engine.dialect.name == "sqlite":
        load_sqlite(catalogue.engine, streams)
    else:
        load_postgresql(catalogue.engine, streams)
    seconds = time.perf_counter() - t0
    with catalogue.engine.connect() as conn:
        counts = {t: int(conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                  for t in ("collections", "documents", "images", "activities")}
    meta = {**wanted, "seconds": seconds, "bytes": db_bytes(catalogue.engine, url), "counts": counts}
    catalogue.engine.dispose()
    meta_path.write_text(json.dumps(meta, indent=1))
    print(f"populated in {seconds:.0f} s: {counts}, {meta['bytes'] / 1e9:.2f} GB", flush=True)
    return meta


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Measure:
    row: str
    what: str
    cold_ms: float | None = None
    cached_ms: float | None = None
    size: int | None = None
    rss_mib: float | None = None
    status: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""


def proc_status(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`iiif-server serve` with one worker; killed when its worker passes the memory cap."""

    def __init__(self, url: str, images: Path, data_dir: Path, cap: int) -> None:
        self.url, self.images, self.data_dir, self.cap = url, images, data_dir, cap
        self.proc: subprocess.Popen[bytes] | None = None
        self.capped = False
        self.base = ""

    def __enter__(self) -> Server:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--database", self.url, "--images", str(self.images),
               "--data-dir", str(self.data_dir), "--no-demo", "--workers", "1", "--port", str(port),
               "--discovery-rate", "0",  # the discovery row walks every page as fast as it can
               "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        for _ in range(600):
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("iiif-server serve exited at start")
            time.sleep(0.1)
        else:
            raise RuntimeError("iiif-server serve did not answer /healthz")
        self.pid = self.worker()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def worker(self) -> int:
        """The uvicorn worker: a child process when there is a supervisor, else the server itself."""
        assert self.proc is not None
        kids = children(self.proc.pid)
        return kids[0] if len(kids) == 1 else self.proc.pid

    def _watch(self) -> None:
        while not self._stop.is_set():
            if proc_status(self.pid, "VmRSS") > self.cap:
                self.capped = True
                self.kill()
                return
            time.sleep(0.05)

    def reset_peak(self) -> None:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        except OSError:
            pass

    def peak_mib(self) -> float:
        return proc_status(self.pid, "VmHWM") / MIB

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session this script started
            self.proc.wait(10)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def child_env() -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Got:
    status: int | str
    seconds: float
    size: int
    body: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


KEEP_BODY = 64 * MIB


def fetch(client: httpx.Client, url: str, timeout: float) -> Got:
    """One GET, streamed (a body may be GBs); status 'TIMEOUT' or 'ERROR' when it does not complete."""
    t0 = time.perf_counter()
    size, chunks = 0, []
    try:
        with client.stream("GET", url, timeout=httpx.Timeout(timeout)) as r:
            for chunk in r.iter_bytes(1 << 20):
                size += len(chunk)
                if size <= KEEP_BODY:
                    chunks.append(chunk)
                if time.perf_counter() - t0 > timeout:
                    return Got("TIMEOUT", time.perf_counter() - t0, size)
            return Got(r.status_code, time.perf_counter() - t0, size, b"".join(chunks) if size <= KEEP_BODY else None)
    except httpx.TimeoutException:
        return Got("TIMEOUT", time.perf_counter() - t0, size)
    except httpx.HTTPError as exc:
        return Got(f"ERROR {type(exc).__name__}", time.perf_counter() - t0, size)


class Bench:
    def __init__(self, args: argparse.Namespace, url: str, workdir: Path, tag: str) -> None:
        self.args, self.url, self.workdir, self.tag = args, url, workdir, tag
        self.timeout = args.timeout
        self.cap = int(args.max_rss_mib * MIB)
        self.images = workdir / f"images-{tag}"
        self.images.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / f"server-{tag}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalogue = Catalogue(url)
        self.backend = self.catalogue.engine.dialect.name
        self.results: list[Measure] = []

    # helpers

    def sql(self, statement: str, **params: Any) -> Any:
        with self.catalogue.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else None

    def bump(self, collection: str | None) -> None:
        """What Catalogue.touch does: the next request must build anew."""
        if collection:
            self.sql("UPDATE collections SET revision = revision + 1 WHERE id = :c", c=collection)
        self.sql("UPDATE catalogue_state SET value = value + 1 WHERE key = 'version'")

    def middle_document(self, collection: str) -> str:
        n = self.sql("SELECT document_count FROM collections WHERE id = :c", c=collection)[0][0]
        return self.sql("SELECT ident FROM documents WHERE collection_id = :c AND position = :p",
                        c=collection, p=n // 2)[0][0]

    def server(self) -> Server:
        return Server(self.url, self.images, self.data_dir, self.cap)

    def add(self, m: Measure) -> Measure:
        self.results.append(m)
        print(f"  {m.row:<22} {m.what:<44} {fmt_ms(m.cold_ms):>9} {fmt_ms(m.cached_ms):>9} {fmt_size(m.size):>9} "
              f"{fmt_rss(m.rss_mib):>8} {m.status:<8} {verdict(m.ok):<5} {m.note}", flush=True)
        return m

    def document_measure(self, server: Server, client: httpx.Client, row: str, what: str, url: str,
                         collection: str | None, repeats: int = 5, limit_4xx: bool = False,
                         target: str | None = None) -> tuple[Measure, Got]:
        """Cold (after a change) and cached (median of repeats) of one Presentation document."""
        self.bump(collection)
        server.reset_peak()
        cold = fetch(client, url, self.timeout)
        m = Measure(row, what, cold.seconds * 1000, size=cold.size, status=str(cold.status),
                    target="cold<1s cached<10ms <=10MB rss<500MiB")
        if server.capped:
            m.status, m.note = "RSS-CAP", f"worker killed above {self.cap // MIB} MiB"
        elif cold.status == 200:
            cached = [fetch(client, url, self.timeout) for _ in range(repeats if cold.seconds < 10 else 2)]
            m.cached_ms = statistics.median(g.seconds for g in cached) * 1000
        m.rss_mib = server.peak_mib() if server.alive() else None
        if isinstance(cold.status, int) and 400 <= cold.status < 500 and limit_4xx:
            m.target = "4xx (too large to serve) < 1 s"
            m.ok = cold.seconds < 1 and (m.rss_mib or 0) < 500
        elif cold.status == 200:
            m.ok = (cold.seconds < 1 and (m.cached_ms or 1e9) < 10 and cold.size <= 10 * 1e6
                    and (m.rss_mib or 0) < 500)
        else:
            m.ok = False
        if target == "<50ms":  # discovery pages: any page, cold or not, under 50 ms
            m.target = target
            m.ok = m.status == "200" and (m.cold_ms or 1e9) < 50 and (m.cached_ms or 1e9) < 50
        return self.add(m), cold

    # rows

    def row_document(self) -> None:
        with self.server() as server, httpx.Client() as client:
            urls = Urls(server.base)
            for cid in ("transport-lists", "civil-registers", "portraits"):
                doc = self.middle_document(cid)
                self.document_measure(server, client, "document", f"{cid}/{doc} manifest", urls.manifest(cid, doc),
                                      cid, repeats=20)

    def row_root(self) -> None:
        with self.server() as server, httpx.Client() as client:
            urls = Urls(server.base)
            self.document_measure(server, client, "root", "top collection", urls.top(), None, repeats=20)
            self.bump(None)
            server.reset_peak()
            cold = fetch(client, server.base + "/", self.timeout)
            cached = statistics.median(fetch(client, server.base + "/", self.timeout).seconds for _ in range(20))
            self.add(Measure("root", "/ (home page)", cold.seconds * 1000, cached * 1000, cold.size,
                             server.peak_mib(), str(cold.status), "cold<1s cached<10ms",
                             cold.status == 200 and cold.seconds < 1 and cached < 0.01))

    def collection_tree(self, server: Server, client: httpx.Client, row: str, cid: str) -> None:
        """The collection; when it nests sub-collections, the first, a middle and the last of them too."""
        m, got = self.document_measure(server, client, row, f"{cid} collection", Urls(server.base).collection(cid),
                                       cid)
        doc = got.json() if got.status == 200 and got.body else None
        subs = [i for i in (doc or {}).get("items", []) if i.get("type") == "Collection"]
        if subs:
            m.note = f"{len(subs)} sub-collections"
            for name, item in (("first", subs[0]), ("middle", subs[len(subs) // 2]), ("last", subs[-1])):
                self.document_measure(server, client, row, f"{cid} collection, {name} sub-collection", item["id"],
                                      cid)

    def row_collection(self) -> None:
        for cid in ("portraits", "civil-registers"):
            with self.server() as server, httpx.Client() as client:
                self.collection_tree(server, client, "collection", cid)

    def row_collection_concurrent(self) -> None:
        cid = "transport-lists"
        with self.server() as server:
            url = Urls(server.base).collection(cid)
            self.bump(cid)
            server.reset_peak()

            async def one(client: httpx.AsyncClient) -> tuple[float, int | str, int]:
                t0 = time.perf_counter()
                try:
                    r = await client.get(url, timeout=self.timeout)
                    return time.perf_counter() - t0, r.status_code, len(r.content)
                except httpx.TimeoutException:
                    return time.perf_counter() - t0, "TIMEOUT", 0

            async def three() -> list[tuple[float, int | str, int]]:
                async with httpx.AsyncClient() as client:
                    return list(await asyncio.gather(*(one(client) for _ in range(3))))

            got = asyncio.run(three())
            worst = max(g[0] for g in got)
            statuses = ",".join(sorted({str(g[1]) for g in got}))
            rss = server.peak_mib() if server.alive() else None
            m = Measure("collection-concurrent", f"3 concurrent cold {cid} collection", worst * 1000, None,
                        max(g[2] for g in got), rss, "RSS-CAP" if server.capped else statuses,
                        "each cold<1s rss<500MiB", note=" / ".join(f"{g[0]:.2f} s" for g in got))
            m.ok = all(g[1] == 200 for g in got) and worst < 1 and (rss or 1e9) < 500
            self.add(m)

    def row_collection_manifest(self) -> None:
        cid = "transport-lists"
        with self.server() as server, httpx.Client() as client:
            self.document_measure(server, client, "collection-manifest", f"{cid} whole-collection manifest",
                                  Urls(server.base).collection_manifest(cid), cid, repeats=3, limit_4xx=True)

    def row_during_build(self) -> None:
        """A cheap request in a loop while a big collection builds cold: its p99."""
        cid = "portraits"
        with self.server() as server, httpx.Client() as client:
            urls = Urls(server.base)
            doc = self.middle_document("transport-lists")
            cheap = urls.manifest("transport-lists", doc)
            fetch(client, cheap, self.timeout)  # cached from now on
            alone = sorted(fetch(client, cheap, self.timeout).seconds for _ in range(50))
            self.bump(cid)
            server.reset_peak()
            build: dict[str, Got] = {}
            worker = threading.Thread(target=lambda: build.setdefault(
                "got", fetch(httpx.Client(), urls.collection(cid), self.timeout)))
            worker.start()
            during: list[float] = []
            while worker.is_alive():
                during.append(fetch(client, cheap, self.timeout).seconds)
            worker.join()
            during.sort()
            p99 = during[min(len(during) - 1, int(len(during) * 0.99))] if during else None
            got = build.get("got")
            m = Measure("during-build", f"cached document manifest while {cid} collection builds",
                        None, p99 * 1000 if p99 else None, None, server.peak_mib() if server.alive() else None,
                        "RSS-CAP" if server.capped else str(got.status if got else "?"), "p99<50ms",
                        p99 is not None and p99 < 0.05,
                        f"{len(during)} requests, p50 {fmt_ms(statistics.median(during) * 1000) if during else '-'}; "
                        f"alone p99 {fmt_ms(alone[int(len(alone) * 0.99) - 1] * 1000)}; "
                        f"build {got.seconds:.1f} s" if got else "")
            self.add(m)

    def row_discovery(self) -> None:
        with self.server() as server, httpx.Client() as client:
            stream_url = server.base + "/iiif/discovery/activity/all-changes"
            m, got = self.document_measure(server, client, "discovery", "all-changes", stream_url, None, repeats=10,
                                           target="<50ms")
            stream = got.json() or {}
            first, last = stream.get("first", {}).get("id"), stream.get("last", {}).get("id")
            middle = None
            if last and "/page/" in last:
                head, _, n = last.rpartition("/page/")
                if n.isdigit():
                    middle = f"{head}/page/{int(n) // 2}"
            for name, url in (("first", first), ("middle", middle), ("last", last)):
                if not url:
                    self.add(Measure("discovery", f"{name} page", status="no URL", ok=False))
                    continue
                self.document_measure(server, client, "discovery", f"{name} page ({url.rsplit('/', 1)[-1]})",
                                      url, None, repeats=10, target="<50ms")
            self.walk_discovery(server, client, first)

    def walk_discovery(self, server: Server, client: httpx.Client, first: str | None) -> None:
        """Every page from the first by `next`, each fetched once (as a harvester's first walk does): the
        median, p99 and max of all, and how many took 50 ms or more."""
        times, url, failed = [], first, None
        while url:
            got = fetch(client, url, self.timeout)
            if got.status != 200:
                failed = f"{got.status} at {url.rsplit('/', 1)[-1]}"
                break
            times.append(got.seconds)
            url = ((got.json() or {}).get("next") or {}).get("id")
        times.sort()
        m = Measure("discovery", f"walk of all {len(times)} pages", status=failed or "200", target="every <50ms")
        if times:
            p99 = times[max(0, int(len(times) * 0.99) - 1)]
            m.cold_ms = statistics.median(times) * 1000
            m.note = (f"p99 {fmt_ms(p99 * 1000)}, max {fmt_ms(times[-1] * 1000)}, "
                      f"{sum(t >= 0.05 for t in times)} of {len(times)} >= 50 ms")
        m.rss_mib = server.peak_mib() if server.alive() else None
        m.ok = failed is None and bool(times) and times[-1] < 0.05
        self.add(m)

    # CLI rows

    def cli(self, *argv: str) -> tuple[int | str, float, float]:
        """Run `iiif-server ARGV`; exit status (or TIMEOUT), seconds, peak RSS in MiB of its largest process."""
        cmd = [sys.executable, "-m", "iiif_server.cli", *argv, "--database", self.url, "--images", str(self.images),
               "--data-dir", str(self.data_dir)]
        t0 = time.perf_counter()
        log = self.workdir / "cli-stderr.log"
        with open(log, "wb") as err_file:
            proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=err_file,
                                    start_new_session=True)
        peak = 0  # VmHWM per process, polled (wait4's ru_maxrss starts from this script's own size at fork)
        while proc.poll() is None:
            peak = max([peak, *(proc_status(pid, "VmHWM") for pid in [proc.pid, *descendants(proc.pid)])])
            if time.perf_counter() - t0 > self.timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return "TIMEOUT", time.perf_counter() - t0, peak / MIB
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        err = log.read_text(errors="replace")
        if proc.returncode != 0:
            print(f"    {' '.join(argv[:2])}: exit {proc.returncode}: {err.strip().splitlines()[-1:]}", flush=True)
        return proc.returncode, seconds, peak / MIB

    def activity_mark(self) -> tuple[int, int]:
        top = self.sql("SELECT coalesce(max(id), 0) FROM activities")[0][0]
        public = self.sql("SELECT value FROM catalogue_state WHERE key = 'public_activities'")
        return int(top), int(public[0][0]) if public else 0

    def undo_activities(self, mark: tuple[int, int]) -> None:
        self.sql("DELETE FROM activities WHERE id > :n", n=mark[0])
        self.sql("UPDATE catalogue_state SET value = :v WHERE key = 'public_activities'", v=mark[1])

    def row_set_tier(self) -> None:
        cid = TIER_COLLECTION
        mark = self.activity_mark()
        n = self.sql("SELECT document_count FROM collections WHERE id = :c", c=cid)[0][0]
        try:
            for tier in ("reading-room", "public"):
                status, seconds, rss = self.cli("set-tier", cid, tier)
                self.add(Measure("set-tier", f"set-tier {cid} {tier} ({n} documents)", seconds * 1000, None, None,
                                 rss, str(status), "<10s <300MiB", status == 0 and seconds < 10 and rss < 300))
        finally:
            self.sql("UPDATE collections SET tier = 'public' WHERE id = :c", c=cid)
            self.undo_activities(mark)

    def ingest_source(self) -> Path:
        import pyvips

        src = self.workdir / "ingest-src"
        doc = src / INGEST_IDENT
        if not doc.exists():
            doc.mkdir(parents=True)
            for n in (1, 2):
                pyvips.Image.xyz(600, 800).extract_band(0).cast("uchar").bandjoin([128, 64]).copy(
                    interpretation="srgb").jpegsave(str(doc / f"{n}.jpg"))
        return src

    def undo_ingest(self, cid: str, mark: tuple[int, int], created: bool) -> None:
        rows = self.sql("SELECT pk FROM documents WHERE collection_id = :c AND ident = :d", c=cid, d=INGEST_IDENT)
        for (pk,) in rows:
            images = self.sql("SELECT count(*) FROM images WHERE document_pk = :p", p=pk)[0][0]
            self.sql("DELETE FROM images WHERE document_pk = :p", p=pk)
            self.sql("DELETE FROM documents WHERE pk = :p", p=pk)
            self.sql("UPDATE collections SET document_count = document_count - 1, image_count = image_count - :i "
                     "WHERE id = :c", i=images, c=cid)
        if created:
            self.sql("DELETE FROM collections WHERE id = :c", c=cid)
        self.undo_activities(mark)
        folder = self.images / cid
        if folder.exists():
            import shutil

            shutil.rmtree(folder)

    def row_ingest(self) -> None:
        src = self.ingest_source()
        figures: dict[str, float] = {}
        for cid in (EMPTY_COLLECTION, "portraits", "transport-lists"):
            created = not self.sql("SELECT id FROM collections WHERE id = :c", c=cid)
            mark = self.activity_mark()
            try:
                status, seconds, rss = self.cli("ingest", str(src), "--collection", cid, "--processes", "1")
            finally:
                self.undo_ingest(cid, mark, created)
            figures[cid] = seconds
            m = Measure("ingest", f"ingest 2 pages into {cid}", seconds * 1000, None, None, rss, str(status))
            if cid == EMPTY_COLLECTION:
                m.target, m.note = "baseline", ""
            else:
                over = seconds - figures[EMPTY_COLLECTION]
                m.target, m.note = "overhead<3s <300MiB", f"overhead {over:.1f} s"
                m.ok = status == 0 and over < 3 and rss < 300
            self.add(m)

    def row_collections(self) -> None:
        status, seconds, rss = self.cli("collections")
        self.add(Measure("collections", "iiif-server collections", seconds * 1000, None, None, rss, str(status),
                         "<1s", status == 0 and seconds < 1))

    def row_tile(self) -> None:
        import pyvips

        from iiif_server import config
        from iiif_server.web.app import create_app

        cid = "portraits"
        doc = self.middle_document(cid)
        page = self.sql("SELECT i.ident FROM images i JOIN documents d ON i.document_pk = d.pk "
                        "WHERE d.collection_id = :c AND d.ident = :d ORDER BY i.position", c=cid, d=doc)[0][0]
        path = self.images / cid / doc / f"{page}.tif"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pyvips.Image.xyz(1024, 1536).extract_band(0).cast("uchar").tiffsave(
                str(path), tile=True, tile_width=256, tile_height=256, pyramid=True, compression="jpeg", Q=85)
        settings = config.Settings(data_dir=self.data_dir, images=self.images, database=self.url, demo=False)
        app = create_app(settings, migrate=False)
        statements: list[str] = []
        from sqlalchemy import event

        event.listen(app.state.catalogue.engine, "before_cursor_execute",
                     lambda *a: statements.append(a[2]))

        async def count() -> dict[str, int]:
            transport = httpx.ASGITransport(app=app)
            out = {}
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                service = Urls("http://bench").image_service(cid, doc, page)
                for name, url in (("info.json", f"{service}/info.json"),
                                  ("tile", f"{service}/0,0,256,256/256,256/0/default.jpg")):
                    r = await client.get(url)
                    assert r.status_code == 200, (url, r.status_code)
                    statements.clear()
                    r = await client.get(url)
                    out[name] = len(statements)
            return out

        counts = asyncio.run(count())
        app.state.catalogue.engine.dispose()
        with self.server() as server, httpx.Client() as client:
            service = Urls(server.base).image_service(cid, doc, page)
            for name, url in (("info.json", f"{service}/info.json"),
                              ("tile", f"{service}/0,0,256,256/256,256/0/default.jpg")):
                server.reset_peak()
                cold = fetch(client, url, self.timeout)
                cached = statistics.median(fetch(client, url, self.timeout).seconds for _ in range(30))
                self.add(Measure("tile", f"{name} of a catalogued image (cached: SQL statements)", cold.seconds * 1000,
                                 cached * 1000, cold.size, server.peak_mib(), str(cold.status),
                                 "no SQL per request", counts[name] == 0,
                                 f"{counts[name]} SQL statement(s) per cached request"))

    # EXPLAIN (PostgreSQL)

    def explain(self) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of every SELECT the catalogue's read methods issue, without
        fetching their rows into Python (each statement runs as `... LIMIT 0` after its EXPLAIN)."""
        if self.backend != "postgresql":
            print("--explain: PostgreSQL only")
            return
        from sqlalchemy import event

        catalogue = Catalogue(self.url)
        plans: list[tuple[str, str]] = []
        current = {"call": ""}

        def hook(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> tuple[str, Any]:
            if not statement.lstrip().upper().startswith("SELECT"):
                return statement, params
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params)
            plans.append((current["call"], summarise(cursor.fetchone()[0][0])))
            return f"SELECT * FROM ({statement}) AS bench_explained LIMIT 0", params

        event.listen(catalogue.engine, "before_cursor_execute", hook, retval=True)
        tl_doc = self.middle_document("transport-lists")
        pdoc = self.middle_document("portraits")
        top = self.sql("SELECT max(id) FROM activities")[0][0] or 0
        middle = top // 2000 * 1000
        calls: list[tuple[str, Callable[[], Any]]] = [
            (f"pages('transport-lists', '{tl_doc}')", lambda: catalogue.pages("transport-lists", tl_doc)),
            ("last_position('portraits')", lambda: catalogue.last_position("portraits")),
            ("entries('portraits', part 100)", lambda: catalogue.entries("portraits", 99_000, 100_000)),
            ("entries('civil-registers', part 75)", lambda: catalogue.entries("civil-registers", 74_000, 75_000)),
            ("at_positions('portraits', every part's bounds)",
             lambda: catalogue.at_positions("portraits", [p for n in range(200) for p in (n * 1000, n * 1000 + 999)])),
            (f"document('portraits', '{pdoc}')", lambda: catalogue.document("portraits", pdoc)),
            ("existing_documents('portraits', 3 names)",
             lambda: catalogue.existing_documents("portraits", [pdoc, "nobody", "zzz"])),
            ("activity_bounds()", lambda: catalogue.activity_bounds()),
            ("activities(first page)", lambda: catalogue.activities(1, 1000, True)),
            ("activities(middle page)", lambda: catalogue.activities(middle + 1, middle + 1000)),
            ("activities(last page)", lambda: catalogue.activities(top // 1000 * 1000 + 1, top // 1000 * 1000 + 1000)),
            ("counts()", lambda: catalogue.counts()),
            ("collections()", lambda: catalogue.collections()),
        ]
        for name, call in calls:
            current["call"] = name
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - a method renamed or changed by now: say so, go on
                plans.append((name, f"not run: {type(exc).__name__}: {str(exc)[:100]}"))
        covered = {n.split("(")[0] for n, _ in calls}
        public = [n for n in dir(Catalogue) if not n.startswith("_") and callable(getattr(Catalogue, n))]
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the catalogue's queries")
        for name, summary in plans:
            print(f"  {name}: {summary}")
        print(f"  (methods not covered here: {', '.join(sorted(set(public) - covered))})")
        catalogue.engine.dispose()


def summarise(plan: dict[str, Any]) -> str:
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        label = node["Node Type"]
        if node.get("Index Name"):
            label += f" {node['Index Name']}"
        elif node.get("Relation Name"):
            label += f" {node['Relation Name']}"
        nodes.append(f"{label} (rows {node.get('Actual Rows')})")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    buffers = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
    return f"{plan['Execution Time']:.1f} ms, {buffers} buffers: " + " > ".join(nodes)


# -- output ---------------------------------------------------------------------------------------------


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def fmt_size(size: int | None) -> str:
    if not size:
        return "-"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def fmt_rss(mib: float | None) -> str:
    return "-" if mib is None else f"{mib:.0f} MiB"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else "PASS" if ok else "FAIL"


def print_table(results: list[Measure], backend: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("row", "backend", "what", "cold", "cached", "size", "peak RSS", "status", "target", "", "note",
                  title="Catalogue benchmark")
    for m in results:
        table.add_row(m.row, backend, m.what, fmt_ms(m.cold_ms), fmt_ms(m.cached_ms), fmt_size(m.size),
                      fmt_rss(m.rss_mib), m.status, m.target,
                      {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: ""}[m.ok], m.note)
    Console(width=220).print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database", default=os.environ.get("IIIF_BENCH_DATABASE"),
                        help="PostgreSQL URL (env IIIF_BENCH_DATABASE); its tables are replaced")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size, e.g. 0.05")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / ".data")
    parser.add_argument("--fresh", action="store_true", help="populate anew even when the kept catalogue matches")
    parser.add_argument("--only", nargs="+", choices=ROWS, default=None, metavar="ROW",
                        help=f"rows to run: {' '.join(ROWS)}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request or command")
    parser.add_argument("--max-rss-mib", type=float, default=3072.0,
                        help="kill the server when its worker passes this (protects the machine)")
    parser.add_argument("--populate-only", action="store_true")
    parser.add_argument("--explain", action="store_true", help="PostgreSQL plans of the catalogue's queries")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.backend == "sqlite":
        tag = f"sqlite-{args.scale:g}"
        url = f"sqlite:///{(args.workdir / f'catalogue-{tag}.db').resolve()}"
    else:
        if not args.database:
            parser.error("--backend postgresql needs --database URL or IIIF_BENCH_DATABASE")
        url = args.database
        tag = "postgresql-" + url.rsplit("/", 1)[-1].split("?")[0]
    meta = populate(url, args.workdir / f"catalogue-{tag}.json", args.scale, args.fresh)
    if args.populate_only:
        return 0
    bench = Bench(args, url, args.workdir, tag)
    rows = args.only or list(ROWS)
    print(f"{'row':<24} {'what':<44} {'cold':>9} {'cached':>9} {'size':>9} {'RSS':>8} status   verdict")
    for row in rows:
        t0 = time.perf_counter()
        try:
            getattr(bench, "row_" + row.replace("-", "_"))()
        except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
            bench.add(Measure(row, "(row failed)", status="ERROR", ok=False, note=f"{type(exc).__name__}: {exc}"[:150]))
        print(f"  ({row}: {time.perf_counter() - t0:.0f} s)", flush=True)
    if args.explain:
        bench.explain()
    print_table(bench.results, bench.backend)
    if args.json:
        args.json.write_text(json.dumps({"backend": bench.backend, "population": meta,
                                         "results": [dataclasses.asdict(m) for m in bench.results]}, indent=1))
    bench.catalogue.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
