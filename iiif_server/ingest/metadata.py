"""The metadata CSV of an ingest: one row per document (id, label, date, tier, summary, rights, any other
column as a metadata pair), read whole and checked before anything is applied."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from iiif_server.db.ingest import DocumentFields, utc
from iiif_server.db.models import TIERS
from iiif_server.ingest.convert import describe
from iiif_server.ingest.scan import nfc

_CSV_KNOWN = {"id", "label", "date", "tier", "summary", "rights"}


# Presentation 3.0 `rights`: a Creative Commons or RightsStatements.org URI (the validator wants http)
_RIGHTS = re.compile(r"https?://(creativecommons\.org/(licenses|publicdomain)|rightsstatements\.org/vocab)/\S+")


@dataclass(frozen=True)
class CsvRow(DocumentFields):
    """A document's fields as one line of the CSV gives them."""

    line: int = 0


def parse_date(text: str) -> dt.datetime:
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return utc(dt.datetime.fromisoformat(text))  # a time without a zone is UTC, not this machine's zone


def rights_uri(text: str) -> str:
    """A rights URI as Presentation 3.0 wants it (http), or ValueError."""
    if not _RIGHTS.fullmatch(text):
        raise ValueError(text)
    return "http://" + text.split("://", 1)[1]


def read_metadata_csv(path: Path, known: Iterable[str], tiers: tuple[str, ...] = TIERS,
                      aliases: dict[str, str] | None = None) -> tuple[list[CsvRow], list[str]]:
    """Rows and errors (with line numbers); the caller applies all rows or none.

    An `id` is the folder name as it is on disk (any Unicode normal form) or the document's id;
    `aliases` maps names to ids where they differ (documents stored before names were kept)."""
    known_ids = set(known)
    aliases = aliases or {}
    rows: list[CsvRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            if not reader.fieldnames or "id" not in reader.fieldnames:
                return [], [f"{path}:1: the header needs an 'id' column"]
            extra = [name for name in reader.fieldnames if name not in _CSV_KNOWN]
            for record in reader:
                line = reader.line_num
                if None in record or any(v is None for v in record.values()):
                    errors.append(f"{path}:{line}: wrong number of fields")
                    continue
                ident = nfc(record["id"].strip())
                if not ident:
                    errors.append(f"{path}:{line}: empty id")
                    continue
                if ident not in known_ids:
                    errors.append(f"{path}:{line}: no document {ident!r} in this collection")
                    continue
                ident = aliases.get(ident, ident)
                if ident in seen:
                    errors.append(f"{path}:{line}: document {ident!r} is already on line {seen[ident]}")
                    continue
                seen[ident] = line
                date = None
                if (record.get("date") or "").strip():
                    try:
                        date = parse_date(record["date"].strip())
                    except ValueError:
                        errors.append(f"{path}:{line}: date {record['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
                        continue
                tier = (record.get("tier") or "").strip() or None
                if tier is not None and tier not in tiers:
                    errors.append(f"{path}:{line}: tier {tier!r} is not one of {', '.join(tiers)}")
                    continue
                rights = (record.get("rights") or "").strip() or None
                if rights is not None:
                    try:
                        rights = rights_uri(rights)
                    except ValueError:
                        errors.append(f"{path}:{line}: rights {rights!r} is not a Creative Commons or "
                                      "RightsStatements.org URI")
                        continue
                metadata = [[name, record[name].strip()] for name in extra if record[name].strip()]
                rows.append(CsvRow(ident=ident, label=(record.get("label") or "").strip() or None, date=date,
                                   tier=tier, summary=(record.get("summary") or "").strip() or None, rights=rights,
                                   metadata=metadata, line=line))
        except (csv.Error, UnicodeDecodeError) as exc:  # not CSV, or not UTF-8: said, not a traceback
            errors.append(f"{path}:{reader.line_num + 1}: unreadable: {describe(exc)}")
    return rows, errors


def csv_ids(path: Path) -> list[str]:
    """The document ids a metadata CSV names (its errors are reported when it is read in full)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [(row.get("id") or "").strip() for row in csv.DictReader(fh) if row.get("id")]
    except (csv.Error, UnicodeDecodeError, AttributeError):
        return []


class CsvError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
