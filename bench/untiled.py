"""Eight simultaneous first requests for full-resolution tiles of a large untiled JPEG.

Usage: python bench/untiled.py WORKDIR [WIDTH HEIGHT]   (default 10000x7500: 225 MB decoded, above
libvips' 100 MiB disc threshold)

Runs the app in-process (ASGI) and samples, every 20 ms, this process's resident memory and the
files it holds open that are deleted (libvips' temporary decodes). Prints the time until all eight
tiles are answered, their statuses, the peak RSS and the peak of hidden temporary bytes; then the
same for a second wave (the decode cached, or not).

Results, with the command that produced them: docs/benchmarks.md, "Untiled sources".
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pyvips

from iiif_server import config
from iiif_server.web.app import create_app


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hidden_bytes() -> int:
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                total += os.fstat(int(fd)).st_size
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_rss = self.peak_hidden = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak_rss = max(self.peak_rss, rss())
            self.peak_hidden = max(self.peak_hidden, hidden_bytes())
            time.sleep(0.02)


async def wave(client: httpx.AsyncClient, label: str) -> None:
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    urls = [f"/iiif/3/big/{x * 512},{y * 512},512,512/512,/0/default.jpg" for x in range(4) for y in range(2)]
    responses = await asyncio.gather(*(client.get(url) for url in urls))
    took = time.perf_counter() - start
    sampler.running = False
    sampler.join()
    statuses = sorted({r.status_code for r in responses})
    print(f"{label}: 8 tiles in {took:.2f} s, statuses {statuses}, peak RSS {sampler.peak_rss / 2**20:.0f} MiB, "
          f"peak hidden temporary files {sampler.peak_hidden / 2**20:.0f} MiB")


async def main() -> None:
    work = Path(sys.argv[1])
    width, height = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (10000, 7500)
    root = work / "images"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "big.jpg"
    if not path.exists() or pyvips.Image.new_from_file(str(path)).width != width:
        x = pyvips.Image.xyz(width, height)
        img = (x[0] % 256).bandjoin([x[1] % 256, (x[0] // 7) % 256]).cast("uchar").copy(interpretation="srgb")
        img.jpegsave(str(path), Q=85)
    settings = config.Settings(database=f"sqlite:///{work / 'c.db'}", data_dir=work / "data", images=root, demo=False)
    app = create_app(settings)
    print(f"{width}x{height} JPEG, {path.stat().st_size / 2**20:.0f} MiB on disc; RSS before {rss() / 2**20:.0f} MiB")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 timeout=300) as client:
        await wave(client, "first wave ")
        await wave(client, "second wave")


if __name__ == "__main__":
    asyncio.run(main())
