"""The official IIIF Image API validator, every level 2 test, against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from support import VALIDATOR_ID

pytestmark = pytest.mark.libvips  # the official validator


@pytest.mark.parametrize(("version", "prefix"), [("3.0", "iiif/3"), ("2.0", "iiif/2")])
def test_official_validator_level2_passes(live_server: str, version: str, prefix: str) -> None:
    # beside this Python first: the venv's scripts, even when its bin folder is not on PATH
    beside = Path(sys.executable).parent / "iiif-validate.py"
    script = str(beside) if beside.exists() else shutil.which("iiif-validate.py")
    assert script, "iiif-validator is not installed"
    host = urlparse(live_server).netloc
    cmd = [sys.executable, script, "-s", host, "-p", prefix, "-i", VALIDATOR_ID, "--version", version, "--level", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    done = re.search(r"Done \((\d+) tests, (\d+) failures\)", text)
    assert done, text
    total, failures = int(done.group(1)), int(done.group(2))
    print(f"\niiif-validator {version} level 2: {total - failures}/{total} passed")
    assert failures == 0, text
    assert total >= 29
    assert out.returncode == 0, text
