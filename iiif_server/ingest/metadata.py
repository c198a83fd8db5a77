"""The metadata CSV of an ingest: one row per document (id, label, date, tier, summary, rights, any other
column as a metadata pair), read whole and checked before anything is applied."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from iiif_server.db.ingest import DocumentFields, utc
from iiif_server.db.models import TIERS
from iiif_server.ingest.convert import describe
from iiif_server.ingest.scan import nfc

_CSV_KNOWN = {"id", "label", "date", "tier", "summary", "rights"}
_SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}


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


@dataclass(frozen=True)
class Sheet:
    """A CSV as a spreadsheet wrote it: its text decoded, its separator found, its header normalised."""

    header: list[str]  # lower case, stripped: what the columns are called (Excel writes `ID`, ` Label `)
    shown: list[str]  # the header as written, for messages
    records: list[tuple[int, list[str]]]  # (line number, cells) of every row that is not blank
    encoding: str
    separator: str


def sheet_with_ids(path: Path) -> tuple[Sheet | None, str]:
    """The sheet of a CSV whose rows are named by an `id` column, or None and the one line saying why not: the
    file unreadable, or no `id` column (with how it was read, so that the operator sees what went wrong)."""
    try:
        sheet = read_sheet(path)
    except (OSError, ValueError, csv.Error) as exc:
        return None, f"{path}: unreadable: {describe(exc)}"
    if "id" not in sheet.header:
        named = ", ".join(repr(h) for h in sheet.shown[:12]) or "nothing"
        return None, (f"{path}:1: no column is called 'id' (read as {sheet.encoding} with "
                      f"{_SEPARATORS[sheet.separator]} between columns, the first line names {named})")
    return sheet, ""


def read_sheet(path: Path) -> Sheet:
    """UTF-8 (with or without a byte order mark), else Windows-1252 (Excel's "CSV" on Windows in Western Europe);
    `,`, `;` (Excel where the decimal mark is a comma: Belgium, France, the Netherlands) or a tab, whichever the
    header uses; rows that hold nothing but separators and blanks (Excel writes them for formatted empty rows)
    left out. Raises ValueError saying what is wrong."""
    data = path.read_bytes()
    try:
        text, encoding = data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1252", "replace"), "Windows-1252"
    lines = text.splitlines()
    first = next((line for line in lines if line.strip(" \t,;")), "")
    if not first:
        raise ValueError("the file is empty: the first line must name the columns (id, label, date, tier ...)")
    separator = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            continue
        records.append((reader.line_num, cells))
    assert header is not None
    return Sheet([h.lower() for h in header], header, records, encoding, separator)


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
    sheet, problem = sheet_with_ids(path)
    if sheet is None:
        return [], [problem]
    duplicated = sorted({h for h in sheet.header if sheet.header.count(h) > 1 and h})
    if duplicated:
        return [], [f"{path}:1: column {duplicated[0]!r} is named twice"]
    extra = [n for n, name in enumerate(sheet.header) if name and name not in _CSV_KNOWN]
    for line, cells in sheet.records:
        if len(cells) > len(sheet.header) and any(c.strip() for c in cells[len(sheet.header):]):
            errors.append(f"{path}:{line}: {len(cells)} fields where the header names {len(sheet.header)}")
            continue
        record = {name: (cells[n] if n < len(cells) else "") for n, name in enumerate(sheet.header)}
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
        metadata = [[sheet.shown[n], cells[n].strip()] for n in extra if n < len(cells) and cells[n].strip()]
        rows.append(CsvRow(ident=ident, label=(record.get("label") or "").strip() or None, date=date,
                           tier=tier, summary=(record.get("summary") or "").strip() or None, rights=rights,
                           metadata=metadata, line=line))
    return rows, errors


def csv_ids(path: Path) -> list[str]:
    """The document ids a metadata CSV names (its errors are reported when it is read in full)."""
    try:
        sheet = read_sheet(path)
    except (OSError, ValueError, csv.Error):
        return []
    if "id" not in sheet.header:
        return []
    column = sheet.header.index("id")
    return [cells[column].strip() for _, cells in sheet.records if column < len(cells) and cells[column].strip()]


class CsvError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
