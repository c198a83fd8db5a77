"""The metadata CSV as spreadsheets really write it (issue 18): Excel in Belgium writes `;` between columns,
Windows-1252 text, blank formatted rows and headers in its own case; every such file was refused before, with
a message blaming the header."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import quadrants

from iiif_server.db.catalogue import Catalogue
from iiif_server.ingest.metadata import read_metadata_csv
from iiif_server.ingest.run import Ingest

BELGIAN_EXCEL = ("ID;Label;Date;Tier;Type\r\n"
                 "brief-1;Lettre de Léon – 1942;1942-07;reading-room;Brief\r\n"
                 ";;;;\r\n"
                 "  ;  ;;;\r\n"
                 "brief-2;Brief van Één € ;1943;;Foto\r\n"
                 ";;;;\r\n")


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig", "utf-8"])
def test_a_belgian_excel_csv_is_read_as_written(tmp_path: Path, encoding: str) -> None:
    csv = tmp_path / "metadata.csv"
    csv.write_bytes(BELGIAN_EXCEL.encode(encoding))
    rows, errors = read_metadata_csv(csv, {"brief-1", "brief-2"})
    assert errors == []
    assert [(r.ident, r.label, r.tier, r.metadata) for r in rows] == [
        ("brief-1", "Lettre de Léon – 1942", "reading-room", [["Type", "Brief"]]),
        ("brief-2", "Brief van Één €", None, [["Type", "Foto"]]),
    ]
    assert rows[0].date is not None and (rows[0].date.year, rows[0].date.month) == (1942, 7)


@pytest.mark.parametrize(("content", "said"), [
    ("name;label\r\nbrief-1;x\r\n", "no column is called 'id' (read as UTF-8 with semicolons between columns, "
                                    "the first line names 'name', 'label')"),
    ("ID\tLabel\r\nbrief-1\tx\r\n", None),  # tabs: fine
    ("", "the file is empty"),
    (";;;\r\n;;\r\n", "the file is empty"),
    ("id;Label;label\r\nbrief-1;a;b\r\n", "column 'label' is named twice"),
])
def test_what_is_wrong_with_a_csv_is_said_as_it_is(tmp_path: Path, content: str, said: str | None) -> None:
    csv = tmp_path / "metadata.csv"
    csv.write_text(content, encoding="utf-8")
    rows, errors = read_metadata_csv(csv, {"brief-1"})
    if said is None:
        assert errors == [] and [r.ident for r in rows] == ["brief-1"]
    else:
        assert len(errors) == 1 and said in errors[0], errors


def test_an_ingest_applies_a_belgian_excel_csv(tmp_path: Path) -> None:
    catalogue = Catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}")
    catalogue.upgrade()
    src = tmp_path / "masters"
    for doc in ("brief-1", "brief-2"):
        (src / doc).mkdir(parents=True)
        quadrants(64, 48).jpegsave(str(src / doc / "p1.jpg"))
    csv = tmp_path / "metadata.csv"
    csv.write_bytes(BELGIAN_EXCEL.encode("cp1252"))
    report = Ingest(catalogue, tmp_path / "images", "letters", workers=1).run(src, csv)
    assert report.failed == [] and report.converted == 2
    assert catalogue.document("letters", "brief-1").label == "Lettre de Léon – 1942"
    assert catalogue.document("letters", "brief-1").tier == "reading-room"
    catalogue.engine.dispose()
