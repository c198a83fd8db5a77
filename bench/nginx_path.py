"""The production path: the viewer workloads through nginx in front of two replicas (deploy/'s topology and its
cache rules), against IIPImage behind the same nginx, and nginx's cache hits against static files (issue 24).

One nginx (Debian's, 2 worker processes) listens on four ports of 127.0.0.1:

- `ours`: deploy/iiif.conf.template's server block with its proxy cache off, in front of two `iiif-server serve`
  replicas of `--workers 1` each, their response caches off, and a unique query string on every URL: every
  request is rendered by a replica, the cold path through nginx;
- `cached`: the server block as deployed, the tiles' URLs without query strings, after a pass that fills the cache:
  public tiles from nginx's cache (every answer checked for `X-Cache-Status: HIT`);
- `iipimage`: the same server block (proxy cache off) in front of IIPImage (iipsrv behind lighttpd FastCGI, 2
  processes, its cache off), the same tiles in its own syntax, the same unique query strings;
- and lighttpd serving, as static files, the very bytes the cached pass returned: the machine's static-file speed.

The images are bench/viewers.py's loose pyramidal JPEG TIFFs (a 6000x8000 scan and portraits), read by both
servers from one folder. wrk -t2 -c16, --seconds per run after a warm-up, --rounds alternating rounds, medians.

    IIIF_BENCH_DATABASE=postgresql://iiif:iiif@127.0.0.1:5432/iiif_nginx \\
        python bench/nginx_path.py [--images DIR] [--seconds 8] [--rounds 3] [--workloads tiles-w,tiles-wh,...]

Targets (issue 24): cold tiles through nginx >= 4x IIPImage behind the same nginx; cached public tiles >= 80% of
lighttpd serving the same bytes as static files. Results: docs/benchmarks.md, "Through nginx".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "deploy"))
from local import NGINX, Topology, postgres_from_ci  # noqa: E402
from soak import children, free_port  # noqa: E402
from viewers import (  # noqa: E402
    BIG,
    Result,
    Server,
    cell,
    ensure_tools,
    iip_path,
    make_images,
    median,
    ours_path,
    run_wrk,
    start_iip,
    stop,
    workload_paths,
)

WORKLOADS = {"tiles-w": "tiles w,", "tiles-wh": "tiles w,h", "regions": "regions", "thumbnails": "thumbnails"}
STATIC_CONF = """server.port = {port}
server.bind = "127.0.0.1"
server.document-root = "{root}"
server.errorlog = "{log}"
mimetype.assign = (".jpg" => "image/jpeg")
"""


def nginx_conf(topology: Topology, ports: dict[str, int], iip_port: int) -> Path:
    """deploy/'s server block on `cached` and on `ours`, and the same block (cache off) in front of IIPImage on
    `iipimage`."""
    conf = topology.nginx_conf()  # the template rendered as deploy/local.py renders it, on topology.port
    text = conf.read_text()
    cached = text[text.index("server {"):text.rindex("}")]  # the template's server block
    ours = cached.replace(f"listen 127.0.0.1:{topology.port};", f"listen 127.0.0.1:{ports['ours']};")
    # the same block with the proxy cache off: every request reaches a replica
    ours = "\n".join(line for line in ours.splitlines() if "proxy_cache" not in line and "proxy_no_cache" not in line)
    ours += "\n"
    # the peer behind the very same block (logging, buffers, keepalive), only its upstream differs
    peer = ours.replace(f"listen 127.0.0.1:{ports['ours']};", f"listen 127.0.0.1:{ports['iipimage']};")
    peer = peer.replace("proxy_pass http://iiif_replicas;", "proxy_pass http://iip;")
    upstream = f"upstream iip {{\n    server 127.0.0.1:{iip_port};\n    keepalive 32;\n}}\n"
    conf.write_text(text[:text.rindex("}")] + ours + upstream + peer + "}\n")
    return conf


def start_nginx(conf: Path) -> subprocess.Popen[bytes]:
    subprocess.run([NGINX, "-t", "-q", "-p", str(conf.parent), "-c", str(conf)], check=True)
    return subprocess.Popen([NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
                            start_new_session=True)


def start_static(tmp: Path, root: Path, port: int) -> subprocess.Popen[bytes]:
    conf = tmp / "static.conf"
    conf.write_text(STATIC_CONF.format(port=port, root=root, log=tmp / "static.err"))
    return subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server stopped")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far (from /proc: one may end while it is read)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_cpu(tmp: Path, server: Server, paths: list[str], args: argparse.Namespace, warm_up: bool,
                parts: dict[str, list[int]]) -> tuple[Result, dict[str, float]]:
    """`measure`, and the CPU each part (nginx, the server behind it, wrk) spent per request of the measured
    run, in microseconds: on two shared cores, what a request costs is what decides the rate."""
    if warm_up and args.warmup > 0:
        run_wrk(tmp, server.base, paths, args.warmup, args, server.workers)
    before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_wrk(tmp, server.base, paths, args.seconds, args, server.workers)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = max(1.0, res.rate * max(1, round(args.seconds)))
    cpu = {name: (cpu_seconds(pids) - before[name]) * 1e6 / requests for name, pids in parts.items()}
    cpu["wrk"] = (wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime) * 1e6 / requests
    return res, cpu


def cpu_cell(runs: list[dict[str, float]]) -> str:
    """Medians over the rounds, per part, in microseconds of CPU per request."""
    return " + ".join(f"{name} {statistics.median(r[name] for r in runs):.0f}" for name in runs[0])


def fill_cache(base: str, paths: list[str], static: Path) -> list[str]:
    """Each path once through the caching server (a MISS that fills nginx's cache), then again (it must be a
    HIT); the bytes written under `static`. The static files' paths, in the same order."""
    out = []
    for n, path in enumerate(paths):
        with urllib.request.urlopen(base + path, timeout=60) as r:
            body = r.read()
        for attempt in range(5):  # the first answer may still be on its way into the cache
            with urllib.request.urlopen(base + path, timeout=60) as r:
                status = r.headers.get("X-Cache-Status")
                if status == "HIT":
                    break
            time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"{path}: not served from nginx's cache ({status}, "
                               f"Cache-Control {r.headers.get('Cache-Control')})")
        name = f"t/{n}.jpg"
        (static / name).write_bytes(body)
        out.append("/" + name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=None, help="bench/viewers.py's images, kept and reused")
    parser.add_argument("--portraits", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default="tiles-w,tiles-wh,regions,thumbnails")
    parser.add_argument("--cached-paths", type=int, default=2000, help="tiles filled into nginx's cache")
    parser.add_argument("--database", default=os.environ.get("IIIF_BENCH_DATABASE"))
    args = parser.parse_args()
    args.threads, args.connections, args.workers = 2, 16, 2  # what viewers.py's helpers read
    ensure_tools()
    database = args.database or postgres_from_ci()

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="iiif-nginx-"))
    images = args.images or tmp / "images"
    if (images / ".complete").exists():
        portraits = (images / ".complete").read_text().split()
    else:
        images.mkdir(parents=True, exist_ok=True)
        portraits = make_images(images, args.portraits)
        (images / ".complete").write_text("\n".join(portraits))
    workdir = tmp / "deploy"
    workdir.mkdir()
    (workdir / "images").symlink_to(images.resolve())
    topology = Topology(workdir, database, replicas=2, workers=1, extra=["--cache-mb", "0"])
    iip: Server | None = None
    nginx = static = None
    try:
        topology.start(sample=False)  # the replicas, and nginx on topology.port as deployed
        iip = start_iip(tmp, images, free_port(), args, 0)
        if topology.nginx is not None:  # replaced by one nginx serving every port
            os.killpg(topology.nginx.pid, signal.SIGQUIT)
            topology.nginx.wait(10)
            topology.nginx = None
        ports = {"ours": free_port(), "iipimage": free_port()}
        nginx = start_nginx(nginx_conf(topology, ports, int(iip.base.rsplit(":", 1)[1])))
        bases = {"cached": topology.url, "ours": f"http://127.0.0.1:{ports['ours']}",
                 "iipimage": f"http://127.0.0.1:{ports['iipimage']}"}
        wait(bases["ours"] + ours_path(BIG, "info.json"), nginx)
        wait(bases["iipimage"] + iip_path(BIG, "info.json"), nginx)
        with urllib.request.urlopen(bases["ours"] + ours_path(BIG, "info.json")) as r:
            info = json.load(r)
        paths = workload_paths(info, portraits)
        load = os.getloadavg()
        print(f"nginx 2 workers in front of 2 replicas (--workers 1, response cache off) and of IIPImage (2 "
              f"processes, cache off); wrk -t2 -c16, {args.seconds:g} s a run, {args.rounds} alternating rounds; "
              f"load average {load[0]:.1f}", flush=True)
        pids = {"ours": [p for r in topology.servers if r.proc for p in [r.proc.pid, *children(r.proc.pid)]],
                "iipimage": children(iip.proc.pid)}
        nginx_pids = [nginx.pid, *children(nginx.pid)]
        # CPU: IIPImage is lighttpd and its FastCGI processes; ours the replicas
        cpu_pids = {"ours": pids["ours"], "iipimage": [iip.proc.pid, *pids["iipimage"]]}
        cpus: dict[tuple[str, str], list[dict[str, float]]] = {(WORKLOADS[k], name): [] for k in WORKLOADS
                                                                for name in ("ours", "iipimage", "cached", "static")}
        results: dict[tuple[str, str], Result] = {}
        per_round: dict[str, list[float]] = {}
        chosen = [k for k in args.workloads.split(",") if k and k != "none"]
        for key in chosen:
            wl = WORKLOADS[key]
            runs: dict[str, list[Result]] = {"ours": [], "iipimage": []}
            for n in range(args.rounds):
                for name in ("ours", "iipimage"):
                    spell = ours_path if name == "ours" else iip_path
                    sep = "&" if name == "iipimage" else "?"
                    # a query string of its own per round and path: nginx's cache never answers these
                    urls = [f"{spell(i, r)}{sep}b={n}-{k}" for k, (i, r) in enumerate(paths[wl])]
                    server = Server(name, nginx, bases[name], pids[name])
                    res, cpu = measure_cpu(tmp, server, urls, args, n == 0,
                                           {"nginx": nginx_pids, "server": cpu_pids[name]})
                    runs[name].append(res)
                    cpus[(wl, name)].append(cpu)
                    print(f"cold {wl:<10} {name:<9} {cell(res)}; CPU us/request {cpu_cell([cpu])}", flush=True)
            for name, rs in runs.items():
                results[(wl, name)] = median(rs)
            per_round[wl] = [a.rate / b.rate for a, b in zip(runs["ours"], runs["iipimage"], strict=True)]
        # nginx's cache against static files: the same bytes, the same count
        static_root = tmp / "static"
        (static_root / "t").mkdir(parents=True)
        tiles = [ours_path(i, r) for i, r in paths["tiles w,"][:args.cached_paths]]
        files = fill_cache(bases["cached"], tiles, static_root)
        static_port = free_port()
        static = start_static(tmp, static_root, static_port)
        wait(f"http://127.0.0.1:{static_port}{files[0]}", static)
        cached_runs, static_runs = [], []
        for n in range(args.rounds):
            res, cpu = measure_cpu(tmp, Server("cached", nginx, bases["cached"], []), tiles, args, n == 0,
                                   {"nginx": nginx_pids})
            cached_runs.append(res)
            cpus[("tiles w,", "cached")].append(cpu)
            print(f"nginx cache hits      {cell(res)}; CPU us/request {cpu_cell([cpu])}", flush=True)
            res, cpu = measure_cpu(tmp, Server("static", static, f"http://127.0.0.1:{static_port}", []), files,
                                   args, n == 0, {"lighttpd": [static.pid]})
            static_runs.append(res)
            cpus[("tiles w,", "static")].append(cpu)
            print(f"lighttpd static files {cell(res)}; CPU us/request {cpu_cell([cpu])}", flush=True)
        cached, plain = median(cached_runs), median(static_runs)
        hit_rounds = ", ".join(f"{a.rate / b.rate:.2f}" for a, b in zip(cached_runs, static_runs, strict=True))
        print(f"\nload average after: {os.getloadavg()[0]:.1f}\n")
        print("| workload, through nginx | iiif-server (2 replicas) | IIPImage | ratio | rounds |")
        print("| --- | --- | --- | --- | --- |")
        for key in chosen:
            wl = WORKLOADS[key]
            ours, peer = results[(wl, "ours")], results[(wl, "iipimage")]
            rounds = ", ".join(f"{r:.2f}" for r in per_round[wl])
            print(f"| {wl} cold | {cell(ours)} | {cell(peer)} | {ours.rate / peer.rate:.2f} | {rounds} |")
        print(f"| tiles from nginx's cache / lighttpd static files | {cell(cached)} | {cell(plain)} | "
              f"{cached.rate / plain.rate:.2f} | {hit_rounds} |")
        print("\n| CPU per request, medians (us) | iiif-server or nginx's cache | IIPImage or lighttpd static |")
        print("| --- | --- | --- |")
        for key in chosen:
            wl = WORKLOADS[key]
            print(f"| {wl} cold | {cpu_cell(cpus[(wl, 'ours')])} | {cpu_cell(cpus[(wl, 'iipimage')])} |")
        print(f"| tiles, cache / static | {cpu_cell(cpus[('tiles w,', 'cached')])} | "
              f"{cpu_cell(cpus[('tiles w,', 'static')])} |")
        errors = sum(r.errors for r in results.values()) + cached.errors + plain.errors
        return 1 if errors else 0
    finally:
        for proc in (nginx, static):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
        if iip is not None:
            stop(iip)
        topology.stop()


if __name__ == "__main__":
    sys.exit(main())
