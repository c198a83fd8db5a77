"""Soak benchmark: does a worker's memory stay flat over many decoded requests?

Generates its own images in a temporary folder (a 6000x8000 pyramidal JPEG TIFF
written as ingest writes access copies, and portrait-sized scans, half plain
JPEG and half access-copy TIFF), starts `iiif-server serve` on 127.0.0.1 with
2 workers and the response cache off, and drives three workloads with wrk, one
after the other:

- regions: random regions (300-3000 px) of the big TIFF scaled to 200-1000 px;
- portraits: `full/!200,200` of the portrait scans (a thumbnail wall);
- tiles: the viewer tiles of every scale factor of the big TIFF.

Each workload runs a warm-up (a tenth of its requests), then the rest, while
the workers' resident memory is sampled from /proc. Resident memory saws up
and down between the server's heap trims, so "warm" is a worker's highest
sample in the first quarter of the measured run and "end" its highest in the
last quarter: a leak lifts the second, noise does not. It prints a table and
exits 1 when a worker's "end" exceeds its "warm" by more than `--max-growth`
percent, a worker exceeds `--max-rss-mb`, or any answer is not 200. Everything
it started is stopped on any exit.

    python bench/soak.py [--requests 200000] [--seconds 1800] [--max-rss-mb 300] [--portraits 300]

Results, with the command that produced them: docs/benchmarks.md, "Memory over time (soak)".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
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
from iiif_server.ingest import demo  # noqa: E402
from iiif_server.ingest.convert import write_access_copy  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from tiles import osd_tile_urls  # noqa: E402

BIG = "scan"
BIG_SIZE = (6000, 8000)

# wrk runs one Lua state per thread: each counts its own answers and stops at its share; wrk
# itself waits out its duration, so the script says when a thread stops and is sent SIGINT
# (it then prints its summary) once all have.
LUA = """
local limit = {limit}
local count, bad = 0, 0
local paths = {paths}
local W, H = {width}, {height}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(os.time() * 16 + id)
end

local function region()
  local w, h = math.random(300, 3000), math.random(300, 3000)
  local x, y = math.random(0, W - w), math.random(0, H - h)
  local s = math.random(200, 1000)
  if s > w then s = w end
  return string.format("/iiif/3/{big}/%d,%d,%d,%d/%d,/0/default.jpg", x, y, w, h, s)
end

request = function()
  local path
  if #paths > 0 then path = paths[math.random(#paths)] else path = region() end
  return wrk.format("GET", path)
end

response = function(status, headers, body)
  count = count + 1
  if status ~= 200 then bad = bad + 1 end
  if count == limit then
    io.stderr:write("STOPPED\\n")
    io.stderr:flush()
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Workload:
    name: str
    paths: list[str]  # empty: random regions of the big image
    samples: list[dict[int, int]] = field(default_factory=list)  # warm-up and measured run
    measured: list[dict[int, int]] = field(default_factory=list)  # measured run only


@dataclass
class Outcome:
    name: str
    requests: int
    seconds: float
    errors: int
    start: dict[int, int]
    warm: dict[int, int]
    end: dict[int, int]
    peak: dict[int, int]

    @property
    def growth(self) -> float:
        """Largest growth of one worker from after warm-up to the end, in percent."""
        return max((self.end[p] - self.warm[p]) / self.warm[p] * 100 for p in self.warm if p in self.end)


