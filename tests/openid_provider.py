"""A real OpenID provider for the staff sign-in tests (not a test module): `oidc-provider` from npm, run by
Node.js on 127.0.0.1 with the script tests/openid/provider.mjs, its clients and users written here.

The package is installed once into tests/openid/.npm-cache/ under a file lock (two workers never install at
once). Without Node.js or npm the tests that need it skip with one line; with IIIF_SERVER_REQUIRE_OIDC or
IIIF_SERVER_REQUIRE_BROWSER set (.ci/run sets both) they fail instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from support import TESTS, free_port

HERE = TESTS / "openid"
NPM_DIR = HERE / ".npm-cache"
REQUIRED = ("IIIF_SERVER_REQUIRE_OIDC", "IIIF_SERVER_REQUIRE_BROWSER")

CLIENT_ID = "iiif-console"
CLIENT_SECRET = "a-client-secret-of-the-tests-0123456789abcdef"
PASSWORD = "correct horse battery staple"
# user name: (name, the values of their `roles` claim); the server maps them with ROLE_MAP
USERS = {
    "adam": ("Adam Admin", ["archive-admins"]),
    "anna": ("Anna Archivist", ["archive-archivists", "library-staff"]),
    "rita": ("Rita Reading-Room", ["reading-room-desk"]),
    "aude": ("Aude Auditor", ["auditors"]),
    "nora": ("Nora Nobody", ["library-staff"]),  # signs in at the provider, has no role here
}
ROLE_MAP = ("archive-admins=admin", "archive-archivists=archivist", "reading-room-desk=reading-room",
            "auditors=auditor")
SCOPES = ("openid", "profile", "email", "roles")


def unavailable(reason: str) -> None:
    """Skip, or fail where the provider is required (CI)."""
    for name in REQUIRED:
        if os.environ.get(name):
            pytest.fail(f"{reason} ({name} is set: the OpenID provider tests must run)", pytrace=False)
    pytest.skip(reason)


def install() -> Path:
    """oidc-provider from the npm registry in .npm-cache/, unless it is there at the version asked."""
    wanted = dict(json.loads((HERE / "package.json").read_text())["dependencies"])
    modules = NPM_DIR / "node_modules"

    def installed() -> bool:
        for name, version in wanted.items():
            manifest = modules / name / "package.json"
            if not manifest.exists() or json.loads(manifest.read_text()).get("version") != version:
                return False
        return True

    if shutil.which("node") is None:
        unavailable("Node.js is not installed: the OpenID provider of these tests runs on it (apt-get install npm)")
    if installed():
        return modules
    NPM_DIR.mkdir(exist_ok=True)
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return modules
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed: the OpenID provider of these tests comes from the npm registry")
        shutil.copy(HERE / "package.json", NPM_DIR / "package.json")
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NPM_DIR,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not installed():
            pytest.fail(f"npm install failed in {NPM_DIR}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return modules


@dataclass
class Provider:
    issuer: str
    proc: subprocess.Popen[bytes]
    folder: Path
    redirects: list[str] = field(default_factory=list)

    def tamper(self, mode: str) -> None:
        """The next token answer carries an ID token spoiled so (see provider.mjs)."""
        r = httpx.post(f"{self.issuer}/test/tamper", json={"mode": mode}, timeout=10)
        assert r.status_code == 204, r.text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(redirect_uris: list[str], port: int | None = None) -> Provider:
    """The provider on 127.0.0.1 (on `port`, or a free one), its one client allowed `redirect_uris`."""
    install()
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    users = {name: {"password": PASSWORD, "claims": {"name": full, "preferred_username": name,
                                                     "email": f"{name}@archive.example", "roles": values}}
             for name, (full, values) in USERS.items()}
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris,
              "grant_types": ["authorization_code"], "response_types": ["code"]}
    folder = Path(tempfile.mkdtemp(prefix="openid-provider-"))
    (folder / "config.json").write_text(json.dumps({"issuer": issuer, "port": port, "clients": [client],
                                                    "users": users}))
    # the script goes beside node_modules (Node resolves a module's imports from its own folder), whole
    script = NPM_DIR / "provider.mjs"
    shutil.copy(HERE / "provider.mjs", folder / "provider.mjs")
    os.replace(folder / "provider.mjs", script)
    proc = subprocess.Popen(["node", str(script), str(folder / "config.json")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"the OpenID provider exited: {out[-3000:]}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return Provider(issuer, proc, folder, redirect_uris)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the OpenID provider did not start in time")


def server_settings(provider: Provider, secret_file: Path) -> dict[str, object]:
    """The settings that point a server at `provider` (the secret written to `secret_file`)."""
    secret_file.write_text(CLIENT_SECRET + "\n")
    return {"oidc_issuer": provider.issuer, "oidc_client_id": CLIENT_ID, "oidc_client_secret_file": secret_file,
            "oidc_scopes": SCOPES, "oidc_role_map": ROLE_MAP, "oidc_label": "the archive's account"}


def sign_in_at_provider(authorize: str, user: str, password: str = PASSWORD) -> str:
    """Through the provider's own pages as a browser would: from the authorization URL, its sign-in form,
    to the redirect back to the console (returned, not followed)."""
    with httpx.Client(timeout=10) as browser:
        url = authorize
        for _ in range(12):
            r = browser.get(url)
            if r.status_code == 200 and 'name="password"' in r.text:
                action = unescape(re.search(r'<form method="post" action="([^"]+)"', r.text).group(1))
                r = browser.post(urljoin(url, action), data={"username": user, "password": password})
                if r.status_code == 401:
                    raise AssertionError(f"the provider refused {user}'s password")
            if r.status_code not in (302, 303):
                raise AssertionError(f"the provider answered {r.status_code} at {url}: {r.text[:500]}")
            url = urljoin(url, r.headers["location"])
            if not url.startswith(authorize.split("/auth")[0]):
                return url
    raise AssertionError("the provider never sent the browser back")
