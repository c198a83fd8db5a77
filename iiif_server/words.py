"""Word normalisation shared by import and query: what a researcher types and a 1940s typist wrote meet here."""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+")
_FOLD = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})


def normalise(text: str) -> str:
    """Case folded, without accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    return [t[:200] for t in WORD.findall(normalise(text))]


def trigrams(word: str) -> set[str]:
    """The word's trigrams padded as PostgreSQL's pg_trgm pads them (two spaces before, one after)."""
    padded = f"  {word} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """Shared trigrams over all trigrams of both words: pg_trgm's `similarity`, for SQLite's candidates."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0
