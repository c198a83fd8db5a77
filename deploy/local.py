"""The deploy/ topology on this machine, without Docker: PostgreSQL, N replicas, nginx, all on 127.0.0.1.

    python deploy/local.py up --workdir /tmp/iiif-deploy --replicas 2
        [--database postgresql://iiif:iiif@127.0.0.1:5432/iiif_deploy] [--port 8080]

PostgreSQL comes from Debian's package: without `--database`, `.ci/postgres.sh` starts it (as root)
and its database is used. Each replica is `iiif-server serve` on its own port with its own data
folder (logs) and the shared signing key, image root and catalogue; nginx (Debian's) listens on
`--port` with the cache and failover rules of deploy/iiif.conf.template. On the first run a sample
collection (`sample`: one 6000x8000 page and a few small ones) is ingested. Ctrl-C stops it all.
tests/deploy/test_deploy.py drives the same `Topology`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


def iiif_server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "iiif_server.cli", *args], env=env or dict(os.environ),
                          capture_output=True, check=True)


def make_sample(workdir: Path, database: str, big: tuple[int, int] = (6000, 8000)) -> None:
    """Masters for the `sample` collection, ingested once into the shared image root and catalogue."""
    import pyvips

    masters = workdir / "masters"
    if (workdir / "images" / "sample").exists():
        return
    for doc, pages in (("letter", [big]), ("album", [(1200, 900)] * 3)):
        folder = masters / doc
        folder.mkdir(parents=True, exist_ok=True)
        for n, (w, h) in enumerate(pages, 1):
            x = pyvips.Image.xyz(w, h)
            red, green = x[0] * 255 / w, x[1] * 255 / h
            img = red.bandjoin([green, (x[0] + x[1]) % 256 + n * 40])
            img.cast("uchar").copy(interpretation="srgb").tiffsave(
                str(folder / f"p{n}.tif"), tile=True, tile_width=256, tile_height=256, pyramid=True,
                compression="jpeg", Q=90)
    iiif_server("ingest", str(masters), "--collection", "sample", "--label", "Sample", "--processes", "2",
                "--images", str(workdir / "images"), "--data-dir", str(workdir / "admin"), "--database", database)


@dataclass
class Replica:
    port: int
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Topology:
    """PostgreSQL (given), N replicas and nginx on loopback, under `workdir`."""

    workdir: Path
    database: str
    replicas: int = 2
    port: int = 0
    workers: int = 1
    max_age: int = 300
    sample_size: tuple[int, int] = (6000, 8000)
    extra: list[str] = field(default_factory=list)
    servers: list[Replica] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """An `iiif-server` command on the shared catalogue, as an operator would run it."""
        return iiif_server(*args, "--images", str(self.workdir / "images"), "--data-dir", str(self.workdir / "admin"),
                           "--database", self.database)

    def start(self, sample: bool = True) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        key = self.workdir / "secret.key"
        if not key.exists():
            key.write_text(os.urandom(32).hex())
            key.chmod(0o600)
        if sample:
            make_sample(self.workdir, self.database, self.sample_size)
        self.port = self.port or free_port()
        for n in range(1, self.replicas + 1):
            self.servers.append(Replica(free_port(), self.workdir / f"replica-{n}"))
        for replica in self.servers:
            self.start_replica(replica)
        for replica in self.servers:
            wait_healthy(replica.url, replica.proc)
        self.start_nginx()

    def start_replica(self, replica: Replica) -> None:
        cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--host", "127.0.0.1", "--port", str(replica.port),
               "--database", self.database, "--images", str(self.workdir / "images"), "--data-dir", str(replica.data),
               "--secret-key-file", str(self.workdir / "secret.key"), "--trusted-proxies", "127.0.0.1/32",
               "--workers", str(self.workers), "--max-age", str(self.max_age), "--no-demo", *self.extra]
        log = open(replica.data.with_suffix(".log"), "ab")  # noqa: SIM115 - the child keeps it
        # own session: stopping a replica stops its workers too
        replica.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def nginx_conf(self) -> Path:
        template = (HERE / "iiif.conf.template").read_text()
        servers = "\n    ".join(f"server 127.0.0.1:{r.port} max_fails=1 fail_timeout=5s;" for r in self.servers)
        values = {"IIIF_CACHE_PATH": str(self.workdir / "nginx" / "cache"), "IIIF_CACHE_KEYS": "10m",
                  "IIIF_CACHE_SIZE": "1g", "IIIF_UPSTREAM_SERVERS": servers, "IIIF_LISTEN": f"127.0.0.1:{self.port}",
                  "IIIF_ACCESS_LOG": str(self.workdir / "nginx" / "access.log")}
        for name, value in values.items():
            template = template.replace("${" + name + "}", value)
        prefix = self.workdir / "nginx"
        for sub in ("cache", "tmp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"{user}worker_processes 2;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log {prefix}/access.log;\n"
            f"  client_body_temp_path {prefix}/tmp/body; proxy_temp_path {prefix}/tmp/proxy;\n"
            f"  fastcgi_temp_path {prefix}/tmp/fcgi; uwsgi_temp_path {prefix}/tmp/uwsgi;\n"
            f"  scgi_temp_path {prefix}/tmp/scgi;\n"
            + template + "\n}\n")
        return conf

    def start_nginx(self) -> None:
        conf = self.nginx_conf()
        subprocess.run([NGINX, "-t", "-q", "-p", str(conf.parent), "-c", str(conf)], check=True)
        self.nginx = subprocess.Popen([NGINX, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
                                      start_new_session=True)
        wait_healthy(self.url, self.nginx)

    def kill_replica(self, replica: Replica, sig: int = signal.SIGKILL) -> None:
        """Stop one replica and its workers at once (a crash, or a machine gone)."""
        if replica.proc is not None and replica.proc.poll() is None:
            os.killpg(replica.proc.pid, sig)
            replica.proc.wait(15)

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            os.killpg(self.nginx.pid, signal.SIGQUIT)  # graceful: nginx's own way
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.nginx.pid, signal.SIGKILL)
        for replica in self.servers:
            if replica.proc is not None and replica.proc.poll() is None:
                os.killpg(replica.proc.pid, signal.SIGTERM)
                try:
                    replica.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill_replica(replica)


def postgres_from_ci() -> str:
    return subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="worker processes per replica")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port on 127.0.0.1")
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: start Debian's, as CI does)")
    parser.add_argument("--max-age", type=int, default=300, help="replicas' --max-age: the shared cache's bound")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    topology = Topology(args.workdir.resolve(), args.database or postgres_from_ci(), args.replicas, args.port,
                        args.workers, args.max_age)
    try:
        topology.start()
        print(f"nginx on {topology.url}/ in front of " + ", ".join(r.url for r in topology.servers), flush=True)
        print(f"try {topology.url}/iiif/3/sample%2Fletter%2Fp1/info.json  (Ctrl-C stops)", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        topology.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
