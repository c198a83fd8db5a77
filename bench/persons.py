"""People at the archive's count: `persons import`, person pages and person search, timed on loopback.

Writes a CSV of --people synthetic deportees (surnames drawn from Polish, Yiddish, German, French and Dutch
forms with their accents, partial birth dates, 40 transports), times `iiif-server persons import` of it
(and a re-run, which changes nothing), then starts `iiif-server serve` (one worker) on that catalogue and
times person pages (HTML and JSON-LD, cold: the first request for that person; cached: the same again) and
person searches (names typed without accents, prefixes, typing errors) with their medians and p99.
The people carry no portrait or list links here (no images are written): pages with links cost more.

    python bench/persons.py [--people 26000] [--requests 300]

Targets (issue 21): import of 26,000 rows < 30 s; person page and JSON < 100 ms cold, < 10 ms cached;
person search p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import start_server, stop_server  # noqa: E402

SURNAMES = ["Lévy", "Goldsztajn", "Szmulewicz", "Rozenberg", "Wajnberg", "Kohn", "Müller", "Grünbaum",
            "Dreyfus", "Lefèvre", "Van den Berg", "De Jong", "Zylberberg", "Frydman", "Łukasiewicz", "Kac",
            "Herszkowicz", "Sznajder", "Blum", "Weiß", "Löwenstein", "Cohen", "Hirsch", "Rosenthal"]
GIVEN = ["Abraham", "Chaja", "Szmul", "Ryfka", "Moszek", "Sura", "Hélène", "Jakob", "Estera", "Icek",
         "Mordka", "Ruchla", "Józef", "Frajda", "Salomon", "Gitla"]
PLACES = ["Warszawa", "Łódź", "Antwerpen", "Bruxelles", "Berlin", "Wien", "Kraków", "Paris", "Amsterdam"]
QUERIES = ["Levy", "Goldsztajn", "Goldstajn", "Szmulewic", "Rozenb", "Muller", "Grunbaum", "Lefevre",
           "Lukasiewicz", "Weiss", "Lowenstein", "Herszkowitz", "Zylber", "Kohn Chaja", "Levy Abraham"]


def write_people(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("id,surname,given names,birth date,birth place,nationality,transport,number\n")
        for i in range(1, count + 1):
            year = rng.randint(1870, 1942)
            date = rng.choice([f"{year}", f"{year}-{rng.randint(1, 12):02d}",
                               f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"])
            surname = rng.choice(SURNAMES) + ("" if rng.random() < 0.7 else rng.choice(["ski", "er", "man"]))
            f.write(f'P{i:06d},"{surname}","{rng.choice(GIVEN)}",{date},{rng.choice(PLACES)},polonaise,'
                    f"{(i - 1) // 650 + 1},{(i - 1) % 650 + 1}\n")


def cli(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "iiif_server.cli", *args], check=True, capture_output=True)
    return time.monotonic() - started


def timed(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    r = client.get(url)
    took = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, (url, r.status_code)
    return took


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.99 * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=26_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(21)
    with tempfile.TemporaryDirectory() as tmp:
        data, csv = Path(tmp) / "data", Path(tmp) / "people.csv"
        data.mkdir()
        write_people(csv, args.people, rng)
        cli("collections", "--data-dir", str(data))  # creates the catalogue, outside the timing
        first = cli("persons", "import", str(csv), "--data-dir", str(data))
        again = cli("persons", "import", str(csv), "--data-dir", str(data))
        proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(data), "--no-demo", "--workers", "1"])
        try:
            rows = []
            with httpx.Client(base_url=url, timeout=30) as client:
                ids = rng.sample(range(1, args.people + 1), min(args.requests, args.people))
                for suffix in ("", ".json"):
                    cold = [timed(client, f"/persons/P{i:06d}{suffix}") for i in ids]
                    cached = [timed(client, f"/persons/P{i:06d}{suffix}") for i in ids]
                    rows.append((f"person page{suffix or ' HTML'} cold", cold))
                    rows.append((f"person page{suffix or ' HTML'} cached", cached))
                searches = [timed(client, f"/persons?q={rng.choice(QUERIES)}") for _ in range(args.requests)]
                rows.append(("person search (as typed, folded, prefix, D-M, typos)", searches))
        finally:
            stop_server(proc)
    print(f"{args.people} people; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    print(f"persons import: {first:.1f} s (target < 30 s); the same file again: {again:.1f} s")
    print(f"{'request':56} {'median ms':>10} {'p99 ms':>8}")
    for name, values in rows:
        print(f"{name:56} {statistics.median(values):10.1f} {p99(values):8.1f}")


if __name__ == "__main__":
    main()
