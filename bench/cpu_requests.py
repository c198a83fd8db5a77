"""CPU per request of the viewer workloads, through the application in this process (no sockets, no uvicorn).

Wall-clock rates on a shared machine drift with the other work on it; the CPU a request costs this process
(every thread's, `time.process_time`) drifts much less, so this is the figure to steer by. Each request goes
through the whole ASGI application as uvicorn would hand it over, `--concurrency` at a time on one event
loop; the start-up's objects are frozen out of the collector's way as `app_from_env` does.

    python bench/cpu_requests.py --images DIR --workload portraits --cache-mb 0 --requests 3000
    python bench/cpu_requests.py --images DIR --workload "tiles w,h" --cache-mb 256 --requests 50000

DIR is a folder of bench/viewers.py (`--images`, or its `-thumbnails` copy with ingest's pages). Prints
the CPU per request (all threads, and the event loop's thread alone), the wall time and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from viewers import BIG, WORKLOADS, ours_path, workload_paths  # noqa: E402

from iiif_server import config  # noqa: E402
from iiif_server.web.app import create_app  # noqa: E402


def scope_of(app: Any, raw: str) -> dict[str, Any]:
    from urllib.parse import unquote

    return {"type": "http", "asgi": {"version": "3.0"}, "method": "GET", "path": unquote(raw), "raw_path": raw.encode(),
            "query_string": b"", "headers": [(b"host", b"127.0.0.1:8000")], "root_path": "", "scheme": "http",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "http_version": "1.1", "app": app}


async def call(app: Any, raw: str) -> tuple[int, bytes]:
    status, body = 0, []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body.append(message.get("body", b""))

    await app(scope_of(app, raw), receive, send)
    return status, b"".join(body)


async def measure(app: Any, args: argparse.Namespace) -> None:
    async with app.router.lifespan_context(app):
        status, body = await call(app, f"/iiif/2/{BIG}/info.json")
        if status != 200:
            raise SystemExit(f"info.json of {BIG}: {status}")
        portraits = (args.images / ".complete").read_text().split() if (args.images / ".complete").exists() else []
        paths = [ours_path(i, r) for i, r in workload_paths(json.loads(body), portraits)[args.workload]]
        for raw in paths if args.cache_mb else paths[:200]:  # sources opened; with a cache, every answer kept
            await call(app, raw)
        left = iter(range(args.requests))
        refused = 0

        async def client() -> None:
            nonlocal refused
            for k in left:
                status, _ = await call(app, paths[k % len(paths)])
                refused += status != 200

        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        wall = time.perf_counter() - wall
        n = args.requests
        print(f"{args.workload}, cache {args.cache_mb} MB, {n} requests, {args.concurrency} at a time: "
              f"CPU {cpu / n * 1e6:.0f} us/request (event loop's thread {loop_cpu / n * 1e6:.0f}), "
              f"wall {wall / n * 1e6:.0f} us/request, {refused} not 200; load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a folder of bench/viewers.py")
    parser.add_argument("--workload", choices=WORKLOADS, default="portraits")
    parser.add_argument("--cache-mb", type=int, default=0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="iiif-cpu-"))
    app = create_app(config.Settings(data_dir=data, images=args.images, demo=False, cache_mb=args.cache_mb))
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(measure(app, args))
    finally:
        app.state.catalogue.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
