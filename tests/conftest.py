"""Shared fixtures: generated images with known content, an in-process client, a real server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from iiif_server import config
from iiif_server.web.app import create_app

FIXTURES = Path(__file__).parent / "fixtures"
VALIDATOR_ID = "67352ccc-d1b0-11e1-89ae-279075081939"
RED, GREEN, BLUE, WHITE = [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]


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


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    shutil.copy(FIXTURES / f"{VALIDATOR_ID}.png", root / f"{VALIDATOR_ID}.png")
    quadrants(400, 300).pngsave(str(root / "quadrants.png"))
    (root / "nested" / "deeper").mkdir(parents=True)
    quadrants(200, 100).jpegsave(str(root / "nested" / "deeper" / "page.jpg"), Q=95)
    write_pyramid(quadrants(2048, 1536), root / "pyramid.tif")
    return root


@pytest.fixture(scope="session")
def settings(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> config.Settings:
    return config.Settings(data_dir=tmp_path_factory.mktemp("data"), images=image_root, demo=False)


@pytest.fixture
async def client(settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start `iiif-server serve` on a free port and wait until it answers /healthz."""
    port = free_port()
    cmd = [sys.executable, "-m", "iiif_server.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode() if proc.stdout else ''}")
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


@pytest.fixture(scope="session")
def live_server(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("live-data")
    proc, url = start_server(["--images", str(image_root), "--data-dir", str(data), "--no-demo"])
    yield url
    stop_server(proc)


# -- catalogue backends ---------------------------------------------------------

POSTGRES_ENV = "IIIF_SERVER_TEST_DATABASE"


def _reset_postgres(url: str) -> None:
    from sqlalchemy import text

    from iiif_server.db.catalogue import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty catalogue database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalogue.db'}"
    return fresh_postgres("to run this on PostgreSQL (.ci/run does)")


def fresh_postgres(why: str) -> str:
    """The test PostgreSQL database, emptied; skip (or fail, where required) without one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("IIIF_SERVER_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"set {POSTGRES_ENV} to a PostgreSQL URL {why}")
    _reset_postgres(url)
    return url


def page_tier(catalogue: object, identifier: str) -> str | None:
    """The tier every replica's access check gives `identifier` now (the snapshot, as the tile path reads it)."""
    from iiif_server.auth.snapshot import Snapshot

    snapshot = Snapshot(catalogue)  # type: ignore[arg-type]
    snapshot.refresh(force=True)
    return snapshot.tier(identifier)


@pytest.fixture
def catalogue(database_url: str):  # type: ignore[no-untyped-def]
    from iiif_server.db.catalogue import Catalogue

    cat = Catalogue(database_url)
    cat.upgrade()
    yield cat
    cat.engine.dispose()


SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "iiif_3_0.json"


def presentation_schema() -> dict:  # type: ignore[type-arg]
    """The official Presentation 3.0 JSON schema, read from ../shared (never copied: no licence)."""
    import json

    if not SCHEMA.exists():
        if os.environ.get("IIIF_SERVER_REQUIRE_SHARED"):
            pytest.fail(f"the Presentation 3.0 schema is missing: expected it at {SCHEMA} (../shared/fixtures)")
        pytest.skip("needs the Presentation 3.0 schema in ../shared/fixtures (not in this clone)")
    return json.loads(SCHEMA.read_text())
