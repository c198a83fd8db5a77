"""Tile benchmark: every tile of every scale factor, as OpenSeadragon asks for them.

Starts `iiif-server serve` (2 workers by default) over a generated 6000x8000
pyramidal TIFF, requests all tiles in shuffled order with a browser-like
number of parallel connections, and prints tiles/s, p50/p99 latency and the
server's peak resident memory (all its processes). Any non-200 answer is
counted and makes the script exit 1.

    python bench/tiles.py [--workers 2] [--concurrency 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from iiif_server import demo  # noqa: E402

IDENTIFIER = "scan"


def osd_tile_urls(info: dict, version: int = 3) -> list[str]:
    """The tile URLs OpenSeadragon's IIIF tile source builds for every level."""
    width, height = info["width"], info["height"]
    tile = info["tiles"][0]
    tw, th = tile["width"], tile.get("height", tile["width"])
    factors = sorted(tile["scaleFactors"])
    max_level = int(math.log2(factors[-1]))
    base = info["id"]
    urls = []
    for level in range(max_level + 1):
        scale = 0.5 ** (max_level - level)
        level_w, level_h = math.ceil(width * scale), math.ceil(height * scale)
        region_w, region_h = math.ceil(tw / scale), math.ceil(th / scale)
        if level_w < tw and level_h < th:
            size = "max" if level_w == width else f"{level_w},"
            urls.append(f"{base}/full/{size}/0/default.jpg")
            continue
        for y in range(math.ceil(level_h / th)):
            for x in range(math.ceil(level_w / tw)):
                rx, ry = x * region_w, y * region_h
                rw, rh = min(region_w, width - rx), min(region_h, height - ry)
                region = "full" if (rx, ry, rw, rh) == (0, 0, width, height) else f"{rx},{ry},{rw},{rh}"
                sw, sh = math.ceil(rw * scale), math.ceil(rh * scale)
                size = "max" if (sw, sh) == (width, height) else f"{sw},{sh}"
                urls.append(f"{base}/{region}/{size}/0/default.jpg")
    return urls


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


async def fetch_all(urls: list[str], concurrency: int) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(urls)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                url = queue.pop()
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, statuses, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8390)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        demo.scan().tiffsave(str(images / f"{IDENTIFIER}.tif"), tile=True, tile_width=256, tile_height=256,
                             pyramid=True, compression="jpeg", Q=85)
        cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--images", str(images), "--data-dir", tmp,
               "--no-demo", "--port", str(args.port), "--workers", str(args.workers), "--cache-mb", "0"]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss_kib(server.pid))
                time.sleep(0.05)

        try:
            base = f"http://127.0.0.1:{args.port}"
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            info = httpx.get(f"{base}/iiif/3/{IDENTIFIER}/info.json").json()
            urls = osd_tile_urls(info)
            threading.Thread(target=sample, daemon=True).start()
            print(f"{len(urls)} tiles of {info['width']}x{info['height']}, scale factors "
                  f"{info['tiles'][0]['scaleFactors']}, {args.workers} workers, {args.concurrency} connections")
            rates, p50s, p99s, errors = [], [], [], 0
            for n in range(args.rounds):
                random.Random(n).shuffle(urls)
                lat, statuses, elapsed = asyncio.run(fetch_all(urls, args.concurrency))
                lat.sort()
                errors += sum(c for s, c in statuses.items() if s != 200)
                rates.append(len(urls) / elapsed)
                p50s.append(lat[len(lat) // 2] * 1000)
                p99s.append(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000)
                print(f"round {n + 1}: {rates[-1]:.0f} tiles/s  p50 {p50s[-1]:.2f} ms  p99 {p99s[-1]:.2f} ms  "
                      f"statuses {dict(sorted(statuses.items()))}")
            print(f"median of {args.rounds}: {statistics.median(rates):.0f} tiles/s  "
                  f"p50 {statistics.median(p50s):.2f} ms  p99 {statistics.median(p99s):.2f} ms  "
                  f"peak RSS {peak[0] / 1024:.0f} MiB  errors {errors}")
            return 1 if errors else 0
        finally:
            stop.set()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
