"""No-op re-run cost of ingest: N documents of 2 tiny masters, ingested once, then again.

Usage: python bench/ingest_noop.py WORKDIR [DOCUMENTS]. Prints the first run's and the re-run's
times; the re-run decides from size and mtime alone, so its time per master is what a re-run over
an archive costs (plus the file system's stat latency when its metadata is not cached).

Results, with the command that produced them: docs/benchmarks.md, "Ingest throughput".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyvips

from iiif_server.db.catalogue import Catalogue
from iiif_server.ingest.run import Ingest


def main() -> None:
    work, count = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    src = work / "src"
    img = (pyvips.Image.black(16, 16, bands=3) + [9, 9, 9]).cast("uchar")
    for d in range(count):
        folder = src / f"Dossier {d}"
        folder.mkdir(parents=True, exist_ok=True)
        for p in range(2):
            img.pngsave(str(folder / f"p{p}.png"))
    cat = Catalogue(f"sqlite:///{work / 'catalogue.db'}")
    cat.upgrade()
    start = time.perf_counter()
    first = Ingest(cat, work / "images", "c", workers=2).run(src)
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    again = Ingest(cat, work / "images", "c", workers=2).run(src)
    t2 = time.perf_counter() - start
    print(f"first run: {first.converted} pages converted in {t1:.1f} s")
    print(f"no-op re-run: {again.unchanged} unchanged, {again.converted} converted in {t2:.2f} s "
          f"({t2 / max(again.unchanged, 1) * 1e6:.0f} us per master)")


if __name__ == "__main__":
    main()