def make_images(images: Path, portraits: int) -> list[str]:
    """The big access copy and the portraits; returns the portraits' identifiers."""
    masters = images / ".masters"
    masters.mkdir()
    master = masters / "scan.tif"
    demo.scan(*BIG_SIZE).tiffsave(str(master), tile=True, compression="jpeg", Q=90)
    write_access_copy(master, 0, images / f"{BIG}.tif")
    (images / "portraits").mkdir()
    rng = random.Random(7)
    ids = []
    for i in range(portraits):
        w = rng.randint(1400, 2400)
        h = rng.randint(max(1800, w + 100), 3000)
        scan = demo.scan(w, h, seed=i + 3)
        if i % 2:
            scan.jpegsave(str(images / "portraits" / f"p{i:04d}.jpg"), Q=85)
        else:
            jpg = masters / f"p{i:04d}.jpg"
            scan.jpegsave(str(jpg), Q=90)
            write_access_copy(jpg, 0, images / "portraits" / f"p{i:04d}.tif")
        ids.append(f"portraits%2Fp{i:04d}")
    shutil.rmtree(masters)
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """A process's children, by pid (from /proc: a process may end while it is read)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(out)


def worker_pids(server: int) -> list[int]:
    """uvicorn's worker processes: the server's children that run the spawned worker."""
    pids = []
    for pid in children(server):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"spawn_main" in fh.read():
                    pids.append(pid)
        except OSError:
            continue
    return sorted(pids)


def rss_mib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def sample(pids: list[int]) -> dict[int, int]:
    return {p: rss_mib(p) for p in pids}


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


def run_wrk(tmp: Path, base: str, workload: Workload, requests: int, seconds: float, args: argparse.Namespace,
            pids: list[int], samples: list[dict[int, int]]) -> tuple[int, float, int]:
    """Run wrk for `requests` answers (or `seconds`), sampling RSS; returns requests, seconds, errors."""
    per_thread = max(1, math.ceil(requests / args.wrk_threads))
    paths = "{" + ",".join(json.dumps(p) for p in workload.paths) + "}"
    script = tmp / f"{workload.name}.lua"
    script.write_text(LUA.format(limit=per_thread, paths=paths, width=BIG_SIZE[0], height=BIG_SIZE[1], big=BIG))
    cmd = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{max(1, int(seconds))}s",
           "--timeout", "30s", "-s", str(script), base]
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(args.interval):
            samples.append(sample(pids))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    started = time.monotonic()
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wrk.stderr is not None and wrk.stdout is not None
        stopped, messages = 0, []
        for line in wrk.stderr:
            if line.strip() == "STOPPED":
                stopped += 1
                if stopped == args.wrk_threads:
                    wrk.send_signal(signal.SIGINT)
            else:
                messages.append(line)
        out = wrk.stdout.read()
        wrk.wait()
        elapsed = time.monotonic() - started
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
        stop.set()
        thread.join()
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if not found:
        raise RuntimeError("wrk printed no result:\n" + out + "".join(messages))
    n, _, status, socket_errors = (int(g) for g in found.groups())
    return n, elapsed, status + socket_errors


def fmt(values: dict[int, int]) -> str:
    return "/".join(str(values[p]) for p in sorted(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests per workload")
    parser.add_argument("--seconds", type=float, default=1800, help="longest time per workload")
    parser.add_argument("--max-rss-mb", type=int, default=300, help="largest resident memory of one worker")
    parser.add_argument("--max-growth", type=float, default=10.0, help="largest growth after warm-up, percent")
    parser.add_argument("--portraits", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between memory samples")
    parser.add_argument("--workloads", default="regions,portraits,tiles")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--images", type=Path, default=None,
                        help="keep the generated images in this folder and reuse them on the next run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    server: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="iiif-soak-"))
    try:
        images = args.images or tmp / "images"
        t0 = time.monotonic()
        ready = images / ".complete"  # written last: a folder without it is no finished set
        reused = ready.exists()
        if reused:
            portraits = ready.read_text().split()
        else:
            if images.exists() and any(images.iterdir()):
                raise SystemExit(f"{images} holds files but no finished image set: give an empty or new folder")
            images.mkdir(parents=True, exist_ok=True)
            portraits = make_images(images, args.portraits)
            ready.write_text("\n".join(portraits))
        print(f"images: {BIG_SIZE[0]}x{BIG_SIZE[1]} pyramidal TIFF and {len(portraits)} portraits "
              f"({'reused' if reused else 'made'} in {time.monotonic() - t0:.0f} s)", flush=True)
        port = args.port or free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--images", str(images), "--data-dir", str(tmp),
               "--no-demo", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
               "--cache-mb", "0"]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        wait_ready(base, server)
        pids = worker_pids(server.pid)
        if len(pids) != args.workers:
            raise RuntimeError(f"found {len(pids)} worker processes, expected {args.workers}")
        with urllib.request.urlopen(f"{base}/iiif/3/{BIG}/info.json") as r:
            info = json.load(r)
        tiles = [u.removeprefix(base) for u in osd_tile_urls(info, 3)]
        chosen = {"regions": Workload("regions", []),
                  "portraits": Workload("portraits", [f"/iiif/3/{i}/full/!200,200/0/default.jpg" for i in portraits]),
                  "tiles": Workload("tiles", tiles)}
        workloads = [chosen[name.strip()] for name in args.workloads.split(",")]
        print(f"server: {args.workers} workers {pids}, cache off, {args.connections} connections; "
              f"{args.requests} requests per workload, at most {args.seconds:.0f} s each", flush=True)
        outcomes = []
        for wl in workloads:
            start = sample(pids)
            warm_n = max(1000, args.requests // 10)
            t = time.monotonic()
            n1, s1, e1 = run_wrk(tmp, base, wl, warm_n, args.seconds, args, pids, wl.samples)
            after_warm_up = sample(pids)
            left = args.seconds - (time.monotonic() - t)
            n2, s2, e2 = 0, 0.0, 0
            if args.requests > n1 and left >= 1:
                n2, s2, e2 = run_wrk(tmp, base, wl, args.requests - n1, left, args, pids, wl.measured)
            last = sample(pids)
            measured = [after_warm_up, *wl.measured, last]
            quarter = max(1, len(measured) // 4)
            warm = {p: max(s.get(p, 0) for s in measured[:quarter]) for p in pids}
            end = {p: max(s.get(p, 0) for s in measured[-quarter:]) for p in pids}
            wl.samples += wl.measured
            peak = {p: max([s.get(p, 0) for s in [start, *measured, *wl.samples]]) for p in pids}
            outcome = Outcome(wl.name, n1 + n2, s1 + s2, e1 + e2, start, warm, end, peak)
            outcomes.append(outcome)
            trace = [max(s.values()) for s in wl.samples]
            step = max(1, len(trace) // 24)
            print(f"{wl.name}: {outcome.requests} requests in {outcome.seconds:.0f} s; RSS MiB per worker "
                  f"{fmt(start)} -> {fmt(warm)} -> {fmt(end)} (highest of first and last quarter); "
                  f"largest worker every {step * args.interval:g} s: {trace[::step]}", flush=True)
        print()
        print(f"{'workload':<10} {'requests':>9} {'req/s':>7} {'errors':>6}  {'RSS MiB per worker':<20}"
              f" {'start':>9} {'warm':>9} {'end':>9} {'peak':>9} {'growth':>7}")
        failed = False
        for o in outcomes:
            bad = o.errors > 0 or o.growth > args.max_growth or max(o.peak.values()) > args.max_rss_mb
            failed |= bad
            print(f"{o.name:<10} {o.requests:>9} {o.requests / max(o.seconds, 1e-9):>7.0f} {o.errors:>6}  {'':<20}"
                  f" {fmt(o.start):>9} {fmt(o.warm):>9} {fmt(o.end):>9} {fmt(o.peak):>9} {o.growth:>6.1f}%"
                  f"{'  FAIL' if bad else ''}")
        print(f"limits: growth after warm-up <= {args.max_growth:g}%, peak <= {args.max_rss_mb} MiB per worker, "
              "no answer but 200")
        return 1 if failed else 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
