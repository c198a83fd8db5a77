"""Python cost of one cached tile through the whole ASGI app (middleware, metrics, logs included).

    python bench/overhead.py [--requests 20000]

Builds the app in process over a generated pyramid, fills the response cache with one tile, then
calls the ASGI app directly (no sockets, no HTTP parsing) and prints microseconds per request:
the figure that the access log and the metrics add to, measured in rounds, best round shown.

Results, with the command that produced them: docs/benchmarks.md, "Logging and metrics overhead".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import pyvips

from iiif_server import config
from iiif_server.web.app import create_app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--access-log", default=None, help="'off', '-' or a file (default: the data folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        pyvips.Image.black(1024, 1024, bands=3).tiffsave(str(images / "p.tif"), tile=True, pyramid=True,
                                                        compression="jpeg")
        kw = {"access_log": args.access_log} if args.access_log else {}
        app = create_app(config.Settings(data_dir=Path(tmp) / "data", images=images, demo=False, **kw))
        path = "/iiif/3/p/0,0,256,256/256,/0/default.jpg"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        statuses: list[int] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)  # fills the cache
        best = float("inf")
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(args.requests):
                await app(dict(scope), receive, send)
            best = min(best, (time.perf_counter() - started) / args.requests)
        assert set(statuses) == {200}, set(statuses)
        print(f"cached tile through the ASGI app: {best * 1e6:.1f} us per request (best of {args.rounds} "
              f"rounds of {args.requests})")
        app.state.catalogue.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
