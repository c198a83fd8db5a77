"""Ingest spread over several processes: throughput with 1, 2 and 4 `iiif-server ingest --join` processes on one
PostgreSQL catalogue, and CPU per page (issue 24).

Usage: python bench/ingest_scale.py WORKDIR DATABASE_URL [--documents 8] [--pages 4] [--format jpg|tif|jp2]
       [--rounds 2] [--processes 1,2,4]

Synthetic 12 MP scans (bench/access_quality.py's pages; JPEG at quality 95 by default, to spare the disc;
`tif` for uncompressed masters, `jp2` for lossy JPEG 2000) are ingested as one collection by N processes
started at once, each with `--workers 1` and a data folder of its own, as N hosts would be: the first leads,
the others join and claim documents through the catalogue. Each run ingests into a new collection, so every
page is converted. Rounds alternate the process counts. Prints the medians of the wall time of the whole run
(from the start of the processes to the end of the last: their start, the scan, the access snapshot's delay
before the first copy appears, every commit), the pages per second, the speed-up over one process in the same
run, the CPU seconds a page (every process and worker counted), and the load average. On this 2-core machine
throughput can grow up to 2 processes; beyond the cores the processes only share them.

Results, with the command that produced them: docs/benchmarks.md, "Ingest on several processes".
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from access_quality import page  # noqa: E402

WIDTH, HEIGHT = 4000, 3000


def masters(src: Path, documents: int, pages: int, fmt: str) -> int:
    kinds = ("text", "mixed", "illustrated")
    for d in range(documents):
        folder = src / f"doc{d:03}"
        folder.mkdir(parents=True, exist_ok=True)
        for p in range(pages):
            path = folder / f"p{p + 1}.{fmt}"
            if path.exists():
                continue
            img, _ = page(kinds[(d + p) % 3], WIDTH, HEIGHT, d * 100 + p)
            if fmt == "jp2":
                from PIL import Image as PILImage

                pixels = PILImage.frombytes("RGB", (img.width, img.height), img.write_to_memory())
                pixels.save(path, irreversible=True, num_resolutions=6, quality_mode="rates", quality_layers=[10])
            elif fmt == "jpg":
                img.jpegsave(str(path), Q=95)
            else:
                img.write_to_file(str(path))
    return documents * pages


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(work: Path, src: Path, database: str, processes: int, tag: str) -> tuple[float, float, list[int]]:
    """One shared run; (wall seconds, CPU seconds of every process, pages each converted)."""
    collection = f"scale-{tag}"
    cmd = [sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", collection, "--join",
           "--workers", "1", "--database", database, "--images", str(work / "images")]
    cpu, start = children_cpu(), time.perf_counter()
    procs = [subprocess.Popen([*cmd, "--data-dir", str(work / f"host-{tag}-{n}")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for n in range(processes)]
    lines = []
    for proc in procs:
        _, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"an ingest process failed ({proc.returncode}):\n{err}")
        lines.append(err.strip().splitlines()[-1])
    took, used = time.perf_counter() - start, children_cpu() - cpu
    own = []
    for line in lines:  # "N converted (M by the processes that joined), ..." for the leader
        converted = int(line.split(" converted")[0])
        others = int(line.split("(")[1].split(" by")[0]) if "by the processes that joined" in line else 0
        own.append(converted - others)
    return took, used, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("database")
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--format", default="jpg", choices=("jpg", "tif", "jp2"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    src = args.work / f"src-{args.format}"
    pages = masters(src, args.documents, args.pages, args.format)
    print(f"{pages} masters {WIDTH}x{HEIGHT} as {args.format} in {args.documents} documents; each process "
          f"--workers 1; {os.cpu_count()} cores")
    results: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    stamp = f"{int(time.time())}"
    for r in range(args.rounds):
        for n in counts:
            took, used, own = run(args.work, src, args.database, n, f"{stamp}-{r}-{n}p")
            assert sum(own) == pages, own
            results[n].append((took, used))
            print(f"  round {r + 1}, {n} process(es): {took:.1f} s, {used:.1f} s CPU, pages by process {own} "
                  f"(load {os.getloadavg()[0]:.2f})")
    base = statistics.median(t for t, _ in results[counts[0]])
    print(f"medians of {args.rounds} rounds (load average {os.getloadavg()[0]:.2f}):")
    for n in counts:
        took = statistics.median(t for t, _ in results[n])
        used = statistics.median(c for _, c in results[n])
        print(f"  {n} process(es): {took:6.1f} s  {pages / took:5.2f} pages/s  x{base / took:4.2f}  "
              f"{used / pages:5.2f} s CPU a page")


if __name__ == "__main__":
    main()
