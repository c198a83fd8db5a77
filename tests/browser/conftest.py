"""End-to-end set-up: Debian's Chromium driven by Playwright, Mirador and UV from npm, servers on loopback.

Nothing here reaches the internet: the viewers come from the npm registry
(installed once into `.npm-cache/`), a small static server on 127.0.0.1 serves
the pages in `pages/` and those packages, and the IIIF server runs on
127.0.0.1 too. The page and the IIIF server differ only in port, so they are
the same site and the `iiif_access` cookie (SameSite=Lax on plain http) goes
with the viewer's plain image requests and its token iframe. A viewer whose
tile requests are CORS requests without credentials (UV) gets the cookie only
from its own origin: `same_origin` serves the pages and, through a small
proxy, the IIIF server on one origin, as one reverse proxy would.

Chromium is /usr/bin/chromium (IIIF_SERVER_CHROMIUM overrides it). Without
Chromium, npm or Playwright these tests skip, saying why; with
IIIF_SERVER_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from conftest import quadrants, start_server, stop_server

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
NPM_DIR = HERE / ".npm-cache"
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("IIIF_SERVER_CHROMIUM", "/usr/bin/chromium")
REQUIRE = "IIIF_SERVER_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # belt and braces: no name resolves, so nothing but 127.0.0.1 can be reached
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
COLLECTION, DOCUMENT = "rr", "letter"
PAGES_OF_DOCUMENT = ("p1", "p2")  # two pages, so a viewer can turn to the next one
IDENTIFIER = f"{COLLECTION}/{DOCUMENT}/p1"
IMAGE_SIZE = (1600, 1200)
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
LOCAL_PREFIXES = ("http://127.0.0.1:", "data:", "blob:", "about:")


def unavailable(reason: str) -> None:
    """Skip, or fail where the browser tests are required (CI)."""
    if os.environ.get(REQUIRE):
        pytest.fail(f"{reason} ({REQUIRE} is set: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


# -- the browser ----------------------------------------------------------------


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


@dataclass
class Traffic:
    """What the pages of one browser context asked for and received; requests that left loopback apart."""

    requests: list[str] = field(default_factory=list)
    responses: list[tuple[str, int, str]] = field(default_factory=list)  # url, status, content-type
    foreign: list[str] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        self.requests.append(request.url)
        if not request.url.startswith(LOCAL_PREFIXES):
            self.foreign.append(request.url)

    def on_response(self, response: Any) -> None:
        try:
            ctype = response.header_value("content-type") or ""
        except Exception:  # the page went away meanwhile
            ctype = ""
        self.responses.append((response.url, response.status, ctype))

    @staticmethod
    def is_image(url: str, server: str) -> bool:
        """An Image API image request (not info.json) to the IIIF server."""
        return url.startswith(server + "/iiif/3/") and not url.split("?")[0].endswith("/info.json")

    def images(self, server: str, since: int = 0) -> list[tuple[str, int, str]]:
        """Responses to image requests, from the `since`-th response on."""
        return [r for r in self.responses[since:] if self.is_image(r[0], server)]

    def image_requests(self, server: str) -> list[str]:
        return [url for url in self.requests if self.is_image(url, server)]

    def delivered(self, server: str) -> list[str]:
        """Image requests that answered 200 with image bytes."""
        return [url for url, status, ctype in self.images(server) if status == 200 and ctype.startswith("image/")]

    def statuses(self, server: str, path: str) -> list[int]:
        return [status for url, status, _ in self.responses if url.split("?")[0] == server + path]


@dataclass
class Session:
    context: Any
    page: Any
    traffic: Traffic
    windows: list[Any]  # every page the context opened: the viewer and its pop-ups


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


# -- the viewers ----------------------------------------------------------------


def _wanted() -> dict[str, str]:
    return dict(json.loads((HERE / "package.json").read_text())["dependencies"])


def _installed(modules: Path, wanted: dict[str, str]) -> bool:
    for name, version in wanted.items():
        manifest = modules / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """Mirador and UV from the npm registry, installed once into tests/browser/.npm-cache/."""
    modules = NPM_DIR / "node_modules"
    wanted = _wanted()
    if not _installed(modules, wanted):
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed: the viewers under test come from the npm registry")
        NPM_DIR.mkdir(exist_ok=True)
        shutil.copy(HERE / "package.json", NPM_DIR / "package.json")
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NPM_DIR,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not _installed(modules, wanted):
            pytest.fail(f"npm install failed in {NPM_DIR}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return modules


class _ViewerHandler(SimpleHTTPRequestHandler):
    """pages/ at /, the installed packages at /node_modules/; with an upstream, /iiif/ goes to the IIIF server.

    The proxy passes the Host header on, so the IIIF server names itself by this server's origin: the
    viewer page and the IIIF resources then share one origin, as behind one reverse proxy.
    """

    def __init__(self, *args: Any, modules: Path, upstream: str | None = None, **kwargs: Any) -> None:
        self.modules = modules
        self.upstream = upstream
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def _proxied(self) -> bool:
        if self.upstream is None or not self.path.startswith("/iiif/"):
            return False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        super().end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return True

    def do_GET(self) -> None:
        if not self._proxied():
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._proxied():
            super().do_HEAD()

    def do_POST(self) -> None:
        if not self._proxied():
            self.send_error(405)

    def do_OPTIONS(self) -> None:
        if not self._proxied():
            self.send_error(405)

    def translate_path(self, path: str) -> str:
        rel = unquote(urlsplit(path).path)
        base = PAGES
        if rel.startswith("/node_modules/"):
            base, rel = self.modules, rel[len("/node_modules/"):]
        target = (base / rel.lstrip("/")).resolve()
        if not target.is_relative_to(base.resolve()):
            return str(base / "--outside--")  # 404
        return str(target)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_pages(modules: Path, upstream: str | None = None) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_ViewerHandler, modules=modules, upstream=upstream))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="viewer-pages", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def pages(node_modules: Path) -> Iterator[str]:
    """The viewer pages, on their own port: the same site as the IIIF server, another origin."""
    yield from _serve_pages(node_modules)


# -- the IIIF server ------------------------------------------------------------


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"iiif-server {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class Archive:
    data_dir: Path
    token: str  # a reading-room access token


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A reading-room collection with one two-page document, ingested by the CLI, and a token for it."""
    src = tmp_path_factory.mktemp("browser-masters")
    data = tmp_path_factory.mktemp("browser-data")
    (src / DOCUMENT).mkdir()
    for page in PAGES_OF_DOCUMENT:
        quadrants(*IMAGE_SIZE).pngsave(str(src / DOCUMENT / f"{page}.png"))
    cli("ingest", str(src), "--collection", COLLECTION, "--label", "Reading-room letters", "--tier", "reading-room",
        "--processes", "1", "--data-dir", str(data))
    token = cli("token", "issue", "--tier", "reading-room", "--holder", "browser test", "--days", "1",
                "--data-dir", str(data)).strip().splitlines()[-1]
    return Archive(data, token)


