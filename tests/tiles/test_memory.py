"""Memory of the decode path: a render keeps nothing once its bytes are out.

Regression for the growth found with bench/soak.py: level images cached in a
`Source` and shared by every request made a worker's resident memory grow by
~100 KB per decoded request, without bound. These run a few hundred renders
in-process, on threads as the server does, and read the process's own RSS
and open files from /proc (Linux).
"""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pyvips

from iiif_server.ingest import demo
from iiif_server.ingest.convert import write_access_copy
from iiif_server.tiles import memory
from iiif_server.tiles.files import FileSystemSource
from iiif_server.tiles.pipeline import Encoding, process
from iiif_server.tiles.request import Limits, parse, resolve

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")

LIMITS = Limits(12000, 12000, 50_000_000)
THREADS = 4
WARM_UP = 450
MEASURED = 600
# ~100 KB kept per render (the bug) grows this run by ~60 MiB; without it, a few MiB once freed pages are returned
MAX_GROWTH_MIB = 20


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FileSystemSource:
    """A 2400x3200 scan written as ingest writes access copies (pyramidal JPEG TIFF)."""
    folder = tmp_path_factory.mktemp("memory")
    master = folder / "master.tif"
    demo.scan(2400, 3200).tiffsave(str(master), tile=True, compression="jpeg", Q=90)
    (folder / "images").mkdir()
    write_access_copy(master, 0, folder / "images" / "scan.tif")
    return FileSystemSource(folder / "images")


@pytest.fixture(autouse=True)
def no_operation_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As the server runs: libvips' operation cache off (app.create_app). The heap trimmer is
    off too: what is measured is what the decode path keeps, not how often pages go back."""
    monkeypatch.setattr(memory.trimmer, "interval", float("inf"))
    before = pyvips.cache_get_max()
    pyvips.cache_set_max(0)
    yield
    pyvips.cache_set_max(before)


def rss_mib() -> float:
    """Resident memory after handing freed heap pages back: what is alive, not the arenas'
    high-water marks, which wander by tens of MiB with how threads were scheduled."""
    gc.collect()
    memory.trimmer.trim_now()
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def open_files(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count


def random_region(store: FileSystemSource, rng: random.Random) -> int:
    """One decoded render: a region of 300-2000 px scaled to 200-600 px wide, as a viewer's zoom."""
    source = store.open("scan")
    w, h = rng.randint(300, 2000), rng.randint(300, 2000)
    x, y = rng.randint(0, source.width - w), rng.randint(0, source.height - h)
    size = min(w, rng.randint(200, 600))
    plan = resolve(parse(3, f"{x},{y},{w},{h}", f"{size},", "0", "default.jpg"), source.width, source.height, LIMITS)
    body = process(source, plan, Encoding())
    assert body.startswith(b"\xff\xd8")
    return len(body)


def test_a_render_leaves_no_file_open(store: FileSystemSource) -> None:
    rng = random.Random(1)
    for _ in range(5):
        random_region(store, rng)
    gc.collect()
    assert open_files(store.open("scan").path) == 0


def test_resident_memory_stays_bounded_over_decoded_renders(store: FileSystemSource) -> None:
    rng = random.Random(2)
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda _: random_region(store, rng), range(WARM_UP)))
        warm = rss_mib()
        list(pool.map(lambda _: random_region(store, rng), range(MEASURED)))
        end = rss_mib()
    assert end - warm <= MAX_GROWTH_MIB, f"RSS grew from {warm:.0f} to {end:.0f} MiB over {MEASURED} renders"


def test_the_trimmer_runs_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    trimmer = memory.Trimmer(interval=60)
    monkeypatch.setattr(trimmer, "_trim", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(trimmer, "_last", -1e9)  # long ago
    for _ in range(5):
        trimmer.after_render()
    assert calls == [0]


def test_the_trimmer_finds_malloc_trim_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert memory.Trimmer().available
