"""Collection descriptions from a CSV, one row per collection, read as ingest reads its metadata CSV (UTF-8 or
Windows-1252, commas, semicolons or tabs, headers in any case): every row is applied, found unchanged or
refused with its line, and a file with any refused row applies nothing.

Columns: `id` (required), `label`, `summary`, `description`, `dates`, `provenance`, `rights` (a Creative
Commons or RightsStatements.org URI), `required statement` (or `attribution`), `record` (the archive's own
reference); any other column is a metadata pair named by its header. A column the file has sets its field
for every row (an empty cell clears it); a column it lacks leaves the field as it is; metadata pairs are
replaced by the file's other columns when it has any.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iiif_server.db.descriptions import LIMITS, Description
from iiif_server.ingest.metadata import rights_uri, sheet_with_ids

COLUMNS = {"label": "label", "summary": "summary", "description": "description", "dates": "dates",
           "provenance": "provenance", "rights": "rights", "required statement": "required_statement",
           "required_statement": "required_statement", "attribution": "required_statement", "record": "record"}


@dataclass(frozen=True)
class Row:
    line: int
    description: Description


def check_field(name: str, value: str) -> str | None:
    """A field's value as stored, or ValueError saying what is wrong with it."""
    value = value.strip()
    if len(value) > LIMITS[name]:
        raise ValueError(f"{name.replace('_', ' ')} is longer than {LIMITS[name]} characters")
    if name == "rights" and value:
        try:
            return rights_uri(value)
        except ValueError:
            raise ValueError(f"rights {value!r} is not a Creative Commons or RightsStatements.org URI") from None
    return value


def read_descriptions(path: Path, known: Iterable[str]) -> tuple[list[Row], list[str]]:
    """The rows and the errors (with line numbers); the caller applies all rows or none."""
    known_ids = set(known)
    sheet, problem = sheet_with_ids(path)
    if sheet is None:
        return [], [problem]
    fields = [COLUMNS.get(name) for name in sheet.header]
    twice = sorted({f for f in fields if f and fields.count(f) > 1} | {h for h in sheet.header
                                                                       if h and sheet.header.count(h) > 1})
    if twice:
        return [], [f"{path}:1: {twice[0].replace('_', ' ')!r} is given by two columns"]
    extra = [n for n, name in enumerate(sheet.header) if name and name != "id" and fields[n] is None]
    column = sheet.header.index("id")
    rows: list[Row] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, cells in sheet.records:
        if len(cells) > len(sheet.header) and any(c.strip() for c in cells[len(sheet.header):]):
            errors.append(f"{path}:{line}: {len(cells)} fields where the header names {len(sheet.header)}")
            continue
        cells = cells + [""] * (len(sheet.header) - len(cells))
        ident = cells[column].strip()
        if not ident:
            errors.append(f"{path}:{line}: empty id")
            continue
        if ident not in known_ids:
            errors.append(f"{path}:{line}: no collection {ident!r} in the catalogue")
            continue
        if ident in seen:
            errors.append(f"{path}:{line}: collection {ident!r} is already on line {seen[ident]}")
            continue
        seen[ident] = line
        values: dict[str, Any] = {}
        try:
            for n, field in enumerate(fields):
                if field is not None:
                    values[field] = check_field(field, cells[n])
        except ValueError as exc:
            errors.append(f"{path}:{line}: {exc}")
            continue
        if extra:
            values["metadata_pairs"] = [[sheet.shown[n], cells[n].strip()] for n in extra if cells[n].strip()]
        rows.append(Row(line, Description(ident, values)))
    return rows, errors
