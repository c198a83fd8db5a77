"""Support of the browser tests (not a test module; their fixtures are in conftest.py beside it): Debian's
Chromium driven by Playwright, Mirador and UV from npm, servers on loopback.

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
from support import REPOSITORY, start_server, stop_server

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
NPM_DIR = HERE / ".npm-cache"
ARTIFACTS = REPOSITORY / "test-artifacts" / "browser"
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


# -- the viewers ----------------------------------------------------------------


def _wanted() -> dict[str, str]:
    return dict(json.loads((HERE / "package.json").read_text())["dependencies"])


def _installed(modules: Path, wanted: dict[str, str]) -> bool:
    for name, version in wanted.items():
        manifest = modules / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


def install_viewers() -> Path:
    """Mirador and UV from the npm registry, installed into .npm-cache/ unless there already. Under an
    exclusive lock on .npm-cache/.install.lock: a second worker (or another run) waits for the first
    one's install instead of writing into the same folder, then finds the viewers installed."""
    import fcntl

    modules = NPM_DIR / "node_modules"
    wanted = _wanted()
    if _installed(modules, wanted):
        return modules
    NPM_DIR.mkdir(exist_ok=True)
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(modules, wanted):  # installed by whoever held the lock before
            return modules
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed: the viewers under test come from the npm registry")
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


def serve_pages(modules: Path, upstream: str | None = None) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_ViewerHandler, modules=modules, upstream=upstream))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="viewer-pages", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


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


# the transport lists of the search tests (test_search.py): in the shared archive too
TRANSPORTS, TRANSPORT_LIST = "transports", "list-12"
TRANSPORTS_RR = "transports-rr"  # the same list in a reading-room collection
LIST_SIZE = (1600, 1200)
# page, text, x, y, w, h: the name index of a transport list
NAMES = [
    ("p1", "Lévy, Abraham", 200, 300, 420, 60),
    ("p1", "Goldsztajn, Chaja", 200, 420, 480, 60),
    ("p1", "Mendelowicz, Icek", 200, 540, 460, 60),
]


def transport_page(path: Path) -> None:
    """A white page with a grey block where each name stands: nothing coloured, so a highlight is the
    only colour on screen."""
    import pyvips

    img = pyvips.Image.black(*LIST_SIZE, bands=3).new_from_image([250, 250, 250]).cast("uchar")
    for _, _, x, y, w, h in NAMES:
        img = img.draw_rect([90, 90, 90], x, y, w, h, fill=True)
    img.copy(interpretation="srgb").pngsave(str(path))


def add_transports(data: Path, src: Path, text: Path) -> None:
    """A public transport list and the same list in a reading-room collection, each with its name index
    (`iiif-server text import`), into the archive in `data`; masters in `src`, the index in `text`."""
    (src / TRANSPORT_LIST).mkdir()
    transport_page(src / TRANSPORT_LIST / "p1.png")
    rows = ["document,page,text,x,y,w,h,kind"]
    rows += [f'{TRANSPORT_LIST},{p},"{t}",{x},{y},{w},{h},name' for p, t, x, y, w, h in NAMES]
    text.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for collection, label, tier in ((TRANSPORTS, "Transport lists", "public"),
                                    (TRANSPORTS_RR, "Transport lists (reading room)", "reading-room")):
        cli("ingest", str(src), "--collection", collection, "--label", label, "--tier", tier,
            "--processes", "1", "--data-dir", str(data))
        cli("text", "import", str(text), "--collection", collection, "--data-dir", str(data))


def serve_archive(archive: Archive, *extra: str) -> Iterator[str]:
    proc, url = start_server(["--host", "127.0.0.1", "--data-dir", str(archive.data_dir), "--no-demo", *extra])
    try:
        yield url
    finally:
        stop_server(proc)


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


# -- the access flow's words and signing in, as the viewers show them ----------------------------------

LOGIN_LABEL = "Sign in with an access token"  # the 1.0 login service's label
HEADING = "Restricted material"  # its header
NOTE = "This item can be consulted in the reading room"  # its description
CONFIRM = "Sign in"  # its confirmLabel
SETTLE_MS = 2500  # time for a viewer to ask for whatever it is going to ask for


