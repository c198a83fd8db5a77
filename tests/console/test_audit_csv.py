"""audit.csv as a spreadsheet opens it: every cell quoted, none read as a formula (issue 17, finding 13)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from iiif_server.console.audit import Filter, csv_lines

HOSTILE = ["x;=1+1", " =1+1", "\t=1+1", "\n=1+1", "\uff1d1+1", "\uff0bcmd", "\uff0d1", "\uff20SUM(A1)", "+1", "-1",
           "=cmd|' /C calc'!A0", "@SUM(1)", "\u3000=1", "\u00a0+1", "a,=HYPERLINK(1)", "a\r\n+1"]
FORMULA = set("=+-@\uff1d\uff0b\uff0d\uff20")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_that_could_start_a_formula_is_text(tmp_path: Path, value: str) -> None:
    log = tmp_path / "audit.jsonl"
    entry = {"time": "2026-12-07T10:00:00Z", "event": "staff", "action": "withdraw", "holder": value,
             "target": value, "client": "192.0.2.1", "reason": value}
    log.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    text = "".join(csv_lines(log, Filter()))
    for separator in (",", ";", "\t"):  # as Excel reads it in Belgium, too: wherever a cell may start
        for row in csv.reader(io.StringIO(text), delimiter=separator):
            for field in row:
                for piece in re.split(r"[,;\t\r\n]", field):
                    start = piece.lstrip(' "\u00a0\u3000')[:1]
                    assert start not in FORMULA, (separator, field)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][3].replace("'", "") == value.replace("'", "")  # the holder, whole but for apostrophes
