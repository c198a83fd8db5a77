"""OCR's misreadings (issue 20): each word of the vocabulary of three letters or more also under its reading in
text_keys ("~" + the word with the registers' spellings and the letters OCR confuses written one way), so a
search finds `Birnfelcl` for Birnfeld and `Go1dbergh` for Goldbergh by equality.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CHUNK = 5000


def upgrade() -> None:
    bind = op.get_bind()
    last = ""
    while True:
        words = [w for (w,) in bind.execute(sa.text("SELECT norm FROM text_vocab WHERE norm > :last ORDER BY norm "
                                                   "LIMIT :n"), {"last": last, "n": CHUNK})]
        if not words:
            break
        rows = [{"key": "~" + _reading(w), "norm": w} for w in words if len(w) >= 3]
        if rows:
            bind.execute(sa.text("INSERT INTO text_keys (key, norm) VALUES (:key, :norm)"), rows)
        last = words[-1]


def downgrade() -> None:
    op.execute("DELETE FROM text_keys WHERE key LIKE '~%'")


# -- frozen: the reading of a word as it is at this revision -----------------------------------------------------
# (copied, not imported: a migration must give the same tables whatever the code becomes later)

_REGISTERS = (("tsch", "cz"), ("tch", "cz"), ("witz", "wicz"), ("sch", "sz"), ("sh", "sz"), ("tz", "c"),
              ("ck", "k"), ("ph", "f"), ("gh", "g"), ("v", "w"), ("eij", "y"), ("aj", "y"), ("ai", "y"),
              ("ay", "y"), ("ei", "y"), ("ey", "y"), ("ej", "y"), ("ij", "y"))
_REGISTER_PATTERN = re.compile("|".join(re.escape(a) for a, _ in _REGISTERS))
_REGISTER_MAP = dict(_REGISTERS)
_DOUBLED = re.compile(r"(.)\1+")
_MISREAD_PAIRS = (("cl", "d"), ("rn", "m"), ("vv", "w"), ("ii", "u"))
_MISREAD_LETTERS = str.maketrans({"1": "l", "i": "l", "|": "l", "0": "o", "5": "s", "2": "z", "8": "b", "c": "e",
                                  "u": "n"})


def _pairs(text: str) -> str:
    for a, b in _MISREAD_PAIRS:
        text = text.replace(a, b)
    return text


def _reading(norm: str) -> str:
    written = _REGISTER_PATTERN.sub(lambda m: _REGISTER_MAP[m.group(0)], norm.replace("lj", "ij")).replace("szt", "st")
    return _DOUBLED.sub(r"\1", _pairs(_pairs(_DOUBLED.sub(r"\1", written)).translate(_MISREAD_LETTERS)))
