"""Tiles/s through nginx in front of 1 and then 2 replicas (deploy/local.py's topology on 127.0.0.1).

    IIIF_BENCH_DATABASE=postgresql://iiif:iiif@127.0.0.1:5432/iiif_bench python bench/deploy.py [--seconds 10]

The URLs are the tiles of the sample's 6000x8000 page at full resolution, each with a unique query
string so that nginx's cache misses and every request reaches a replica (which answers from its own
response cache once warm, or sends the stored tile); then one tile that nginx serves from its cache.
wrk (Debian's) drives it with 2 threads and 16 connections.

Results, with the command that produced them: docs/benchmarks.md, "Replicas behind nginx".
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LOCAL = Path(__file__).resolve().parents[1] / "deploy" / "local.py"
LUA = """
counter = 0
request = function()
  counter = counter + 1
  local n = counter %% %(tiles)d
  local x = (n %% %(across)d) * 256
  local y = math.floor(n / %(across)d) * 256
  return wrk.format("GET", "/iiif/3/sample%%2Fletter%%2Fp1/" .. x .. "," .. y .. ",256,256/256,/0/default.jpg?r="
                    .. counter .. "-" .. math.random(1000000000))
end
"""


def wrk(url: str, seconds: int, script: Path | None) -> tuple[float, str]:
    cmd = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", *(["-s", str(script)] if script else []), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit("errors during the run:\n" + out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    return rate, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per replica")
    args = parser.parse_args()
    database = os.environ.get("IIIF_BENCH_DATABASE")
    if not database:
        raise SystemExit("set IIIF_BENCH_DATABASE to a PostgreSQL URL (its tables are replaced)")
    spec = importlib.util.spec_from_file_location("deploy_local", LOCAL)
    local = importlib.util.module_from_spec(spec)
    sys.modules["deploy_local"] = local
    spec.loader.exec_module(local)
    from sqlalchemy import text

    from iiif_server.db.catalogue import make_engine

    engine = make_engine(database)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    with tempfile.TemporaryDirectory(prefix="iiif-bench-deploy-") as tmp:
        script = Path(tmp) / "tiles.lua"
        across, down = -(-6000 // 256) - 1, -(-8000 // 256) - 1  # whole tiles only
        script.write_text(LUA % {"tiles": across * down, "across": across})
        for replicas in (1, 2):
            topo = local.Topology(Path(tmp) / "w", database, replicas=replicas, workers=args.workers)
            try:
                topo.start()
                wrk(topo.url + "/", 3, script)  # warm the replicas' caches
                rate, p99 = wrk(topo.url + "/", args.seconds, script)
                hit, hit_p99 = wrk(topo.url + "/iiif/3/sample%2Fletter%2Fp1/0,0,256,256/256,/0/default.jpg",
                                   args.seconds, None)
                print(f"{replicas} replica(s) x {args.workers} worker(s): {rate:8.0f} tiles/s through nginx to the "
                      f"replicas (p99 {p99}); {hit:8.0f} tiles/s from nginx's cache (p99 {hit_p99})", flush=True)
            finally:
                topo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
