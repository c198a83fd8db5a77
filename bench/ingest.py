"""Ingest throughput for 12 MP scans: images/s per core, and the days an archive takes.

Usage: python bench/ingest.py WORKDIR [IMAGES] [FORMAT]   (defaults: 6 masters, tif; or jpg, jp2)

JP2 masters are written with Pillow and, with the default install, read through Pillow's OpenJPEG.

Synthetic scanned pages (bench/access_quality.py's) of 4000x3000 are written as masters:
uncompressed TIFF by default (what archives keep), or JPEG at quality 95. First one process
converts them one after another as an ingest worker does (libvips on one thread): that is the
rate per core. Then a whole ingest run (checksums, catalogue in SQLite, commits) with 2 workers
over the same masters. Days are given for the archive's 1.5 M documents of ~8 pages (12 M pages)
at the per-core rate, on 2 cores and on a 16-core host, assuming the rate scales with cores
(the conversion is CPU-bound as long as the disc delivers ~36 MB of TIFF master per page).

Results, with the command that produced them: docs/benchmarks.md, "Ingest throughput".
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pyvips

sys.path.insert(0, str(Path(__file__).parent))
from access_quality import page  # noqa: E402

from iiif_server.auth.snapshot import MAX_AGE  # noqa: E402
from iiif_server.db.catalogue import Catalogue  # noqa: E402
from iiif_server.ingest.convert import ACCESS_QUALITY, write_access_copy  # noqa: E402
from iiif_server.ingest.run import Ingest  # noqa: E402

PAGES = 12_000_000  # 1.5 M documents of ~8 pages
WIDTH, HEIGHT = 4000, 3000


def main() -> None:
    work = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    fmt = sys.argv[3] if len(sys.argv) > 3 else "tif"
    src = work / "src" / "document"
    src.mkdir(parents=True, exist_ok=True)
    kinds = ("text", "mixed", "illustrated")
    masters = []
    for n in range(count):
        path = src / f"p{n + 1}.{fmt}"
        if not path.exists():
            img, _ = page(kinds[n % 3], WIDTH, HEIGHT, n)
            if fmt == "jpg":
                img.jpegsave(str(path), Q=95)
            elif fmt == "jp2":  # lossy, 6 resolution levels, as archives' JP2 masters often are
                from PIL import Image as PILImage

                pixels = PILImage.frombytes("RGB", (img.width, img.height), img.write_to_memory())
                pixels.save(path, irreversible=True, num_resolutions=6, quality_mode="rates", quality_layers=[10])
            else:
                img.write_to_file(str(path))
        masters.append(path)
    mp = WIDTH * HEIGHT / 1e6
    size = sum(p.stat().st_size for p in masters) / count
    print(f"libvips {pyvips.version(0)}.{pyvips.version(1)}, {count} masters {WIDTH}x{HEIGHT} ({mp:.0f} MP) as "
          f"{fmt}, {size / 1e6:.1f} MB each; access copies at Q {ACCESS_QUALITY}, 4:2:0")

    pyvips.concurrency_set(1)  # as an ingest worker
    pyvips.cache_set_max(0)
    out = work / "copies"
    out.mkdir(exist_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    copy_bytes = 0
    for n, master in enumerate(masters):
        copy = out / f"{n}.tif"
        write_access_copy(master, 0, copy)
        copy_bytes += copy.stat().st_size
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    per_core = count / max(took, cpu)  # CPU time too: on a busy machine the wall clock counts others' work
    print(f"one process, one thread: {count} copies in {took:.1f} s ({cpu:.1f} s CPU) = {per_core:.2f} images/s "
          f"per core ({max(took, cpu) / count:.2f} s per page); copies {copy_bytes / count / 1e6:.2f} MB each, "
          f"{copy_bytes / count / mp / 1e6:.2f} MB/MP")

    catalogue = Catalogue(f"sqlite:///{work / 'catalogue.db'}")
    catalogue.upgrade()
    start, cpu_before = time.perf_counter(), cpu_seconds()
    report = Ingest(catalogue, work / "images", f"bench{int(time.time())}", workers=2).run(work / "src")
    took_run, cpu_run = time.perf_counter() - start, cpu_seconds() - cpu_before
    print(f"whole ingest run, 2 workers: {report.converted} pages in {took_run:.1f} s = "
          f"{report.converted / took_run:.2f} images/s (includes the {MAX_AGE:.0f} s the access snapshot "
          f"needs before the first copy may appear and the workers' start); {cpu_run:.1f} s CPU in all processes "
          f"= {report.converted / cpu_run:.2f} images per CPU-second (checksums, conversion, catalogue)")

    run_rate = report.converted / cpu_run
    for label, rate in (("wall clock, one worker", per_core), ("CPU time, whole run", run_rate)):
        for cores in (2, 16):
            days = PAGES / (rate * cores) / 86400
            print(f"{label:>22}: {PAGES / 1e6:.0f} M pages on {cores:>2} cores: {days:,.1f} days "
                  f"({rate * cores * 3600:,.0f} pages/hour)")
    print(f"access copies of {PAGES / 1e6:.0f} M such pages: {PAGES * copy_bytes / count / 1e12:.0f} TB")


def cpu_seconds() -> float:
    """User and system time of this process and of its finished children (the ingest workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
