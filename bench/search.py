"""Search benchmark: import a synthetic text index and time the queries researchers make.

Builds a fresh catalogue (SQLite in --workdir, or the PostgreSQL database --database) with
`--pages` pages of ALTO-like text (`--words` words each, in lines of ten, with boxes; a Zipf-like
vocabulary of common words with Eastern European names among them) in documents of 50 pages, and a
transport-list collection of `--names` names with boxes (a CSV index, 25 names a page). Text goes
in through the importer's own batched writer (`TextStore.write`, as `iiif-server text import` does
after parsing); ALTO parsing is timed apart on generated files. Then it times, in process through
the ASGI application (JSON encoding and access checks included), with p50 and p99:

- name: a name as written in a transport list (Content Search 1.0 in its document);
- variant: a spelling variant or typo of a name (Daitch–Mokotoff / trigram tiers);
- autocomplete: the first three or four letters of a name (AutoComplete 1.0);
- word: a common ALTO word in a 50-page document (many hits, first page of 100);
- phrase: two consecutive ALTO words;
- collection: a name across the transport-list collection (manifests with hits);
- catalogue: a word of documents' labels (/iiif/search?q=, JSON).

It prints import rates, index size (bytes per entry) and the latency table, with an extrapolation
of the index size to 12 M pages. Data lives under bench/.data (gitignored) or the given database.

    python bench/search.py [--backend sqlite|postgresql] [--database URL] [--pages 20000] [--words 100]
                           [--names 25000] [--queries 200] [--json FILE]

Results, with the command that produced them: docs/benchmarks.md, "Search".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from iiif_server import config  # noqa: E402
from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.db.labels import reindex_all  # noqa: E402
from iiif_server.db.models import Collection, Document, Image  # noqa: E402
from iiif_server.search.importer import parse_alto  # noqa: E402
from iiif_server.search.store import Entry, PageText, TextStore  # noqa: E402
from iiif_server.web.app import create_app  # noqa: E402

SEED = 20261129
PAGES_PER_DOCUMENT = 50
NAMES_PER_PAGE = 25
LINE = 10  # words per ALTO line
FULL_PAGES = 12_000_000
FIRST = ["Abram", "Chaja", "Szmul", "Rywka", "Icek", "Moszek", "Sura", "Ruchla", "Josek", "Estera", "Hersz", "Laja",
         "Mendel", "Gitla", "Lejb", "Perla", "Berek", "Fajga", "Chil", "Dwojra", "Jankiel", "Mala", "Srul", "Frajda"]
STEM = ["Gold", "Zylber", "Rozen", "Mendel", "Wajn", "Blum", "Fryd", "Grin", "Rub", "Kac", "Perl", "Lew", "Kowal",
        "Szwarc", "Wajs", "Rot", "Zalc", "Fiszer", "Gelb", "Lewen", "Birn", "Kirsz", "Tenen", "Apel", "Hof", "Sztern",
        "Rajch", "Fel", "Ajzen", "Lipsz", "Frenkel", "Zelig", "Sznej", "Holc", "Bernsz", "Kupfer", "Majer", "Segal"]
SUFFIX = ["sztajn", "berg", "baum", "owicz", "man", "feld", "ski", "er", "blat", "cwajg", "wicz", "son", "ik", ""]
# how a clerk of another country wrote the same sounds: the variants researchers type
SPELLINGS = [("sz", "sch"), ("cz", "tch"), ("w", "v"), ("aj", "ei"), ("c", "tz"), ("j", "y"), ("ow", "ov")]


def surname(rng: random.Random) -> str:
    return rng.choice(STEM) + rng.choice(SUFFIX)


def variant(name: str, rng: random.Random) -> str:
    """Another spelling of a name, or (when no rule applies) a typo of one letter."""
    rules = [(a, b) for a, b in SPELLINGS if a in name.lower()]
    if rules:
        a, b = rng.choice(rules)
        return name.lower().replace(a, b, 1)
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + rng.choice("aeiouklmnrst") + name[i + 1:]


class Words:
    """A Zipf-like vocabulary: 20,000 made-up common words, and names on one word in twenty."""

    def __init__(self, rng: random.Random) -> None:
        syllables = [c + v for c in "bcdfghjklmnprstwz" for v in "aeiouy"]
        self.common = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(25_000)})
        rng.shuffle(self.common)
        self.common = self.common[:20_000]
        self.weights = [1 / (n + 1) for n in range(len(self.common))]
        cum, total = [], 0.0
        for w in self.weights:
            total += w
            cum.append(total)
        self.cum = cum
        self.rng = rng

    def page(self, n: int) -> list[str]:
        words = self.rng.choices(self.common, cum_weights=self.cum, k=n)
        for i in range(0, n, 20):
            words[i] = surname(self.rng) if i % 40 else self.rng.choice(FIRST)
        return words


def alto_entries(words: list[str]) -> list[Entry]:
    entries = []
    for start in range(0, len(words), LINE):
        line_words = words[start:start + LINE]
        line, starts = "", []
        for w in line_words:
            line += " " if line else ""
            starts.append(len(line))
            line += w
        y = 100 + 40 * (start // LINE)
        x = 100
        for w, s in zip(line_words, starts, strict=True):
            entries.append(Entry(w, "word", (x, y, 14 * len(w), 32), line, s))
            x += 14 * len(w) + 14
    return entries


def alto_xml(words: list[str]) -> str:
    lines = []
    for start in range(0, len(words), LINE):
        strings = "<SP/>".join(f'<String CONTENT="{w}" HPOS="{100 + 120 * k}" VPOS="{100 + 4 * start}" WIDTH="110" '
                               f'HEIGHT="32"/>' for k, w in enumerate(words[start:start + LINE]))
        lines.append(f"<TextLine>{strings}</TextLine>")
    return ('<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout>'
            f'<Page WIDTH="2000" HEIGHT="3000"><PrintSpace><TextBlock>{"".join(lines)}</TextBlock></PrintSpace>'
            "</Page></Layout></alto>")


# -- the catalogue -----------------------------------------------------------------------------


def fresh_database(args: argparse.Namespace, workdir: Path) -> str:
    if args.backend == "sqlite":
        path = workdir / "search.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    from iiif_server.db.catalogue import make_engine

    engine = make_engine(args.database)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return str(args.database)


def add_pages(cat: Catalogue, collection: str, label: str, pages: int) -> list[tuple[int, list[int]]]:
    """Documents of PAGES_PER_DOCUMENT pages: [(document pk, [image pks])]."""
    with cat.session() as s:
        s.add(Collection(id=collection, label=label, tier="public", metadata_pairs=[]))
    documents = (pages + PAGES_PER_DOCUMENT - 1) // PAGES_PER_DOCUMENT
    with cat.session() as s:
        conn = s.connection()
        conn.execute(insert(Document), [
            {"collection_id": collection, "ident": f"d{n:06d}", "label": f"{label} {n + 1}", "position": n,
             "metadata_pairs": [["Convoy", str(n + 1)]], "sort_key": f"d{n:06d}"} for n in range(documents)])
        pks = [pk for (pk,) in conn.execute(text("SELECT pk FROM documents WHERE collection_id = :c ORDER BY pk"),
                                            {"c": collection})]
        rows = [{"document_pk": pk, "ident": f"p{p:03d}", "position": p, "label": str(p + 1), "width": 2000,
                 "height": 3000, "checksum": "0" * 64, "source_path": "-", "source_size": 1, "source_mtime": 0}
                for d, pk in enumerate(pks) for p in range(min(PAGES_PER_DOCUMENT, pages - d * PAGES_PER_DOCUMENT))]
        for i in range(0, len(rows), 10_000):
            conn.execute(insert(Image), rows[i:i + 10_000])
        reindex_all(conn)  # rows inserted by Core bypass the ORM hook that indexes labels
        images: dict[int, list[int]] = {}
        for pk, doc in conn.execute(text("SELECT i.pk, i.document_pk FROM images i JOIN documents d ON "
                                         "d.pk = i.document_pk WHERE d.collection_id = :c ORDER BY i.pk"),
                                    {"c": collection}):
            images.setdefault(doc, []).append(pk)
    return [(pk, images[pk]) for pk in pks]


def write(store: TextStore, batches: Iterator[list[PageText]]) -> tuple[int, float]:
    entries, t0 = 0, time.perf_counter()
    for batch in batches:
        with store.catalogue.session() as s:
            entries += store.write(s, batch)
    return entries, time.perf_counter() - t0


def index_bytes(cat: Catalogue, backend: str, workdir: Path) -> int:
    if backend == "sqlite":
        with cat.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return sum(p.stat().st_size for p in workdir.glob("search.db*"))
    with cat.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'text_%'")).scalar() or 0)


# -- queries -----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def time_queries(app: Any, kinds: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    results = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for kind, urls in kinds.items():
            await client.get(urls[0])  # warm the path once
            times, hits = [], 0
            for url in urls:
                t0 = time.perf_counter()
                r = await client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (url, r.status_code, r.text[:200])
                hits += int('"xywh=' in r.text or '"match"' in r.text or '"label"' in r.text)
            results[kind] = {"n": len(times), "p50_ms": statistics.median(times), "p99_ms": percentile(times, 99),
                             "answered": hits / len(times)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database", default=os.environ.get("IIIF_BENCH_DATABASE"),
                        help="PostgreSQL URL (emptied!) for --backend postgresql")
    parser.add_argument("--pages", type=int, default=20_000, help="pages of ALTO-like text")
    parser.add_argument("--words", type=int, default=100, help="words per page")
    parser.add_argument("--names", type=int, default=25_000, help="transport-list names (CSV entries with boxes)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / ".data")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.backend == "postgresql" and not args.database:
        parser.error("--backend postgresql needs --database URL or IIIF_BENCH_DATABASE")
    workdir = args.workdir / "search"
    workdir.mkdir(parents=True, exist_ok=True)
    url = fresh_database(args, workdir)
    cat = Catalogue(url)
    cat.upgrade()
    store = TextStore(cat)
    rng = random.Random(SEED)
    vocab = Words(rng)
    print(f"{args.backend}: {args.pages} pages x {args.words} words, {args.names} names", flush=True)

    # ALTO parsing, apart: the importer's cost before the database
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n in range(300):
            path = Path(tmp) / f"{n}.xml"
            path.write_text(alto_xml(vocab.page(args.words)), encoding="utf-8")
            files.append(path)
        t0 = time.perf_counter()
        parsed = sum(len(parse_alto(p, 2000, 3000)) for p in files)
        parse_rate = parsed / (time.perf_counter() - t0)

    documents = add_pages(cat, "ocr", "Register", args.pages)
    name_documents = add_pages(cat, "transports", "Transport", (args.names + NAMES_PER_PAGE - 1) // NAMES_PER_PAGE)
    page_words: dict[int, list[str]] = {}  # a few pages' words, for the queries

    def alto_batches() -> Iterator[list[PageText]]:
        batch: list[PageText] = []
        for doc_pk, images in documents:
            for image_pk in images:
                words = vocab.page(args.words)
                if len(page_words) < 2000 and rng.random() < 0.05:
                    page_words[doc_pk] = words
                batch.append(PageText("ocr", doc_pk, image_pk, "alto", alto_entries(words)))
                if len(batch) * args.words >= 5000:
                    yield batch
                    batch = []
        if batch:
            yield batch

    alto_entries_n, alto_s = write(store, alto_batches())
    print(f"  ALTO: {alto_entries_n} words in {alto_s:.1f} s", flush=True)
    names: list[tuple[int, str]] = []

    def name_batches() -> Iterator[list[PageText]]:
        batch: list[PageText] = []
        left = args.names
        for doc_pk, images in name_documents:
            for image_pk in images:
                entries = []
                for k in range(min(NAMES_PER_PAGE, left)):
                    name = f"{surname(rng)} {rng.choice(FIRST)}"
                    entries.append(Entry(name, "name", (200, 300 + 100 * k, 900, 60)))
                    if rng.random() < 0.1:
                        names.append((doc_pk, name))
                left -= len(entries)
                batch.append(PageText("transports", doc_pk, image_pk, "csv:names", entries))
                if len(batch) >= 200:
                    yield batch
                    batch = []
        if batch:
            yield batch

    name_entries_n, names_s = write(store, name_batches())
    print(f"  names: {name_entries_n} entries in {names_s:.1f} s", flush=True)
    if cat.engine.dialect.name == "postgresql":
        with cat.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    size = index_bytes(cat, args.backend, workdir)
    idents = {}
    with cat.engine.connect() as conn:
        for pk, cid, ident in conn.execute(text("SELECT pk, collection_id, ident FROM documents")):
            idents[pk] = (cid, ident)
    cat.engine.dispose()

    settings = config.Settings(data_dir=workdir, images=workdir / "images", database=url, demo=False)
    (workdir / "images").mkdir(exist_ok=True)
    app = create_app(settings)
    q = args.queries
    picks = [names[rng.randrange(len(names))] for _ in range(q)]
    word_docs = list(page_words.items())

    def doc_url(pk: int, what: str, query: str) -> str:
        cid, ident = idents[pk]
        return f"/iiif/search/1/{cid}/{ident}/{what}?{httpx.QueryParams({'q': query})}"

    kinds = {
        "name": [doc_url(pk, "search", name.split()[0]) for pk, name in picks],
        "variant": [doc_url(pk, "search", variant(name.split()[0], rng)) for pk, name in picks],
        "autocomplete": [doc_url(pk, "autocomplete", name[:rng.choice((3, 4))]) for pk, name in picks],
        "word": [doc_url(pk, "search", rng.choice(words[:30])) for pk, words in
                 (word_docs[rng.randrange(len(word_docs))] for _ in range(q))],
        "phrase": [doc_url(pk, "search", " ".join(words[i:i + 2])) for pk, words in
                   (word_docs[rng.randrange(len(word_docs))] for _ in range(q)) for i in [rng.randrange(0, 8)]],
        "collection": [f"/iiif/search/collections/transports?{httpx.QueryParams({'q': n.split()[0]})}"
                       for _, n in picks[: max(20, q // 4)]],
        "catalogue": [f"/iiif/search?{httpx.QueryParams({'q': f'register {rng.randrange(1, len(documents))}'})}"
                      f"&format=json" for _ in range(max(20, q // 4))],
    }
    latencies = asyncio.run(time_queries(app, kinds))
    app.state.catalogue.engine.dispose()

    entries = alto_entries_n + name_entries_n
    per_entry = size / entries
    report = {
        "backend": args.backend, "pages": args.pages, "words_per_page": args.words, "names": name_entries_n,
        "alto_parse_words_per_s": parse_rate, "alto_write_words_per_s": alto_entries_n / alto_s,
        "names_write_per_s": name_entries_n / names_s, "index_bytes": size, "bytes_per_entry": per_entry,
        "extrapolated_index_bytes_12M_pages": per_entry * FULL_PAGES * args.words, "queries": latencies,
    }
    print(f"\nimport: ALTO parse {parse_rate:,.0f} words/s; write {alto_entries_n / alto_s:,.0f} words/s "
          f"({alto_entries_n:,} in {alto_s:.0f} s); names {name_entries_n / names_s:,.0f} entries/s")
    print(f"index: {size / 2**20:,.0f} MiB for {entries:,} entries = {per_entry:.0f} B/entry; "
          f"12 M pages x {args.words} words ~ {report['extrapolated_index_bytes_12M_pages'] / 2**30:,.0f} GiB")
    print(f"\n{'query':<14}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'answered':>10}")
    for kind, r in latencies.items():
        print(f"{kind:<14}{r['n']:>6}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['answered']:>10.0%}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
