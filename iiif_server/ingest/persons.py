"""`iiif-server persons import`: the archive's list of deportees, one row a person, into the catalogue.

The CSV is read as a spreadsheet wrote it (`metadata.read_sheet`: UTF-8 or Windows-1252; commas, semicolons
or tabs; headers in any case). Columns, by name (the usual variants are understood):

    id, surname, given names, birth date, birth place, nationality, transport, number,
    portrait, list page, line box, transport date, destination

A birth date is kept as precise as given: `1921`, `1921-03` or `1921-03-12` (also `12.03.1921`, `03/1921`).
`portrait` names the portrait page(s) (`collection/document/page`, or `collection/document` for its first
page; several separated by `|`); `list page` and `line box` (`x,y,w,h` in the page's pixels) the person's line
on a transport list. Every row becomes a person or is reported with its line number and reason; a link to a
page the catalogue does not hold is reported and left out, the person kept.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import LINE, PORTRAIT
from iiif_server.db.persons import Imported, LinkSpec, PersonFields, check_date
from iiif_server.ingest.metadata import read_sheet

COLUMNS = {  # a column's name (lower case, `_` and `-` as spaces) -> what it gives
    "id": "id", "person id": "id", "identifier": "id",
    "surname": "surname", "family name": "surname", "last name": "surname", "name": "surname", "nom": "surname",
    "given names": "given_names", "given name": "given_names", "first names": "given_names",
    "first name": "given_names", "forenames": "given_names", "prenom": "given_names", "prénom": "given_names",
    "prénoms": "given_names", "prenoms": "given_names",
    "birth date": "birth_date", "date of birth": "birth_date", "born": "birth_date", "birthdate": "birth_date",
    "birth place": "birth_place", "place of birth": "birth_place", "birthplace": "birth_place",
    "nationality": "nationality",
    "transport": "transport",
    "number": "number", "number on the list": "number", "list number": "number", "no": "number",
    "portrait": "portrait", "portraits": "portrait",
    "list page": "list_page", "list": "list_page",
    "line box": "line_box", "box": "line_box",
    "transport date": "transport_date", "destination": "destination",
}
REQUIRED = ("id", "surname")
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DMY = re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})")
_MY = re.compile(r"(\d{1,2})[./](\d{4})")
_YMD = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


@dataclass
class Report:
    rows: int = 0
    people: int = 0
    errors: list[str] = field(default_factory=list)  # "line: reason", rows not imported
    imported: Imported | None = None


class RowError(ValueError):
    pass


def parse_birth(text: str, what: str = "birth date") -> str | None:
    """A date as precise as given, as `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; RowError when not a date."""
    text = text.strip()
    if not text:
        return None
    try:
        if m := _YMD.fullmatch(text):
            return check_date(int(m[1]), int(m[2]) if m[2] else None, int(m[3]) if m[3] else None)
        if m := _DMY.fullmatch(text):
            return check_date(int(m[3]), int(m[2]), int(m[1]))
        if m := _MY.fullmatch(text):
            return check_date(int(m[2]), int(m[1]))
    except ValueError:
        pass
    raise RowError(f"{what} {text!r} is not a date (YYYY, YYYY-MM, YYYY-MM-DD, DD.MM.YYYY or MM/YYYY)")


def parse_target(text: str) -> tuple[str, ...]:
    parts = tuple(p for p in text.strip().strip("/").split("/"))
    if len(parts) not in (2, 3) or not all(parts):
        raise RowError(f"page {text!r} is not collection/document/page (or collection/document)")
    return tuple(unicodedata.normalize("NFC", p) for p in parts)


def parse_box(text: str) -> tuple[int, int, int, int]:
    values = [v.strip() for v in text.removeprefix("xywh=").split(",")]
    try:
        x, y, w, h = (int(float(v)) for v in values)
    except ValueError:
        raise RowError(f"line box {text!r} is not x,y,w,h") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise RowError(f"line box {text!r} is not a region")
    return x, y, w, h


def clean(text: str | None, limit: int) -> str:
    return unicodedata.normalize("NFC", " ".join((text or "").split()))[:limit]


def read_persons(path: Path) -> tuple[list[PersonFields], list[LinkSpec], Report]:
    """Every row as a person (with its links), or an error with its line number and reason."""
    report = Report()
    try:
        sheet = read_sheet(path)
    except (OSError, ValueError, csv.Error) as exc:
        report.errors.append(f"{path.name}: unreadable: {exc}")
        return [], [], report
    names = [COLUMNS.get(" ".join(h.replace("_", " ").replace("-", " ").split()), "") for h in sheet.header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        shown = ", ".join(repr(h) for h in sheet.shown[:12])
        report.errors.append(f"1: no column for {' and '.join(missing)} (the first line names {shown})")
        return [], [], report
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        report.errors.append(f"1: two columns give {twice[0].replace('_', ' ')}")
        return [], [], report
    people: list[PersonFields] = []
    links: list[LinkSpec] = []
    seen: dict[str, int] = {}
    for line, cells in sheet.records:
        report.rows += 1
        if len(cells) > len(names) and any(c.strip() for c in cells[len(names):]):
            report.errors.append(f"{line}: {len(cells)} fields where the header names {len(names)}")
            continue
        row = {name: cells[n].strip() for n, name in enumerate(names) if name and n < len(cells)}
        try:
            person, own = _person(row, line)
        except RowError as exc:
            report.errors.append(f"{line}: {exc}")
            continue
        if person.id in seen:
            report.errors.append(f"{line}: person {person.id} is already on line {seen[person.id]}")
            continue
        seen[person.id] = line
        people.append(person)
        links += own
    report.people = len(people)
    return people, links, report


def _person(row: dict[str, str], line: int) -> tuple[PersonFields, list[LinkSpec]]:
    ident = row.get("id", "")
    if not ident:
        raise RowError("empty id")
    if not IDENT.fullmatch(ident):
        raise RowError(f"id {ident[:40]!r} is not letters, digits, '.', '_' or '-' (at most 100)")
    surname = clean(row.get("surname"), 500)
    if not surname:
        raise RowError(f"person {ident} has no surname")
    links = []
    for text in (row.get("portrait") or "").split("|"):
        if text.strip():
            links.append(LinkSpec(ident, PORTRAIT, parse_target(text), None, line))
    page, box = row.get("list_page", ""), row.get("line_box", "")
    if page and box:
        links.append(LinkSpec(ident, LINE, parse_target(page), parse_box(box), line))
    elif page or box:
        raise RowError("a list page needs its line box, and a line box its list page")
    transport_date = row.get("transport_date", "")
    person = PersonFields(
        id=ident, surname=surname, given_names=clean(row.get("given_names"), 500),
        birth_date=parse_birth(row.get("birth_date", "")), birth_place=clean(row.get("birth_place"), 500) or None,
        nationality=clean(row.get("nationality"), 200) or None, transport=clean(row.get("transport"), 50) or None,
        number=clean(row.get("number"), 20) or None,
        transport_date=parse_birth(transport_date, "transport date") if transport_date else None,
        destination=clean(row.get("destination"), 500) or None, line=line)
    return person, links


def import_persons(catalogue: Catalogue, path: Path, remove_missing: bool = False) -> Report:
    """Read the file and write what it gives (nothing when no row is good)."""
    people, links, report = read_persons(path)
    if people:
        report.imported = catalogue.import_persons(people, links, remove_missing)
    return report
