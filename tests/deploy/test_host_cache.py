"""A forged Host never reaches a shared cache: Debian's nginx in front with its default cache key (the path
alone, not the Host), the server without --base-url and with the one host:port clients use listed. Each forged
Host of issue 17 (finding 7) is a 400, and afterwards the public info.json and manifest name only the real host."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from support import free_port, need_nginx, quadrants, start_nginx, start_server, stop_nginx, stop_server

INFO = "/iiif/3/open%2Fd1%2Fp1/info.json"
MANIFEST = "/iiif/presentation/open/d1/manifest"
TILE = "/iiif/3/open%2Fd1%2Fp1/full/60,/0/default.jpg"  # its Link header names the host

def raw_get(port: int, path: str, host: str, extra: str = "") -> tuple[int, bytes]:
    """One HTTP/1.1 request as written, the Host header byte for byte (no client library between)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    need_nginx()
    data, masters = tmp_path_factory.mktemp("host-data"), tmp_path_factory.mktemp("host-masters")
    (masters / "d1").mkdir()
    quadrants(120, 90).pngsave(str(masters / "d1" / "p1.png"))
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest", str(masters), "--collection", "open",
                           "--workers", "1", "--data-dir", str(data)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    port = free_port()
    proc, server = start_server(["--data-dir", str(data), "--no-demo", "--allowed-hosts", f"127.0.0.1:{port}",
                                 "--trusted-proxies", "127.0.0.1"])
    try:
        nginx = start_nginx(tmp_path_factory.mktemp("host-nginx"), port, server)
    except BaseException:
        stop_server(proc)
        raise
    try:
        yield port
    finally:
        stop_nginx(nginx)
        stop_server(proc)


FORGED = ["[::1]@evil.example", "[::1].evil.example", "[::1]x/y", "evil.example", "127.0.0.1:9999",
          "127.0.0.1:{port}@evil.example", "127.0.0.1", "EVIL.example:{port}"]


def test_forged_hosts_are_400_and_never_reach_the_cache(proxied: int) -> None:
    port = proxied
    for path in (INFO, MANIFEST, TILE):
        for forged in FORGED:
            host = forged.format(port=port)
            status, body = raw_get(port, path, host)
            assert status == 400, (host, body[:300])
            assert b"evil" not in body.lower()
        # a listed host with a client's X-Forwarded-Host: not believed, not reflected
        status, body = raw_get(port, path, f"127.0.0.1:{port}", "X-Forwarded-Host: evil.example\r\n")
        assert status in (200, 400) and b"evil" not in body.lower()
        for _ in range(2):  # the second from nginx's cache: what the forged requests could have left there
            status, body = raw_get(port, path, f"127.0.0.1:{port}")
            assert status == 200 and b"evil" not in body.lower()
            assert f"http://127.0.0.1:{port}/iiif/".encode() in body
        assert b"X-Cache-Status: HIT" in body, body[:400]
