"""What a search answers: hits (words on a page, with their boxes and context), pages of hits behind a
cursor, and the tiers that decide which page a requester may read."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.sql.elements import ColumnElement

from iiif_server.errors import RequestError
from iiif_server.words import WORD as _WORD

Box = tuple[int, int, int, int]


Place = tuple[int, str, int]  # an entry's page, source and position


CONTEXT = 12  # words of context read on either side of a hit


def normalise_text(text: str) -> str:
    """The text with each character in its place (NFC): word positions found in it are positions in the text."""
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class Hit:
    id: int
    page: str
    text: str
    kind: str
    boxes: tuple[Box, ...]  # one per line the hit covers
    before: str
    after: str
    tier: int = 0
    rank: int = 0  # the hit's place in the ranking (lower first); with its id, the cursor of the next page
    spans: tuple[tuple[int, int], ...] = ()  # where the words that matched stand in `text`
    whole: bool = False  # `text` is a whole entry (a CSV row) in which the matched words are highlighted

    @property
    def box(self) -> Box:
        return self.boxes[0]

    @property
    def cursor(self) -> str:
        return f"{self.rank}.{self.id}"

    @property
    def matched(self) -> str:
        """The matched words with what stands between them (the whole text when nothing finer is known)."""
        if not self.spans:
            return self.text
        return self.text[self.spans[0][0]:self.spans[-1][1]]


@dataclass(frozen=True)
class Pages:
    """The pages of one document a requester may read: all but `denied`, or (everything=False) only `allowed`."""

    everything: bool
    denied: tuple[int, ...] = ()
    allowed: tuple[int, ...] = ()

    @property
    def none(self) -> bool:
        return not self.everything and not self.allowed

    def clause(self, column: ColumnElement[int]) -> ColumnElement[bool] | None:
        if self.everything:
            return column.not_in(self.denied) if self.denied else None
        return column.in_(self.allowed)


@dataclass(frozen=True)
class Target:
    """A document as the search sees it: its key, and the tiers that decide who reads which page."""

    document_pk: int
    collection_tier: str
    document_tier: str | None
    page_tiers: dict[int, str]  # image pk -> tier, only the pages that set their own


CURSOR_MAX = 2**31 - 1  # every number a cursor carries is a key or a tier: an int column's range


def cursor_number(text: str) -> int:
    """One number of a cursor this server gave, or RequestError (400): never a value the database cannot take."""
    # ASCII digits only (isdigit() takes other scripts' digits), and short enough to convert cheaply
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()) or int(text) > CURSOR_MAX:
        raise RequestError(f"not a cursor this server gave: {text[:40]!r}")
    return int(text)


def parse_cursor(value: str) -> tuple[int, int]:
    """`rank.id` of the last hit shown (a bare id: rank 0); empty: the start; anything else: 400."""
    if not value:
        return 0, 0
    tier, _, ident = value.partition(".")
    if not ident:
        tier, ident = "0", tier
    return cursor_number(tier), cursor_number(ident)


def _box(row: Sequence[object]) -> Box:
    x, y, w, h, width, height = row[6:12]
    return (x, y, w, h) if x is not None else (0, 0, width, height)  # type: ignore[return-value]


def _union(boxes: list[Box]) -> Box:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def _spans(rows: list[Sequence[object]], matched: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Where each matched word ((entry id, its place among the entry's words)) stands in the rows' joined text."""
    wanted = set(matched)
    spans, offset = [], 0
    for row in rows:
        text = str(row[2])
        for k, m in enumerate(_WORD.finditer(normalise_text(text))):
            if (int(row[0]), k) in wanted:  # type: ignore[call-overload]
                spans.append((offset + m.start(), offset + m.end()))
        offset += len(text) + 1
    return tuple(sorted(spans))


def _hit(tier: int, rows: list[Sequence[object]],
         around: dict[Place, tuple[str, int]] | None = None, rank: int = 0,
         matched: Sequence[tuple[int, int]] = ()) -> Hit:
    """One hit of one or more consecutive entries: their words, one box per line they stand on, and the
    words before and after it on its line (from the stored line, or from the neighbouring ALTO words)."""
    first, last = rows[0], rows[-1]
    lines: list[list[Box]] = []
    for n, row in enumerate(rows):
        if n == 0 or row[5] in (0, None):  # an ALTO word at the start of its line begins a new line
            lines.append([])
        lines[-1].append(_box(row))
    before = after = ""
    line, start = first[4], first[5]
    if isinstance(line, str) and isinstance(start, int):
        before = line[:start].rstrip()
    elif around and isinstance(start, int) and start > 0:
        image, source, pos = first[12], first[13], int(first[14])  # type: ignore[call-overload]
        words = []
        for p in range(pos - 1, pos - 1 - CONTEXT, -1):
            if (image, source, p) not in around:
                break
            word, word_start = around[(image, source, p)]  # type: ignore[index]
            words.append(word)
            if word_start == 0:
                break
        before = " ".join(reversed(words))
    line, start = last[4], last[5]
    if isinstance(line, str) and isinstance(start, int):
        after = line[start + len(str(last[2])):].lstrip()
    elif around and isinstance(start, int) and last[14] is not None:
        image, source, pos = last[12], last[13], int(last[14])  # type: ignore[call-overload]
        words = []
        for p in range(pos + 1, pos + 1 + CONTEXT):
            found = around.get((image, source, p))  # type: ignore[arg-type]
            if found is None or found[1] == 0:
                break
            words.append(found[0])
        after = " ".join(words)
    whole = first[5] is None  # a CSV entry: its whole text is the annotation, the words are highlighted in it
    return Hit(int(first[0]), str(first[1]), " ".join(str(r[2]) for r in rows), str(first[3]),  # type: ignore[call-overload]
               tuple(_union(b) for b in lines), before, after, tier, rank, _spans(rows, matched), whole)
