"""Access copies are durable before they are published (issue 18): traced with strace, each copy is flushed
to disk before the catalogue's commit, renamed into place only after it, and the rename is flushed too (its
folder synced). A power cut at any point then finds either no page, or a whole one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import quadrants

REQUIRE = "IIIF_SERVER_REQUIRE_STRACE"
# a call another process interrupted is split in two lines: "<unfinished ...>", then "<... fsync resumed>"
FSYNC = re.compile(r"^(\d+) +(?:fsync|fdatasync)\(\d+<([^>]*)>(?:\) += 0| <unfinished \.\.\.>)")
RENAME = re.compile(r'^(\d+) +rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)"(?:, \w+)?\) += 0')


def test_copies_are_flushed_before_the_commit_and_renamed_after_it(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set but strace is not installed")
        pytest.skip("needs strace (Debian: apt-get install strace)")
    src, root, trace = tmp_path / "masters", tmp_path / "images", tmp_path / "trace.txt"
    for doc in ("a", "b"):
        (src / doc).mkdir(parents=True)
        for n in (1, 2):
            quadrants(300, 200).pngsave(str(src / doc / f"p{n}.png"))
    database = tmp_path / "catalogue.db"
    done = subprocess.run([strace, "-f", "-y", "-qq", "-o", str(trace), "-e", "trace=fsync,fdatasync,rename,renameat,"
                           "renameat2", sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection",
                           "letters", "--workers", "1", "--database", f"sqlite:///{database}", "--images", str(root),
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    synced: list[tuple[int, str]] = []  # (line number, path) of each successful fsync
    renamed: dict[str, tuple[int, str]] = {}  # final path -> (line number, staged path)
    for number, line in enumerate(trace.read_text().splitlines()):
        line = re.sub(r"^\[pid +(\d+)\]", r"\1", line)
        if m := FSYNC.match(line):
            synced.append((number, m.group(2)))
        elif m := RENAME.match(line):
            renamed[m.group(3)] = (number, m.group(2))
    finals = sorted(str(p) for p in root.rglob("*.tif"))
    assert len(finals) == 4, finals
    for final in finals:
        at, staged = renamed[final]
        flushed = [n for n, path in synced if path == staged]
        commits = [n for n, path in synced if path.startswith(str(database))]  # the catalogue or its WAL
        assert flushed and flushed[0] < at, f"{final} renamed without being flushed first"
        assert any(flushed[0] < n < at for n in commits), f"{final} renamed before a commit after its flush"
        assert any(n > at and path == str(Path(final).parent) for n, path in synced), f"{final}'s rename not flushed"
