"""The history of ingest runs: each run's full report (DATA_DIR/reports/ingest-<collection>-<time>.json)
and one summary line per run in `runs.jsonl` beside them, appended when the report is written.

The staff console pages through the summaries newest first (reading only the lines it shows) and opens
one report when asked for its failures; it never reads every report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

INDEX = "runs.jsonl"
SUMMARY = ("collection", "source", "finished", "converted", "unchanged", "failed", "skipped", "not_done",
           "stopped_by")


def summary(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"report": name, **{key: data.get(key) for key in SUMMARY}}


def append(folder: Path, line: dict[str, Any]) -> None:
    """One line, one write, O_APPEND: two runs finishing at once never mix their lines."""
    fd = os.open(folder / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
    finally:
        os.close(fd)


def record(folder: Path, report: Path, data: dict[str, Any]) -> None:
    """After writing `report`: its summary in the index (which is built first from older reports)."""
    ensure_index(folder, skip=report.name)
    append(folder, summary(report.name, data))


def ensure_index(folder: Path, skip: str | None = None) -> Path:
    """The index, built once from the reports already there when it does not exist yet (reports
    written before there was an index), oldest first like the lines appended later."""
    index = folder / INDEX
    if index.exists() or not folder.is_dir():
        return index
    found = []
    for path in folder.glob("ingest-*.json"):
        if path.name == skip:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(summary(path.name, data))
    found.sort(key=lambda s: (str(s.get("finished") or ""), s["report"]))
    tmp = folder / f".{INDEX}.{os.getpid()}"
    tmp.write_text("".join(json.dumps(s, ensure_ascii=False, separators=(",", ":")) + "\n" for s in found),
                   encoding="utf-8")
    try:
        os.link(tmp, index)  # never replaces an index another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return index


def report(folder: Path, name: str) -> dict[str, Any] | None:
    """One run's full report, by its file name (only `ingest-*.json` names in the folder itself)."""
    if "/" in name or "\\" in name or not name.startswith("ingest-") or not name.endswith(".json"):
        return None
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
