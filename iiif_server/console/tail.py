"""Reading append-only JSON-lines files (the audit log, the ingest runs' index) newest first, in pages.

A position in such a file is a stable key: lines are only ever appended, so "the lines that start
before byte N" is the same set on every request. Pages are read backwards from such a position in
blocks, so a page costs the bytes it shows (plus what a filter skips, bounded by the caller), never the
whole file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 64 * 1024


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def backwards(path: Path, before: int | None = None, budget: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(start, line) for each whole line that starts before `before` (default: the end), newest first.

    Stops once more than `budget` bytes were read (the caller's page then ends at the last start seen)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        end = os.fstat(fd).st_size if before is None else min(before, os.fstat(fd).st_size)
        read = 0
        rest = b""
        pos = end
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            chunk = os.pread(fd, step, pos) + rest
            read += step
            lines = chunk.split(b"\n")
            rest = lines[0]  # may be the tail of an earlier line: kept for the next block
            offset = pos + len(rest) + 1
            starts = []
            for line in lines[1:]:
                starts.append((offset, line))
                offset += len(line) + 1
            for start, line in reversed(starts):
                if line.strip():
                    yield start, line
            if budget is not None and read > budget:
                return
        if rest.strip():
            yield 0, rest
    finally:
        os.close(fd)


def forwards(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(start, line) for each whole line from byte `start` on (a line start), oldest first."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the generator's finally
    except OSError:
        return
    try:
        fh.seek(start)
        offset = start
        for line in fh:
            if not line.endswith(b"\n"):
                return  # a line still being written
            yield offset, line.rstrip(b"\n")
            offset += len(line)
    finally:
        fh.close()


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def first_at_or_after(path: Path, key: str, value: str) -> int:
    """The start of the first line whose `key` is >= `value`, by bisection over byte positions:
    for files whose lines come in (nearly) ascending order of `key`, such as log times."""
    low, high = 0, size(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return 0
    with fh:
        while high - low > BLOCK:
            mid = (low + high) // 2
            fh.seek(mid)
            fh.readline()  # to the next line start
            start = fh.tell()
            entry = parse(fh.readline()) or {}
            if start >= high or str(entry.get(key, "")) >= value:
                high = mid
            else:
                low = start
        fh.seek(low)
        if low:
            fh.seek(low - 1)
            if fh.read(1) != b"\n":
                fh.readline()
        offset = fh.tell()
        for line in fh:
            entry = parse(line) or {}
            if str(entry.get(key, "")) >= value:
                return offset
            offset += len(line)
        return offset
