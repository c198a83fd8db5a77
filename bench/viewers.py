"""Viewer benchmark: five workloads, cold and warm, side by side with IIPImage in one run.

Generates (or reuses, with `--images`) a 6000x8000 pyramidal JPEG TIFF and portrait scans
(1400-2400 x 1800-3000) written as ingest writes access copies, then for each mode starts
`iiif-server serve` and Debian's IIPImage (iipsrv behind lighttpd FastCGI, as many processes as
our workers) over the same folder and drives each workload with wrk, one server after the
other, the same URL paths (Image API 2 syntax, which IIPImage 1.1 speaks):

- tiles w,  : every tile of every scale factor as OpenSeadragon asks for it, `w,` sizes, shuffled;
- tiles w,h : the same tiles with `w,h` sizes (what IIIF 3 viewers send);
- regions   : 2,000 random regions of 300-3000 px of the big scan scaled to 200-1000 px wide;
- portraits : `full/!200,200` of every portrait (a thumbnail wall);
- thumbnails: every portrait at the sizes pages and viewers ask (`90,` for Universal Viewer, `!100,100` ...
  `!400,400` for landing pages and lists, `,150`), shuffled: none of them is stored but `!200,200`.

Modes: "cold" (response caches off: `--cache-mb 0`, IIPImage `MAX_IMAGE_CACHE_SIZE=0`) and
"warm" (256 MB on both). Each run is preceded by a warm-up of `--warmup` seconds. A bare Starlette
app on uvicorn returning a fixed 20 KB body from memory gives the ceiling of any Python handler
here. Prints a Markdown table: requests/s, p50, p99, the largest worker's peak RSS, and ratios.
Our server reads a copy of the images that carries the pages ingest adds, the stored thumbnail
(tiles/thumbnail.py) and the edge tiles (tiles/edges.py) (`--no-thumbnails`: the plain files);
IIPImage reads the plain files.
Needs `apt-get install wrk iipimage-server lighttpd` (installed when missing and running as root).

    python bench/viewers.py [--images DIR] [--no-thumbnails] [--seconds 8] [--warmup 2] [--modes cold,warm]

Results, with the command that produced them: docs/benchmarks.md, "Viewers, against IIPImage".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from soak import children, free_port, rss_mib, wait_ready, worker_pids  # noqa: E402
from tiles import LIGHTTPD_CONF, osd_tile_urls  # noqa: E402

from iiif_server.ingest import demo  # noqa: E402
from iiif_server.ingest.convert import SERVED_QUALITY, write_access_copy  # noqa: E402
from iiif_server.tiles.prepare import add_edges, add_thumbnail  # noqa: E402

BIG = "scan"
BIG_SIZE = (6000, 8000)
REGIONS = 2000
WORKLOADS = ("tiles w,", "tiles w,h", "regions", "portraits", "thumbnails")
# what pages and viewers ask for a thumbnail: Universal Viewer `90,`, landing pages and lists the rest
THUMBNAIL_SIZES = ("90,", "!100,100", "!150,150", "!200,200", "!240,240", "!300,300", "!400,400", ",150")
PACKAGES = {"wrk": "wrk", "lighttpd": "lighttpd", "/usr/lib/iipimage-server/iipsrv.fcgi": "iipimage-server"}

# one Lua state per wrk thread: each walks the shuffled list from its own offset
LUA = """
local paths = {paths}
local i = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  i = (id - 1) * math.floor(#paths / 2)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.0f %.0f\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

CEILING_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = bytes(range(256)) * 80
async def tile(request):
    return Response(BODY, media_type="image/jpeg")
app = Starlette(routes=[Route("/t", tile)])
"""


@dataclass
class Result:
    rate: float
    p50: float  # ms
    p99: float
    errors: int
    rss: int = 0  # MiB, the largest worker's peak during the run


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str  # URL prefix the relative paths are appended to
    workers: list[int] = field(default_factory=list)


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None and not Path(tool).exists()]
    if missing:
        if os.geteuid() != 0:
            raise SystemExit(f"missing: apt-get install {' '.join(missing)}")
        subprocess.run(["apt-get", "install", "-y", *missing], check=True)


def make_images(images: Path, portraits: int) -> list[str]:
    """The big scan and the portraits as access copies; returns the portraits' paths below the root."""
    masters = images / ".masters"
    masters.mkdir()
    master = masters / "scan.tif"
    demo.scan(*BIG_SIZE).tiffsave(str(master), tile=True, compression="jpeg", Q=90)
    write_access_copy(master, 0, images / f"{BIG}.tif", thumbnail_quality=None)
    (images / "portraits").mkdir()
    rng = random.Random(7)
    names = []
    for i in range(portraits):
        w = rng.randint(1400, 2400)
        h = rng.randint(max(1800, w + 100), 3000)
        jpg = masters / f"p{i:04d}.jpg"
        demo.scan(w, h, seed=i + 3).jpegsave(str(jpg), Q=90)
        write_access_copy(jpg, 0, images / "portraits" / f"p{i:04d}.tif", thumbnail_quality=None)
        names.append(f"portraits/p{i:04d}")
    shutil.rmtree(masters)
    return names


def with_thumbnails(images: Path) -> Path:
    """A copy of the image set whose files carry the pages ingest appends: the stored thumbnail
    (tiles/thumbnail.py, the portraits) and the edge tiles (tiles/edges.py, every file), the rest hard
    links; IIPImage keeps the plain files (it would list the pages as pyramid levels)."""
    out = images.with_name(images.name + "-thumbnails")
    done = out / ".thumbnails2-edges-complete"  # named after what the copy holds: an older copy is redone
    if done.exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(images, out, copy_function=os.link)
    for path in [out / f"{BIG}.tif", *sorted((out / "portraits").glob("*.tif"))]:
        tmp = path.with_name("." + path.name)
        shutil.copyfile(path, tmp)
        if path.parent.name == "portraits":
            add_thumbnail(tmp)
        add_edges(tmp, SERVED_QUALITY)
        os.replace(tmp, path)
    done.write_text("")
    return out


def workload_paths(info: dict, portraits: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(identifier, rest of the path) pairs per workload; the identifier is spelled per server."""
    rng = random.Random(11)
    tiles_w = [u.split(f"/{BIG}/", 1)[1] for u in osd_tile_urls(info, 2)]
    rng.shuffle(tiles_w)
    # the same tiles as IIIF 3 viewers name them (w,h), in the same order
    as_wh = {u.split(f"/{BIG}/", 1)[1].split("/", 1)[0]: u.split(f"/{BIG}/", 1)[1].replace("/max/", "/full/")
             for u in osd_tile_urls(info, 3)}
    tiles_wh = [as_wh[r.split("/", 1)[0]] for r in tiles_w]
    regions = []
    for _ in range(REGIONS):
        w, h = rng.randint(300, 3000), rng.randint(300, 3000)
        x, y = rng.randint(0, BIG_SIZE[0] - w), rng.randint(0, BIG_SIZE[1] - h)
        s = min(w, rng.randint(200, 1000))
        regions.append(f"{x},{y},{w},{h}/{s},/0/default.jpg")
    walls = [(p, "full/!200,200/0/default.jpg") for p in portraits]
    rng.shuffle(walls)
    thumbnails = [(p, f"full/{size}/0/default.jpg") for p in portraits for size in THUMBNAIL_SIZES]
    rng.shuffle(thumbnails)
    return {
        "tiles w,": [(BIG, r) for r in tiles_w],
        "tiles w,h": [(BIG, r) for r in tiles_wh],
        "regions": [(BIG, r) for r in regions],
        "portraits": walls,
        "thumbnails": thumbnails,
    }


def ours_path(identifier: str, rest: str) -> str:
    return f"/iiif/2/{identifier.replace('/', '%2F')}/{rest}"


def iip_path(identifier: str, rest: str) -> str:
    return f"/fcgi-bin/iipsrv.fcgi?IIIF={identifier}.tif/{rest}"


def run_wrk(tmp: Path, base: str, paths: list[str], seconds: float, args: argparse.Namespace,
            pids: list[int]) -> Result:
    script = tmp / "run.lua"
    script.write_text(LUA.format(paths="{" + ",".join(json.dumps(p) for p in paths) + "}"))
    peak = {p: 0 for p in pids}
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.2):
            for p in pids:
                peak[p] = max(peak[p], rss_mib(p))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        out = subprocess.run(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d",
                              f"{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script), base],
                             capture_output=True, text=True, check=False).stdout
    finally:
        stop.set()
        thread.join()
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if not found:
        raise RuntimeError("wrk printed no result:\n" + out)
    n, micros, status, sock, p50, p99 = (int(g) for g in found.groups())
    return Result(n / (micros / 1e6), p50 / 1000, p99 / 1000, status + sock, max(peak.values(), default=0))


def start_ours(tmp: Path, images: Path, port: int, args: argparse.Namespace, cache_mb: int) -> Server:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    data = tmp / f"data-{cache_mb}"
    data.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--images", str(images), "--data-dir", str(data),
           "--no-demo", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
           "--cache-mb", str(cache_mb)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc)
    return Server("iiif-server", proc, base, worker_pids(proc.pid))


def start_iip(tmp: Path, images: Path, port: int, args: argparse.Namespace, cache_mb: int) -> Server:
    root = tmp / f"lighttpd-{cache_mb}"
    root.mkdir(exist_ok=True)
    conf = LIGHTTPD_CONF.format(port=port, root=root, images=images, procs=args.workers).replace(
        '"JPEG_QUALITY" => "85"', f'"JPEG_QUALITY" => "85", "MAX_IMAGE_CACHE_SIZE" => "{cache_mb}"')
    (root / "lighttpd.conf").write_text(conf)
    proc = subprocess.Popen(["lighttpd", "-D", "-f", str(root / "lighttpd.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + iip_path(BIG, "info.json"), timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    return Server("IIPImage", proc, base, children(proc.pid))


def start_ceiling(tmp: Path, port: int, args: argparse.Namespace) -> Server:
    (tmp / "ceiling_app.py").write_text(CEILING_APP)
    cmd = [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/t", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    return Server("Starlette", proc, base, worker_pids(proc.pid))


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def median(runs: list[Result]) -> Result:
    """The run of median throughput, its peak RSS the highest of all runs, errors summed."""
    mid = sorted(runs, key=lambda r: r.rate)[len(runs) // 2]
    return Result(mid.rate, mid.p50, mid.p99, sum(r.errors for r in runs), max(r.rss for r in runs))


def measure(tmp: Path, server: Server, paths: list[str], args: argparse.Namespace, warm_up: bool = True) -> Result:
    if warm_up and args.warmup > 0:
        run_wrk(tmp, server.base, paths, args.warmup, args, server.workers)
    return run_wrk(tmp, server.base, paths, args.seconds, args, server.workers)


def cell(r: Result | None) -> str:
    if r is None:
        return "-"
    bad = f", {r.errors} errors" if r.errors else ""
    return f"{r.rate:,.0f}/s, p50 {r.p50:.1f}, p99 {r.p99:.1f} ms, {r.rss} MiB{bad}"


def ratio(a: Result | None, b: Result | None) -> str:
    return f"{a.rate / b.rate:.2f}" if a and b and b.rate else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=None, help="keep the generated images here and reuse them")
    parser.add_argument("--portraits", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per workload; the median counts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="cold,warm")
    parser.add_argument("--workloads", default="tiles-w,tiles-wh,regions,portraits,thumbnails")
    parser.add_argument("--no-peer", action="store_true", help="only this server (and the ceiling)")
    parser.add_argument("--no-thumbnails", dest="thumbnails", action="store_false",
                        help="serve the plain files, without the stored thumbnail and edge tiles ingest adds")
    args = parser.parse_args()
    names = {"tiles-w": "tiles w,", "tiles-wh": "tiles w,h", "regions": "regions", "portraits": "portraits",
             "thumbnails": "thumbnails"}
    chosen = [names[n] for n in args.workloads.split(",")]
    ensure_tools()

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="iiif-viewers-"))
    running: list[Server] = []
    try:
        images = args.images or tmp / "images"
        ready = images / ".complete"
        t0 = time.monotonic()
        if ready.exists():
            portraits = ready.read_text().split()
        else:
            images.mkdir(parents=True, exist_ok=True)
            portraits = make_images(images, args.portraits)
            ready.write_text("\n".join(portraits))
        ours_images = with_thumbnails(images) if args.thumbnails else images
        load = os.getloadavg()
        print(f"images ready in {time.monotonic() - t0:.0f} s; {args.workers} workers each, wrk -t{args.threads} "
              f"-c{args.connections}, {args.seconds:g} s per run after {args.warmup:g} s warm-up; "
              f"load average {load[0]:.1f}; stored thumbnails and edge tiles: {'yes' if args.thumbnails else 'no'}",
              flush=True)
        ceiling_srv = start_ceiling(tmp, free_port(), args)
        running.append(ceiling_srv)
        ceiling = measure(tmp, ceiling_srv, ["/t"], args)
        stop(ceiling_srv)
        print(f"ceiling (Starlette on uvicorn, fixed 20 KB): {cell(ceiling)}", flush=True)
        results: dict[tuple[str, str, str], Result] = {}
        for mode in args.modes.split(","):
            cache_mb = 0 if mode == "cold" else 256
            servers = [start_ours(tmp, ours_images, free_port(), args, cache_mb)]
            running.append(servers[0])
            if not args.no_peer:
                servers.append(start_iip(tmp, images, free_port(), args, cache_mb))
                running.append(servers[1])
            with urllib.request.urlopen(f"{servers[0].base}/iiif/2/{BIG}/info.json") as r:
                info = json.load(r)
            paths = workload_paths(info, portraits)
            for wl in chosen:
                rounds: dict[str, list[Result]] = {server.name: [] for server in servers}
                for n in range(args.rounds):  # alternating: a load change hits both servers alike
                    for server in servers:
                        spell = ours_path if server.name == "iiif-server" else iip_path
                        if server.name == "IIPImage":
                            server.workers = children(server.proc.pid) or server.workers
                        res = measure(tmp, server, [spell(i, r) for i, r in paths[wl]], args, warm_up=n == 0)
                        rounds[server.name].append(res)
                        print(f"{mode:<5} {wl:<10} {server.name:<12} {cell(res)}", flush=True)
                for name, runs in rounds.items():
                    results[(mode, wl, name)] = median(runs)
            for server in servers:
                stop(server)
                running.remove(server)
        print(f"\nmedian of {args.rounds} alternating round(s); load average after: {os.getloadavg()[0]:.1f}")
        print("\n| workload | mode | iiif-server | IIPImage | ratio |")
        print("| --- | --- | --- | --- | --- |")
        for wl in chosen:
            for mode in args.modes.split(","):
                ours, peer = results.get((mode, wl, "iiif-server")), results.get((mode, wl, "IIPImage"))
                print(f"| {wl} | {mode} | {cell(ours)} | {cell(peer)} | {ratio(ours, peer)} |")
        print(f"| ceiling: Starlette, fixed 20 KB | - | {cell(ceiling)} | - | - |")
        return 1 if any(r.errors for r in results.values()) else 0
    finally:
        for server in running:
            stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
