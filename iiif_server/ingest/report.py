"""What an ingest run did, file by file: converted, unchanged, failed (with the reason), skipped, not done;
rendered one line per file for people and as JSON for the console's history of runs."""

from __future__ import annotations

import datetime as dt
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iiif_server.names import shown


@dataclass
class Report:
    converted: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # hidden and system files, not masters
    not_done: list[Path] = field(default_factory=list)  # masters a stopped run did not convert
    warnings: list[tuple[Path, str]] = field(default_factory=list)  # what a library said of a master it read
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # page, its master gone, kept or withdrawn
    stopped: int | None = None  # the signal that stopped the run
    fatal: str | None = None  # what stopped it because every master would fail (no space left)
    by_others: int = 0  # of `converted`, the pages the processes that joined the run converted (--join)
    helped: str | None = None  # the run this process joined and helped, when it did

    def as_dict(self) -> dict[str, Any]:
        return {
            "converted": self.converted, "unchanged": self.unchanged, "failed": len(self.failed),
            "skipped": len(self.skipped), "not_done": len(self.not_done),
            "stopped_by": signal.Signals(self.stopped).name if self.stopped and not self.fatal else None,
            "fatal": self.fatal, "converted_by_others": self.by_others, "helped_run": self.helped,
            "warnings": [{"path": shown(p), "text": t} for p, t in self.warnings],
            "missing": [{"page": page, "master": shown(master), "page_is": what} for page, master, what in
                        self.missing],
            "failures": [{"path": shown(p), "reason": r} for p, r in self.failed],
            "skipped_files": [{"path": shown(p), "reason": r} for p, r in self.skipped],
            "not_done_masters": [shown(p) for p in self.not_done],
        }


def render_report(report: Any, src: Path, collection: str) -> tuple[str, dict[str, Any]]:
    """The human report (one line per file, never wrapped) and the same as JSON data."""

    from iiif_server.names import shown

    data = {"collection": collection, "source": shown(src), "finished": dt.datetime.now(dt.UTC).isoformat(),
            **report.as_dict()}
    lines = [f"ingest of {shown(src)} into {collection}, finished {data['finished']}"]
    lines += [f"failed {shown(path)}: {reason}" for path, reason in report.failed]
    lines += [f"skipped {shown(path)}: {reason}" for path, reason in report.skipped]
    lines += [f"not done {shown(path)}" for path in report.not_done]
    lines += [f"warning {shown(path)}: {shown(text)}" for path, text in report.warnings]
    lines += [f"missing {shown(page)}: its master {shown(master)} is gone from the source; the page is {what}"
              for page, master, what in report.missing]
    if report.fatal:
        lines.append(f"stopped: {report.fatal}")
    if report.helped:
        lines.append(f"helped run {report.helped}: these are the pages this process did; that run's report has all")
    lines.append(f"{report.converted} converted"
                 + (f" ({report.by_others} by the processes that joined)" if report.by_others else "")
                 + f", {report.unchanged} unchanged, {len(report.failed)} failed, "
                 f"{len(report.skipped)} skipped, {len(report.not_done)} not done")
    return "\n".join(lines) + "\n", data


def write_report(folder: Path, collection: str, text: str, data: dict[str, Any]) -> Path:
    """`<collection>-<time>.txt` and `.json` side by side; returns the .txt path."""
    import json

    from iiif_server.ingest.runs import record

    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"ingest-{collection}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    stem.with_suffix(".txt").write_text(text, encoding="utf-8")
    record(folder, stem.with_suffix(".json"), data)  # the console's history of runs reads this index
    return stem.with_suffix(".txt")
