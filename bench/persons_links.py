"""People with their portraits and list lines at the archive's size: `persons suggest`, transport pages, and
person pages with links, timed on loopback.

Populates a SQLite catalogue by bulk SQL in the shape ingest and text import write (bench/catalogue.py's
loader): a `portraits` collection of 200,000 one-page documents labelled with a person's name (some spelt
otherwise: without accents, sz/sch, w/v, a dropped letter), and a `transport-lists` collection of 30,000
documents of 40 pages (1.2 M pages), each page with --lines name entries with boxes, as a CSV name index
import writes them (`csv:names`, kind `entry`; the word index that search reads is left out: neither
`persons suggest` nor these pages read it). A list line names one of the 26,000 people of its transport
(number, name, birth date, as typed lists do) with probability --listed, else someone not on the list.
Then `iiif-server persons import` loads the 26,000 people with a confirmed portrait for every other person
and a confirmed line for every third (the command's real path), and `iiif-server persons suggest` runs over
all portraits and list entries with a timeout, its resident memory sampled (peak, and at each quarter of the
run). Then `iiif-server serve` (one worker) answers transport pages (first and later pages, cold: first
request; cached: again), `/transports`, and person pages and JSON of people with links, cold and cached.

    python bench/persons_links.py [--scale 1.0] [--lines 20] [--listed 0.1] [--requests 300]
                                  [--suggest-timeout 1200] [--workers 2] [--workdir DIR] [--populate-only]
                                  [--reuse]

--scale shrinks the portraits and the list pages (never the 26,000 people). Results: docs/benchmarks.md,
"People". Targets (issue 21): a transport page < 200 ms; `persons suggest` over everything < 10 min, memory
bounded; person page and JSON < 100 ms cold, < 10 ms cached.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalogue import MIB, Server, Spec, child_env, collection_row, document_row, image_rows, load_sqlite, proc_status  # noqa: E402
from persons import GIVEN, PLACES, SURNAMES, p99, timed  # noqa: E402

from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.db.models import Collection, Document, Image, TextEntry  # noqa: E402

PEOPLE = 26_000
TRANSPORTS = 40
PORTRAITS = 200_000
LIST_DOCUMENTS = 30_000
LIST_PAGES = 40  # per document: 1.2 M pages at full size
ROOTS = ["Gold", "Zylber", "Rozen", "Wajn", "Frid", "Herc", "Lew", "Blum", "Grin", "Szwarc", "Rot", "Wajs",
         "Fiszer", "Kac", "Lipsz", "Mendel", "Ajzen", "Birn", "Edel", "Fajn", "Gut", "Hand", "Jakubo", "Kirsz",
         "Lande", "Majer", "Najman", "Perel", "Rajch", "Sztern", "Tauber", "Wolf", "Zalc", "Brand", "Cuker",
         "Dajcz", "Ber", "Honig", "Kopel", "Malin"]
ENDINGS = ["berg", "sztajn", "man", "feld", "baum", "blat", "ski", "owicz", "er", "son", "thal", "wasser",
           "", "ek", "ler"]
SURNAME_POOL = SURNAMES + [r + e for r in ROOTS for e in ENDINGS]  # ~600 surnames, ~40 people each
VARIANTS = (("sz", "sch"), ("w", "v"), ("j", "i"), ("c", "tz"), ("ł", "l"), ("y", "i"))


def folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def variant(name: str, rng: random.Random) -> str:
    """Another spelling of `name`, as a clerk might have typed it."""
    how = rng.randrange(3)
    if how == 0 and folded(name) != name:
        return folded(name)
    if how == 1:
        for a, b in VARIANTS:
            if a in name.lower():
                return re.sub(a, b, name, count=1, flags=re.IGNORECASE)
    if len(name) > 5:
        cut = rng.randrange(1, len(name) - 1)
        return name[:cut] + name[cut + 1:]
    return folded(name)


class People:
    """The synthetic deportees: person i (1-based) is number (i - 1) % 650 + 1 of transport (i - 1) // 650 + 1."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.count = count
        self.per_transport = -(-count // TRANSPORTS)
        self.rows = []
        for i in range(1, count + 1):
            year = rng.randint(1870, 1942)
            date = rng.choice([f"{year}", f"{year}-{rng.randint(1, 12):02d}",
                               f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"])
            self.rows.append((f"P{i:06d}", rng.choice(SURNAME_POOL), rng.choice(GIVEN), date,
                              rng.choice(PLACES), str((i - 1) // self.per_transport + 1),
                              str((i - 1) % self.per_transport + 1)))

    def of(self, transport: int, number: int) -> tuple[str, ...] | None:
        i = (transport - 1) * self.per_transport + number
        return self.rows[i - 1] if number <= self.per_transport and i <= self.count else None


def typed_date(date: str) -> str:
    parts = date.split("-")
    return ".".join(reversed(parts))


class Plan:
    """Where everything goes at one scale, shared by the row streams and the persons CSV."""

    def __init__(self, scale: float, lines: int, listed: float, people: People) -> None:
        self.people, self.lines, self.listed = people, lines, listed
        self.portraits = Spec("portraits", "Portraits", "public", [1] * max(1, round(PORTRAITS * scale)), True)
        self.lists = Spec("transport-lists", "Transport lists", "public",
                          [LIST_PAGES] * max(1, round(LIST_DOCUMENTS * scale)), False)
        self.line_h = 4300 // (lines + 1)  # pages are 4500 to 6000 pixels high

    def portrait_of(self, n: int) -> tuple[str, ...]:
        """The person portrait n (0-based) shows: every person in turn."""
        return self.people.rows[n % self.people.count]

    def transport_of_list(self, n: int) -> int:
        return n % TRANSPORTS + 1

    def line_box(self, line: int) -> tuple[int, int, int, int]:
        return 300, 100 + line * self.line_h, 3400, self.line_h - 10

    def first_copy(self, transport: int) -> int:
        """The list document whose lines every person of `transport` is confirmed on (the first copy)."""
        return transport - 1


def streams(plan: Plan, seed: int) -> dict[str, Callable[[], Iterator[dict[str, Any]]]]:
    specs = [plan.portraits, plan.lists]

    def collections() -> Iterator[dict[str, Any]]:
        for ci, spec in enumerate(specs):
            yield collection_row(ci, spec)

    def documents() -> Iterator[dict[str, Any]]:
        rng = random.Random(seed)
        pk = 0
        for n in range(len(plan.portraits.pages)):
            pk += 1
            row = document_row(0, plan.portraits, pk, n)
            pid, surname, given, date, place, transport, _ = plan.portrait_of(n)
            if rng.random() < 0.25:
                surname = variant(surname, rng)
            row["label"] = f"{surname}, {given}"
            row["metadata"] = [["Born", typed_date(date) if rng.random() < 0.6 else date[:4]],
                               ["Place of birth", place], ["Transport", transport]]
            yield row
        for n in range(len(plan.lists.pages)):
            pk += 1
            row = document_row(1, plan.lists, pk, n)
            transport = plan.transport_of_list(n)
            row["label"] = f"Transport {transport}, list {n // TRANSPORTS + 1}"
            row["metadata"] = [["Transport", str(transport)]]
            yield row

    def images() -> Iterator[dict[str, Any]]:
        return image_rows(specs)

    def entries() -> Iterator[dict[str, Any]]:
        rng = random.Random(seed + 1)
        eid = 0
        doc_pk = len(plan.portraits.pages)
        image_pk = doc_pk
        for n in range(len(plan.lists.pages)):
            doc_pk += 1
            transport = plan.transport_of_list(n)
            first = n == plan.first_copy(transport)
            for page in range(LIST_PAGES):
                image_pk += 1
                for k in range(plan.lines):
                    number = page * plan.lines + k + 1
                    person = plan.people.of(transport, number)
                    if person is not None and (first or rng.random() < plan.listed):
                        _, surname, given, date, *_ = person
                        if not first and rng.random() < 0.3:
                            surname = variant(surname, rng)
                    else:  # someone not on the list (or another's line): names that must not be suggested
                        surname, given = rng.choice(SURNAME_POOL), rng.choice(GIVEN)
                        date = f"{rng.randint(1870, 1942)}"
                    x, y, w, h = plan.line_box(k)
                    eid += 1
                    yield {"id": eid, "image_pk": image_pk, "document_pk": doc_pk, "source": "csv:names",
                           "kind": "entry", "text": f"{number} {surname} {given} {typed_date(date)}", "line": None,
                           "start": None, "pos": k, "x": x, "y": y, "w": w, "h": h, "unit": None, "block": None}

    return {Collection.__tablename__: collections, Document.__tablename__: documents,
            Image.__tablename__: images, TextEntry.__tablename__: entries}


def write_people_csv(path: Path, plan: Plan) -> tuple[list[str], list[str]]:
    """The persons CSV with confirmed links; returns the ids with a portrait and with a line."""
    with_portrait, with_line = [], []
    portraits = len(plan.portraits.pages)
    with path.open("w", encoding="utf-8") as f:
        f.write("id,surname,given names,birth date,birth place,nationality,transport,number,portrait,"
                "list page,line box\n")
        for i, (pid, surname, given, date, place, transport, number) in enumerate(plan.people.rows):
            portrait = list_page = box = ""
            if i % 2 == 0 and i < portraits:
                portrait = f"portraits/{plan.portraits.ident(i)}"
                with_portrait.append(pid)
            doc = plan.first_copy(int(transport))
            if i % 3 == 0 and doc < len(plan.lists.pages):
                page, k = divmod(int(number) - 1, plan.lines)
                if page < LIST_PAGES:
                    list_page = f"transport-lists/{plan.lists.ident(doc)}/p{page + 1}"
                    box = '"' + ",".join(map(str, plan.line_box(k))) + '"'
                    with_line.append(pid)
            f.write(f'{pid},"{surname}","{given}",{date},{place},polonaise,{transport},{number},{portrait},'
                    f"{list_page},{box}\n")
    return with_portrait, with_line


def cli(database: str, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", *args, "--database", database],
                          env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[:2]} failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def tree_rss(pid: int) -> int:
    """The resident memory of a process and its children (`persons suggest --workers`), in bytes."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        children = []
    return proc_status(pid, "VmRSS") + sum(proc_status(c, "VmRSS") for c in children)


def run_suggest(database: str, timeout: float, workers: int) -> dict[str, Any]:
    """`persons suggest` over both collections: wall time, CPU time, peak RSS (rusage of the command; its
    workers' peak is in the samples) and RSS samples of the command with its workers."""
    cmd = [sys.executable, "-m", "iiif_server.cli", "persons", "suggest", "--portraits", "portraits",
           "--lists", "transport-lists", "--workers", str(workers), "--database", database]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stderr.read() if proc.stderr else ""), daemon=True)
    reader.start()
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        samples.append((time.monotonic() - started, tree_rss(proc.pid)))
        if time.monotonic() - started > timeout:
            timed_out = True
            proc.kill()
        time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(5)
    took = time.monotonic() - started
    quarters = [max((r for t, r in samples if t <= took * q / 4), default=0) / MIB for q in (1, 2, 3, 4)]
    return {"seconds": took, "timed_out": timed_out, "code": proc.returncode, "peak_mib": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime,  # with its workers': the command waits for them
            "tree_peak_mib": max((r for _, r in samples), default=0) / MIB,
            "quarters_mib": quarters, "said": "".join(out).strip().splitlines()[-1:] if out else []}


def follow(client: httpx.Client, url: str) -> list[str]:
    """A transport's pages, following each page's next link: [first, later ...]."""
    pages, seen = [url], {url}
    while True:
        r = client.get(pages[-1])
        assert r.status_code == 200, (pages[-1], r.status_code)
        found = re.search(r'href="[^"]*(/transports/[^"?]+\?after=[^"]+)"', r.text)
        if not found or found[1] in seen or len(pages) > 50:
            return pages
        nxt = found[1].replace("&amp;", "&")
        seen.add(nxt)
        pages.append(nxt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the portraits and list pages")
    parser.add_argument("--lines", type=int, default=20, help="name entries per list page")
    parser.add_argument("--listed", type=float, default=0.1,
                        help="chance that a line of a list copy names the person of its transport and number")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--suggest-timeout", type=float, default=1200)
    parser.add_argument("--workers", type=int, default=2, help="persons suggest --workers")
    parser.add_argument("--populate-only", action="store_true", help="stop once the catalogue is populated")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the catalogue here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="use the catalogue a --populate-only run left in --workdir (same --scale and --lines)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db_path = work / "persons-bench.db"
        reuse = args.reuse and db_path.exists()
        for old in [] if reuse else work.glob("persons-bench.db*"):
            old.unlink()
        database = f"sqlite:///{db_path}"
        rng = random.Random(21)
        plan = Plan(args.scale, args.lines, args.listed, People(PEOPLE, rng))
        pages = sum(plan.lists.pages)
        print(f"scale {args.scale}: {PEOPLE} people, {len(plan.portraits.pages)} portraits, "
              f"{len(plan.lists.pages)} lists of {pages} pages, {pages * args.lines} list entries", flush=True)
        catalogue = Catalogue(database)
        catalogue.upgrade()
        t0 = time.perf_counter()
        if not reuse:
            load_sqlite(catalogue.engine, streams(plan, 21))
        populated = time.perf_counter() - t0
        print(f"populated in {populated:.0f} s, {db_path.stat().st_size / 1e9:.2f} GB", flush=True)
        if args.populate_only:
            return
        csv = work / "people.csv"
        with_portrait, with_line = write_people_csv(csv, plan)
        imported = cli(database, "persons", "import", str(csv))
        print(f"persons import with {len(with_portrait)} portraits and {len(with_line)} lines: {imported:.1f} s",
              flush=True)
        suggest = run_suggest(database, args.suggest_timeout, args.workers)
        print(f"persons suggest: {suggest}", flush=True)
        images = work / "images"
        images.mkdir(exist_ok=True)
        rows: list[tuple[str, list[float]]] = []
        with Server(database, images, work / "data", 4096 * MIB) as server, \
                httpx.Client(base_url=server.base, timeout=30) as client:
            walls = [follow(client, f"/transports/{t}") for t in range(1, TRANSPORTS + 1)]  # the pages' URLs
        # the pages are cached in the worker's memory: a fresh server answers each one cold first
        with Server(database, images, work / "data", 4096 * MIB) as server, \
                httpx.Client(base_url=server.base, timeout=30) as client:
            first = [w[0] for w in walls]
            later = [p for w in walls for p in w[1:]]
            rows.append(("transport page, first, cold", [timed(client, u) for u in first]))
            rows.append(("transport page, first, cached", [timed(client, u) for u in first]))
            rows.append(("transport page, later, cold", [timed(client, u) for u in later]))
            rows.append(("transport page, later, cached", [timed(client, u) for u in later]))
            rows.append(("/transports cold", [timed(client, "/transports")]))
            rows.append(("/transports cached", [timed(client, "/transports") for _ in range(50)]))
            linked = sorted(set(with_portrait) | set(with_line))
            ids = random.Random(3).sample(linked, min(args.requests, len(linked)))
            for suffix in ("", ".json"):
                cold = [timed(client, f"/persons/{i}{suffix}") for i in ids]
                cached = [timed(client, f"/persons/{i}{suffix}") for i in ids]
                rows.append((f"person page{suffix or ' HTML'} with links, cold", cold))
                rows.append((f"person page{suffix or ' HTML'} with links, cached", cached))
            peak = server.peak_mib()
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores); "
          f"scale {args.scale}; populated in {populated:.0f} s; persons import {imported:.1f} s")
    texts = len(plan.portraits.pages) + pages * args.lines
    print(f"persons suggest --workers {args.workers}: {suggest['seconds']:.0f} s"
          f"{' (TIMED OUT)' if suggest['timed_out'] else ''}, exit {suggest['code']}, {texts / suggest['seconds']:.0f} "
          f"texts/s, {suggest['seconds'] / args.scale / 60:.0f} min projected at scale 1.0; "
          f"CPU {suggest['cpu']:.0f} s ({1e6 * suggest['cpu'] / texts:.0f} us a text, the workers included); "
          f"peak RSS {suggest['peak_mib']:.0f} MiB, with its workers {suggest['tree_peak_mib']:.0f} MiB, by quarter "
          f"{' / '.join(f'{q:.0f}' for q in suggest['quarters_mib'])} MiB; {' '.join(suggest['said'])}")
    print(f"server worker peak RSS {peak:.0f} MiB")
    print(f"{'request':44} {'n':>5} {'median ms':>10} {'p99 ms':>8}")
    for name, values in rows:
        print(f"{name:44} {len(values):5d} {statistics.median(values):10.1f} {p99(values):8.1f}")


if __name__ == "__main__":
    main()