def _serve(archive: Archive, *extra: str) -> Iterator[str]:
    proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(archive.data_dir), "--no-demo", *extra])
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def server(archive: Archive, pages: str) -> Iterator[str]:
    """The IIIF server with no reading-room network: the material needs a token. The viewer pages'
    origin is configured: the token services hand tokens to no other."""
    yield from _serve(archive, "--viewer-origins", pages)


@pytest.fixture(scope="session")
def kiosk_server(archive: Archive, pages: str) -> Iterator[str]:
    """The IIIF server with loopback as the reading room's network."""
    yield from _serve(archive, "--networks", "reading-room=127.0.0.0/8,reading-room=::1/128", "--viewer-origins", pages)


@pytest.fixture(scope="session")
def same_origin(node_modules: Path, server: str) -> Iterator[str]:
    """The viewer pages and, through a proxy, the IIIF server (`server`) on one origin."""
    yield from _serve_pages(node_modules, upstream=urlsplit(server).netloc)


def manifest_url(server: str) -> str:
    return f"{server}/iiif/presentation/{COLLECTION}/{DOCUMENT}/manifest"


# -- looking at the result --------------------------------------------------------


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def quadrant_colours(png: bytes) -> dict[str, float]:
    """Share of the picture in each pure colour of the test image (red, green, blue)."""
    import numpy as np
    import pyvips

    img = pyvips.Image.new_from_buffer(png, "")
    arr = np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))
    rgb = arr[..., :3].astype(np.int16)
    hi, lo = rgb >= 200, rgb <= 60
    masks = {
        "red": hi[..., 0] & lo[..., 1] & lo[..., 2],
        "green": lo[..., 0] & hi[..., 1] & lo[..., 2],
        "blue": lo[..., 0] & lo[..., 1] & hi[..., 2],
    }
    total = img.width * img.height
    return {name: float(mask.sum()) / total for name, mask in masks.items()}


def shows_image(page: Any, share: float = 0.01) -> bool:
    colours = quadrant_colours(page.screenshot())
    return all(v >= share for v in colours.values())


def wait_until(check: Callable[[], Any], timeout: float, what: str, page: Any, interval: float = 0.25) -> Any:
    """Poll `check` (letting the page run meanwhile) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(interval * 1000)