def sign_in(session: Session, server: str, token: str, click_confirm: Callable[[], None], shot: str) -> None:
    """Open the login window from the viewer and submit the token; the window closes itself."""
    with session.context.expect_page() as popup_info:
        click_confirm()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url.startswith(f"{server}/iiif/auth/login?origin="), popup.url
    popup.fill("input[name=token]", token)
    screenshot(popup, shot)
    with popup.expect_event("close", timeout=15_000):
        popup.click("button[type=submit]")
    assert 200 in session.traffic.statuses(server, "/iiif/auth/login")  # the POST that set the cookie
    assert any(c["name"] == "iiif_access" for c in session.context.cookies(server))


# -- where a viewer drew what, read off a screenshot ---------------------------------------------


def coloured_box(png: bytes, region: dict[str, float], chroma: int = 40) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h, page pixels) of the coloured pixels inside `region` of a screenshot."""
    import numpy as np
    import pyvips

    img = pyvips.Image.new_from_buffer(png, "")
    arr = np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))
    x0, y0 = int(region["x"]), int(region["y"])
    x1, y1 = int(region["x"] + region["width"]), int(region["y"] + region["height"])
    rgb = arr[y0:y1, x0:x1, :3].astype(np.int16)
    mask = (rgb.max(axis=-1) - rgb.min(axis=-1)) >= chroma
    if mask.sum() < 20:
        return None
    ys, xs = np.nonzero(mask)
    return x0 + int(xs.min()), y0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def assert_near(found: tuple[float, float, float, float], expected: tuple[float, float, float, float],
                what: str) -> None:
    """Within 4 px plus 5 % of the box's size on each edge (stroke widths, rounding)."""
    fx, fy, fw, fh = found
    ex, ey, ew, eh = expected
    tol_x, tol_y = 4 + 0.05 * ew, 4 + 0.05 * eh
    edges = [(fx, ex, tol_x), (fx + fw, ex + ew, tol_x), (fy, ey, tol_y), (fy + fh, ey + eh, tol_y)]
    assert all(abs(a - b) <= t for a, b, t in edges), f"{what}: drawn at {found}, the box maps to {expected}"


VIEWPORT = """() => {
  const state = window.miradorInstance.store.getState();
  const windowId = Object.keys(state.windows)[0];
  const v = state.viewers[windowId];
  const el = document.querySelector('.openseadragon-canvas');
  // x, y and zoom are reported once the viewer has settled (a window may start with bounds only)
  const known = el && v && [v.x, v.y, v.zoom].every(n => typeof n === 'number');
  const r = known && el.getBoundingClientRect();
  return known ? {x: v.x, y: v.y, zoom: v.zoom, left: r.left, top: r.top, width: r.width, height: r.height} : null;
}"""


def mirador_screen_box(view: dict[str, float], box: tuple[int, int, int, int]) -> tuple[float, ...]:
    """An image-pixel box on screen: Mirador lays the canvas out in world units of its pixels; OpenSeadragon's
    zoom is the container's width per world width shown, centred on (x, y)."""
    scale = view["zoom"] * view["width"]
    x, y, w, h = box
    left = view["left"] + view["width"] / 2 + (x - view["x"]) * scale
    top = view["top"] + view["height"] / 2 + (y - view["y"]) * scale
    return left, top, w * scale, h * scale


def grey_blocks(png: bytes, region: dict[str, float]) -> list[tuple[int, int, int, int]]:
    """Screen boxes of the page's untinted grey name blocks inside `region`, top to bottom."""
    import numpy as np
    import pyvips

    img = pyvips.Image.new_from_buffer(png, "")
    arr = np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))
    x0, y0 = int(region["x"]), int(region["y"])
    x1, y1 = int(region["x"] + region["width"]), int(region["y"] + region["height"])
    rgb = arr[y0:y1, x0:x1, :3].astype(np.int16)
    mask = (np.abs(rgb - 90) <= 12).all(axis=-1)
    rows = np.nonzero(mask.sum(axis=1) >= 10)[0]
    blocks = []
    for run in np.split(rows, np.nonzero(np.diff(rows) > 1)[0] + 1) if len(rows) else []:
        cols = np.nonzero(mask[run[0]:run[-1] + 1].any(axis=0))[0]
        blocks.append((x0 + int(cols.min()), y0 + int(run[0]), int(cols.max() - cols.min() + 1), len(run)))
    return blocks
