"""The request limits are settings: a flag and an environment variable each, today's values as defaults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support import quadrants, raw_request, start_server, stop_server

from iiif_server import config
from iiif_server.cli import main
from iiif_server.runtime.bounds import Bounds

DEFAULTS = {"max_head_bytes": 32768, "max_url_bytes": 8192, "max_header_fields": 100, "head_timeout": 10,
            "max_form_bytes": 16384, "form_timeout": 10, "keep_alive_timeout": 5}


def test_defaults_are_the_limits_that_were_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEFAULTS:
        monkeypatch.delenv(config.ENV_PREFIX + name.upper(), raising=False)
    settings = config.load()
    assert {name: getattr(settings, name) for name in DEFAULTS} == DEFAULTS
    assert Bounds.from_settings(settings) == Bounds()


def test_each_limit_has_a_flag_and_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    for name in DEFAULTS:
        assert "--" + name.replace("_", "-") in usage, name
        assert config.ENV_PREFIX + name.upper() in usage, name
    monkeypatch.setenv("IIIF_SERVER_MAX_URL_BYTES", "1024")
    monkeypatch.setenv("IIIF_SERVER_FORM_TIMEOUT", "3")
    settings = config.load({"max_head_bytes": "4096"})
    assert (settings.max_url_bytes, settings.form_timeout, settings.max_head_bytes) == (1024, 3, 4096)
    monkeypatch.setenv("IIIF_SERVER_MAX_HEADER_FIELDS", "0")
    with pytest.raises(ValueError, match="max_header_fields"):
        config.load()


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("limit-images")
    quadrants(64, 48).pngsave(str(root / "tiny.png"))
    data = tmp_path_factory.mktemp("limit-data")
    proc, url = start_server(["--images", str(root), "--data-dir", str(data), "--no-demo",
                              "--max-head-bytes", "4096", "--max-header-fields", "20", "--head-timeout", "2",
                              "--max-form-bytes", "2048"],
                             env={"IIIF_SERVER_MAX_URL_BYTES": "1024"})
    yield url
    stop_server(proc)


def get(url: str, path: bytes = b"/healthz", extra: bytes = b"") -> tuple[int, bytes]:
    return raw_request(url, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra + b"\r\n")


def test_the_server_enforces_the_configured_limits(tight_server: str) -> None:
    url = tight_server
    # head size: 3,000 bytes of header pass, 5,000 do not (the default would take both)
    assert get(url, extra=b"X-Pad: " + b"p" * 3000 + b"\r\n")[0] == 200
    status, answer = get(url, extra=b"X-Pad: " + b"p" * 5000 + b"\r\n")
    assert status == 431 and b"4096 bytes" in answer
    # header fields
    assert get(url, extra=b"".join(b"X-%d: 1\r\n" % i for i in range(15)))[0] == 200
    assert get(url, extra=b"".join(b"X-%d: 1\r\n" % i for i in range(25)))[0] == 431
    # URL length, from the environment variable
    assert get(url, b"/iiif/3/" + b"a" * 900 + b"/info.json")[0] == 404
    status, answer = get(url, b"/iiif/3/" + b"a" * 2000 + b"/info.json")
    assert status == 414 and b"1024 bytes" in answer
    # a trickled head is cut off after the configured 2 s, not the default 10
    started = time.monotonic()
    status, _ = raw_request(url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    assert status == 408 and time.monotonic() - started < 6
    # the sign-in form's body
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url + "/iiif/auth/login", content=b"token=" + b"A" * 3000, headers=form).status_code == 413
    small = httpx.post(url + "/iiif/auth/login", content=b"token=" + b"A" * 1500, headers=form)
    assert small.status_code != 413 and small.status_code < 500


def test_the_protocol_reads_the_bounds_of_its_process(tmp_path: Path) -> None:
    """The app sets this process's bounds from its settings; a connection made afterwards uses them."""
    from iiif_server.runtime import bounds
    from iiif_server.web.app import create_app

    before = bounds.current()
    try:
        create_app(config.Settings(data_dir=tmp_path, images=tmp_path, demo=False, max_url_bytes=2048))
        assert bounds.current().url_bytes == 2048
        assert "2048 bytes" in bounds.current().reason(414)
    finally:
        bounds.configure(before)
