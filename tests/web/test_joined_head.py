"""A response's head leaves the server in the same write as its body (web/limits.py): traced with strace,
the write that starts with the status line carries every byte the client receives. Behind nginx the
second send per tile cost a tenth of a replica's CPU. Answers without body bytes (HEAD, 304) still go out."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import free_port, quadrants

REQUIRE = "IIIF_SERVER_REQUIRE_STRACE"
TILE = "/iiif/3/quadrants/0,0,256,256/256,/0/default.jpg"
SENT = re.compile(r'(?:write|sendto)\(\d+, "HTTP/1\.1 (\d{3}) .*= (\d+)$')


def fetch(url: str, head: str) -> bytes:
    """The whole answer to `head`, sent with Connection: close, as the client's socket receives it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode() + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_the_head_and_the_body_of_an_answer_leave_in_one_write(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set but strace is not installed")
        pytest.skip("needs strace (Debian: apt-get install strace)")
    root, trace = tmp_path / "images", tmp_path / "trace.txt"
    root.mkdir()
    quadrants(1024, 768).tiffsave(str(root / "quadrants.tif"), tile=True, tile_width=256, tile_height=256,
                                  pyramid=True, compression="jpeg", Q=90)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([strace, "-f", "-qq", "-s", "16", "-o", str(trace), "-e", "trace=write,sendto",
                             sys.executable, "-m", "iiif_server.cli", "serve", "--port", str(port), "--images",
                             str(root), "--data-dir", str(tmp_path / "data"), "--no-demo"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # the full path, then the hit path (the response cache), then a page of text
        answers = [fetch(url, f"GET {TILE} HTTP/1.1\r\n") for _ in range(2)]
        answers.append(fetch(url, "GET /iiif/3/quadrants/info.json HTTP/1.1\r\n"))
        etag = re.search(rb"(?im)^etag: (.+?)\r$", answers[0]).group(1).decode()  # type: ignore[union-attr]
        head_only = fetch(url, f"HEAD {TILE} HTTP/1.1\r\n")
        unchanged = fetch(url, f"GET {TILE} HTTP/1.1\r\nIf-None-Match: {etag}\r\n")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # strace and the server it runs
        proc.wait(30)
    assert [a[:12] for a in answers] == [b"HTTP/1.1 200"] * 3
    assert answers[0].split(b"\r\n\r\n", 1)[1] == answers[1].split(b"\r\n\r\n", 1)[1]
    assert head_only.startswith(b"HTTP/1.1 200") and head_only.endswith(b"\r\n\r\n")
    assert unchanged.startswith(b"HTTP/1.1 304") and unchanged.endswith(b"\r\n\r\n")
    writes = [(int(m.group(1)), int(m.group(2))) for m in map(SENT.search, trace.read_text().splitlines()) if m]
    for answer in [*answers, head_only, unchanged]:
        assert (int(answer[9:12]), len(answer)) in writes, (answer[:60], writes)
