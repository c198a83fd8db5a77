"""Support for the tests (not a test module): images with known content, real servers on loopback, the
PostgreSQL test database, the Presentation schema, raw HTTP.

Everything that would be shared between two pytest-xdist workers is derived per worker here: each worker
(`PYTEST_XDIST_WORKER`, gw0, gw1 ...) takes its ports from its own slice of a range that the kernel never
hands out by itself, and its own PostgreSQL database, named after the configured one with the worker's id
appended (created when missing). A serial run is worker 0, on the configured database itself.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import pyvips
import seaweed

from iiif_server import config

TESTS = Path(__file__).resolve().parent  # every path of the tests is computed from here
REPOSITORY = TESTS.parent
FIXTURES = TESTS / "fixtures"
VALIDATOR_ID = "67352ccc-d1b0-11e1-89ae-279075081939"
RED, GREEN, BLUE, WHITE = [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]


# -- images ---------------------------------------------------------------------------------------


def quadrants(width: int, height: int) -> pyvips.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = pyvips.Image.black(width, height, bands=3)
    hw, hh = width // 2, height // 2
    # pyvips 3 draw operations return a new image
    img = img.draw_rect(RED, 0, 0, hw, hh, fill=True)
    img = img.draw_rect(GREEN, hw, 0, width - hw, hh, fill=True)
    img = img.draw_rect(BLUE, 0, hh, hw, height - hh, fill=True)
    img = img.draw_rect(WHITE, hw, hh, width - hw, height - hh, fill=True)
    return img.cast("uchar").copy(interpretation="srgb")


def write_pyramid(img: pyvips.Image, path: Path, tile: int = 256) -> None:
    img.tiffsave(str(path), tile=True, tile_width=tile, tile_height=tile, pyramid=True, compression="jpeg", Q=90)


# -- the xdist worker -----------------------------------------------------------------------------


def worker_id() -> str:
    """`gw0`, `gw1` ... under pytest-xdist; `master` in a serial run."""
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


def worker_slot() -> tuple[int, int]:
    """(this worker's index, how many workers): (0, 1) in a serial run."""
    wid = worker_id()
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0
    return index, max(count, index + 1)


# -- ports ----------------------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def worker_ports(low: int, high: int) -> range:
    """This worker's share of the ports low..high (inclusive): disjoint from every other worker's."""
    index, count = worker_slot()
    span = (high - low + 1) // count
    return range(low + index * span, low + (index + 1) * span)


def free_port() -> int:
    """A port free on 127.0.0.1 now, from this worker's own slice of the ports above the kernel's
    ephemeral range: no other worker picks it, and no outgoing connection takes it before a server
    binds it. (Without such a range, one the kernel chooses.)"""
    _, high = _ephemeral_range()
    if 65535 - high >= 256:
        ports = worker_ports(high + 1, 65535)
        start = random.randrange(len(ports))  # another run beside this one starts elsewhere
        for i in range(len(ports)):
            port = ports[(start + i) % len(ports)]
            if _bindable(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- real servers ---------------------------------------------------------------------------------


def start_server(args: list[str], env: dict[str, str] | None = None,
                 attempts: int = 3) -> tuple[subprocess.Popen[bytes], str]:
    """Start `iiif-server serve` on a free port and wait until it answers /healthz (on another port
    if something took that one before the server bound it)."""
    for attempt in range(attempts):
        try:
            return _start_server(args, env)
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    pass


def _start_server(args: list[str], env: dict[str, str] | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise (PortTaken if "address already in use" in out.lower() else RuntimeError)(f"server exited: {out}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def raw_request(url: str, head: bytes, pause: float = 0.0, rest: bytes = b"") -> tuple[int, bytes]:
    """Send `head` (then `rest` after `pause`) and read the status line; the server may close early."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        try:
            s.sendall(head)
            if pause:
                time.sleep(pause)
            if rest:
                s.sendall(rest)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: the answer is waiting
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12]), data


# -- the PostgreSQL test database -----------------------------------------------------------------

POSTGRES_ENV = "IIIF_SERVER_TEST_DATABASE"


def worker_database(url: str) -> str:
    """The configured database URL for a serial run; under xdist, the same server with a database of
    this worker's own (`<name>_gw0` ...), created (by the configured role) when missing."""
    wid = worker_id()
    if wid == "master":
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    mine = base.set(database=f"{base.database}_{wid}")
    _create_database(base, str(mine.database))
    return mine.render_as_string(hide_password=False)


_created: set[str] = set()


def _create_database(base: object, name: str) -> None:
    if name in _created:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(base, isolation_level="AUTOCOMMIT")  # type: ignore[call-overload]
    try:
        for attempt in range(10):
            with engine.connect() as conn:
                if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                    break
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    break
                except DBAPIError as e:
                    if "already exists" in str(e):  # another run made it meanwhile
                        break
                    # another worker copying template1 at this moment: try again
                    if attempt == 9 or "being accessed by other users" not in str(e):
                        raise
            time.sleep(0.2 + random.random())
    finally:
        engine.dispose()
    _created.add(name)


def _reset_postgres(url: str) -> None:
    from sqlalchemy import text

    from iiif_server.db.catalogue import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_postgres(why: str) -> str:
    """This worker's test PostgreSQL database, emptied; skip (or fail, where required) without one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("IIIF_SERVER_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"set {POSTGRES_ENV} to a PostgreSQL URL {why}")
    url = worker_database(url)
    _reset_postgres(url)
    return url


def page_tier(catalogue: object, identifier: str) -> str | None:
    """The tier every replica's access check gives `identifier` now (the snapshot, as the tile path reads it)."""
    from iiif_server.auth.snapshot import Snapshot

    snapshot = Snapshot(catalogue)  # type: ignore[arg-type]
    snapshot.refresh(force=True)
    return snapshot.tier(identifier)


# -- images in S3 ---------------------------------------------------------------------------------

S3_BUCKET = "images"  # the bucket of the `weed` fixture (tests/conftest.py)


def s3_settings_for(server: seaweed.Weed, data_dir: Path, prefix: str, **extra: object) -> config.Settings:
    """Settings serving the images below s3://images/<prefix> of `server`."""
    return config.Settings(data_dir=data_dir, images=f"s3://{S3_BUCKET}/{prefix}", demo=False,
                           s3_endpoint=server.endpoint, s3_region=seaweed.REGION, s3_access_key_id=seaweed.ACCESS_KEY,
                           s3_secret_access_key=seaweed.SECRET_KEY, **extra)  # type: ignore[arg-type]


# -- the Presentation 3.0 schema ------------------------------------------------------------------

SCHEMA = REPOSITORY.parent / "shared" / "fixtures" / "iiif_3_0.json"


def presentation_schema() -> dict:  # type: ignore[type-arg]
    """The official Presentation 3.0 JSON schema, read from ../shared (never copied: no licence)."""
    import json

    if not SCHEMA.exists():
        if os.environ.get("IIIF_SERVER_REQUIRE_SHARED"):
            pytest.fail(f"the Presentation 3.0 schema is missing: expected it at {SCHEMA} (../shared/fixtures)")
        pytest.skip("needs the Presentation 3.0 schema in ../shared/fixtures (not in this clone)")
    return json.loads(SCHEMA.read_text())


# -- nginx with a shared cache in front of a server --------------------------------------------------------

NGINX = os.environ.get("IIIF_SERVER_NGINX", "/usr/sbin/nginx")
REQUIRE_NGINX = "IIIF_SERVER_REQUIRE_NGINX"
NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache keys_zone=iiif:4m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_cache iiif;  # the default key: $scheme$proxy_host$request_uri, no Host in it
            {extra}
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


def need_nginx() -> None:
    """Skip (or fail, where IIIF_SERVER_REQUIRE_NGINX is set) without Debian's nginx."""
    if not Path(NGINX).exists():
        if os.environ.get(REQUIRE_NGINX):
            pytest.fail(f"nginx is missing at {NGINX} but {REQUIRE_NGINX} is set")
        pytest.skip(f"nginx is not installed at {NGINX} (Debian: apt-get install nginx); "
                    f"set {REQUIRE_NGINX}=1 to fail")


def start_nginx(tmp: Path, port: int, upstream: str, extra: str = "") -> subprocess.Popen[bytes]:
    """nginx with proxy_cache on 127.0.0.1:`port` in front of `upstream` (a server's URL), answering /healthz
    through it before it returns; `extra`: more directives for its location."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root its workers would drop to an account that
    # cannot enter pytest's private temporary folders
    conf = tmp / "nginx.conf"
    conf.write_text(user + NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream.rsplit(":", 1)[1], extra=extra))
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, last = time.monotonic() + 20, None
    while True:
        try:
            last = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if last.status_code == 200:
                return nginx
        except httpx.HTTPError as exc:
            last = exc  # type: ignore[assignment]
        if nginx.poll() is not None or time.monotonic() > deadline:
            nginx.kill()
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not answer: {last!r} {log[-2000:]}")
        time.sleep(0.1)


def stop_nginx(nginx: subprocess.Popen[bytes]) -> None:
    nginx.terminate()
    nginx.wait(10)
