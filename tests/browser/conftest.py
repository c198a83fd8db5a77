"""Fixtures of the browser tests: Chromium, a context per test, the viewers from npm, the pages and the
IIIF servers on loopback (what they use is in viewing.py beside this file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import quadrants

from .viewing import (
    CHROMIUM,
    CHROMIUM_ARGS,
    COLLECTION,
    DOCUMENT,
    IMAGE_SIZE,
    PAGES_OF_DOCUMENT,
    Archive,
    Session,
    Traffic,
    add_transports,
    cli,
    install_viewers,
    serve_archive,
    serve_pages,
    unavailable,
)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium, for the tests of this package only: Playwright's sync API runs an event loop of its
    own while it is open, which would stop pytest-asyncio's tests elsewhere from running theirs."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def session(browser: Any) -> Iterator[Session]:
    """A fresh browser context (no cookies) with one page, recording its traffic."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    traffic = Traffic()
    opened: list[Any] = []
    context.on("request", traffic.on_request)
    context.on("response", traffic.on_response)
    context.on("page", lambda p: opened.append(p))
    page = context.new_page()
    yield Session(context, page, traffic, opened)
    context.close()
    assert not traffic.foreign, f"the page tried to reach beyond loopback: {traffic.foreign[:5]}"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """Mirador and UV from the npm registry, installed once into tests/browser/.npm-cache/
    (under a file lock: two workers or two runs never install at once)."""
    return install_viewers()


@pytest.fixture(scope="session")
def pages(node_modules: Path) -> Iterator[str]:
    """The viewer pages, on their own port: the same site as the IIIF server, another origin."""
    yield from serve_pages(node_modules)


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A reading-room collection with one two-page document, ingested by the CLI, and a token for it; and
    the transport lists of the search tests, public and reading-room, with their name index."""
    src = tmp_path_factory.mktemp("browser-masters")
    data = tmp_path_factory.mktemp("browser-data")
    (src / DOCUMENT).mkdir()
    for page in PAGES_OF_DOCUMENT:
        quadrants(*IMAGE_SIZE).pngsave(str(src / DOCUMENT / f"{page}.png"))
    cli("ingest", str(src), "--collection", COLLECTION, "--label", "Reading-room letters", "--tier", "reading-room",
        "--processes", "1", "--data-dir", str(data))
    token = cli("token", "issue", "--tier", "reading-room", "--holder", "browser test", "--days", "1",
                "--data-dir", str(data)).strip().splitlines()[-1]
    add_transports(data, tmp_path_factory.mktemp("transport-masters"),
                   tmp_path_factory.mktemp("transport-text") / "names.csv")  # for test_search.py
    return Archive(data, token)


@pytest.fixture(scope="session")
def server(archive: Archive, pages: str) -> Iterator[str]:
    """The IIIF server with no reading-room network: the material needs a token. The viewer pages'
    origin is configured: the token services hand tokens to no other."""
    yield from serve_archive(archive, "--viewer-origins", pages)


@pytest.fixture(scope="session")
def kiosk_server(archive: Archive, pages: str) -> Iterator[str]:
    """The IIIF server with loopback as the reading room's network."""
    yield from serve_archive(archive, "--networks", "reading-room=127.0.0.0/8,reading-room=::1/128",
                             "--viewer-origins", pages)


@pytest.fixture(scope="session")
def same_origin(node_modules: Path, server: str) -> Iterator[str]:
    """The viewer pages and, through a proxy, the IIIF server (`server`) on one origin."""
    yield from serve_pages(node_modules, upstream=urlsplit(server).netloc)
