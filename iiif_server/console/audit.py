"""The audit log as the console shows it: newest first, filtered by holder, collection and date, in
pages keyed by byte position; and as CSV, streamed from the first day asked for.

The log is JSON lines appended in time order (observe.JsonLines): staff actions (`event: staff`) and
granted restricted accesses. A date bound is found by bisection; a holder or collection filter reads
at most `SCAN` bytes per page and then offers to search on, so no request reads the whole log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iiif_server.console import tail

SCAN = 8 * 1024 * 1024  # bytes a filtered page may read before it stops and offers to search on
COLUMNS = ("time", "event", "action", "holder", "token_id", "network", "client", "target", "tier", "detail")
SHOWN = {"time", "event", "action", "holder", "token_id", "network", "partner", "via", "client", "target",
         "identifier", "tier"}


@dataclass(frozen=True)
class Filter:
    holder: str = ""
    collection: str = ""
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive

    @classmethod
    def parse(cls, params: Any) -> Filter:
        return cls(str(params.get("holder", "")).strip()[:200], str(params.get("collection", "")).strip()[:200],
                   _date(params.get("since")), _date(params.get("until")))

    @property
    def since_text(self) -> str | None:
        return self.since.isoformat() if self.since else None

    @property
    def end_text(self) -> str | None:
        """Times below this are on or before `until` (ISO times compare as text)."""
        return (self.until + dt.timedelta(days=1)).isoformat() if self.until else None

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("holder", self.holder), ("collection", self.collection),
                                  ("since", self.since_text or ""), ("until", self.until.isoformat()
                                                                     if self.until else "")) if v}

    def may_match(self, line: bytes) -> bool:
        """A cheap test on the raw line before it is parsed (the JSON holds these texts as they are)."""
        for needle in (self.holder, self.collection):
            if needle and '"' not in needle and "\\" not in needle and needle.lower().encode() not in line.lower():
                return False
        return True

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.holder:
            wanted = self.holder.lower()
            names = [entry.get(k) for k in ("holder", "token_holder", "token_id", "network", "partner")]
            if not any(isinstance(n, str) and wanted in n.lower() for n in names):
                return False
        if self.collection:
            what = entry.get("identifier") or entry.get("target")
            colls = entry.get("collections") if isinstance(entry.get("collections"), list) else []
            if not ((isinstance(what, str) and what.split("/")[0] == self.collection) or self.collection in colls):
                return False
        return True


@dataclass(frozen=True)
class Page:
    entries: list[dict[str, Any]]
    older: int | None  # the cursor of the next page (older entries), None at the beginning
    cut: bool  # the page ended because it read `SCAN` bytes, not because it was full


def page(path: Path, flt: Filter, before: int | None, limit: int, budget: int = SCAN) -> Page:
    end = tail.size(path)
    if flt.end_text:
        end = min(end, tail.first_at_or_after(path, "time", flt.end_text))
    if before is not None:
        end = min(end, before)
    entries: list[dict[str, Any]] = []
    last = end
    for start, line in tail.backwards(path, end, budget):
        last = start
        if not flt.may_match(line):
            continue
        entry = tail.parse(line)
        if entry is None:
            continue
        if flt.since_text and str(entry.get("time", "")) < flt.since_text:
            return Page(entries, None, False)
        if flt.matches(entry):
            entries.append(_shown(entry))
            if len(entries) >= limit:
                return Page(entries, start if start > 0 else None, False)
    return Page(entries, last if last > 0 else None, last > 0)


def rows(path: Path, flt: Filter) -> Iterator[dict[str, Any]]:
    """Every matching entry, oldest first (for the CSV)."""
    start = tail.first_at_or_after(path, "time", flt.since_text) if flt.since_text else 0
    for _, line in tail.forwards(path, start):
        if not flt.may_match(line):
            continue
        entry = tail.parse(line)
        if entry is None:
            continue
        if flt.end_text and str(entry.get("time", "")) >= flt.end_text:
            return
        if flt.matches(entry):
            yield entry


def csv_lines(path: Path, flt: Filter) -> Iterator[str]:
    """The CSV, one row at a time (a StreamingResponse sends each as it comes)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)  # a `;` in a cell stays in it where `;` separates (Belgium)

    def row(values: list[Any]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow([_cell(v) for v in values])
        return out.getvalue()

    yield row(list(COLUMNS))
    for entry in rows(path, flt):
        shown = _shown(entry)
        yield row([shown["time"], shown["event"], shown["action"], shown["holder"], shown["token_id"],
                   shown["network"], shown["client"], shown["target"], shown["tier"], shown["detail"]])


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry in the columns the console shows: who, what, when, where and the rest as detail."""
    staff = entry.get("event") == "staff"
    detail = {k: v for k, v in entry.items() if k not in SHOWN}
    return {
        "time": entry.get("time", ""),
        "event": "staff action" if staff else "access",
        "action": entry.get("action") if staff else f"{entry.get('access', 'allow')} {entry.get('kind') or ''}".strip(),
        "holder": entry.get("holder") or "",
        "token_id": entry.get("token_id") or "",
        "network": (entry.get("via") if staff else _network(entry)) or "",
        "client": entry.get("client") or "",
        "target": (entry.get("target") if staff else entry.get("identifier")) or "",
        "tier": entry.get("tier") or "",
        "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
        "token_holder": entry.get("token_holder") or "",
    }


def _network(entry: dict[str, Any]) -> str:
    """The network tier an access came from, with the institution its rule names: `reading-room: Partner X`."""
    network, partner = entry.get("network") or "", entry.get("partner")
    return f"{network}: {partner}" if network and isinstance(partner, str) and partner else network


# what makes a spreadsheet read a cell as a formula, full-width forms included; and what may end a cell where
# a spreadsheet splits on other separators than ours (`;` in Belgium, a tab, a line)
FORMULA = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
_BREAKS = re.compile(r"([,;\t\r\n])")


def _cell(value: Any) -> str:
    """Text a spreadsheet shows as text: every part of a cell that could start a formula, even after blanks and
    wherever a spreadsheet might start a cell, gets a leading apostrophe."""
    text = "" if value is None else str(value)
    parts = _BREAKS.split(text)
    for n in range(0, len(parts), 2):
        if parts[n].lstrip(" \u00a0\u3000")[:1] in FORMULA:
            parts[n] = "'" + parts[n]
    return "".join(parts)


def _date(text: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text or "").strip()[:10])
    except ValueError:
        return None
