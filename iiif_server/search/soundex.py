"""Daitch–Mokotoff Soundex: six-digit codes under which spellings of one Eastern European name meet.

Written from the published coding chart (Mokotoff and Sack, 1985, as JewishGen and Avotaynu publish
it), rule by rule:

- at each position the longest letter group of the chart is coded, by one of three columns: at the
  start of the name, before a vowel (the next group sounds as a vowel: A, E, I, O, U, Y and the
  vowel groups AI, AU, EU, IA, UE ...), or anywhere else;
- some groups have two readings (C, CH, CK, RS, RZ, J, Ţ; Ą and Ę at the end), so a name may have
  several codes. J is the one letter that is either a vowel or a consonant: read as the Y sound it is
  coded 1 at the start and not at all elsewhere, read as the J sound it is 4 everywhere; the group
  before a J is coded "before a vowel" exactly when that J is read as the vowel (so Wijnberg meets
  Weinberg and Dijk meets Dyk);
- a digit is not repeated: the first digit of a group's code is dropped when it is the digit the
  group before it ended with (BESST is 743000, as BEST). A group that is not coded (a vowel inside
  the name) separates: both sides are coded. MN and NM are always 66;
- codes are cut or padded with zeros to six digits.

Ą, Ę and Ţ (Ț) have rows of their own in the chart; `codes` honours them when the word is given with
them, and otherwise reads them as A, E and T (words are stored folded: the index codes both spellings).
"""

from __future__ import annotations

import unicodedata

from iiif_server.words import normalise

# a reading: the code at the start, before a vowel, elsewhere ("" = not coded)
_Reading = tuple[str, str, str]
_CHART: dict[str, tuple[_Reading, ...]] = {}

# placeholders for the chart's letters with diacritics (they survive folding, outside A-Z)
OGONEK_A, OGONEK_E, CEDILLA_T = "\ue000", "\ue001", "\ue002"
_SPECIAL = str.maketrans({"ą": OGONEK_A, "ę": OGONEK_E, "ţ": CEDILLA_T, "ț": CEDILLA_T})


def _add(groups: str, *readings: _Reading) -> None:
    for group in groups.split():
        _CHART[group] = readings


X = ""  # not coded
_add("AI AJ AY", ("0", "1", X))
_add("AU", ("0", "7", X))
_add(OGONEK_A, (X, X, "6"), (X, X, X))
_add("A", ("0", X, X))
_add("B", ("7", "7", "7"))
_add("CHS", ("5", "54", "54"))
_add("CH", ("5", "5", "5"), ("4", "4", "4"))
_add("CK", ("5", "5", "5"), ("45", "45", "45"))
_add("CZ CS CSZ CZS", ("4", "4", "4"))
_add("C", ("5", "5", "5"), ("4", "4", "4"))
_add("DRZ DRS DS DSH DSZ DZ DZH DZS", ("4", "4", "4"))
_add("D DT", ("3", "3", "3"))
_add("EI EJ EY", ("0", "1", X))
_add("EU", ("1", "1", X))
_add(OGONEK_E, (X, X, "6"), (X, X, X))
_add("E", ("0", X, X))
_add("FB F", ("7", "7", "7"))
_add("G", ("5", "5", "5"))
_add("H", ("5", "5", X))
_add("IA IE IO IU", ("1", X, X))
_add("I", ("0", X, X))
_add("J", ("1", X, X), ("4", "4", "4"))
_add("KS", ("5", "54", "54"))
_add("KH K", ("5", "5", "5"))
_add("L", ("8", "8", "8"))
_add("MN NM", ("66", "66", "66"))
_add("M N", ("6", "6", "6"))
_add("OI OJ OY", ("0", "1", X))
_add("O", ("0", X, X))
_add("P PF PH", ("7", "7", "7"))
_add("Q", ("5", "5", "5"))
_add("RZ RS", ("94", "94", "94"), ("4", "4", "4"))
_add("R", ("9", "9", "9"))
_add("SCHTSCH SCHTSH SCHTCH SHTCH SHCH SHTSH STCH STSCH SC STRZ STRS STSH SZCZ SZCS", ("2", "4", "4"))
_add("SCH SH SZ S", ("4", "4", "4"))
_add("SHT SCHT SCHD ST SZT SHD SZD SD", ("2", "43", "43"))
_add("TCH TTCH TTSCH TRZ TRS TSCH TSH TS TTS TTSZ TC TZ TTZ TZS TSZ", ("4", "4", "4"))
_add(CEDILLA_T, ("3", "3", "3"), ("4", "4", "4"))
_add("TH T", ("3", "3", "3"))
_add("UI UJ UY", ("0", "1", X))
_add("U UE", ("0", X, X))
_add("V W", ("7", "7", "7"))
_add("X", ("5", "54", "54"))
_add("Y", ("1", X, X))
_add("ZDZ ZDZH ZHDZH", ("2", "4", "4"))
_add("ZD ZHD", ("2", "43", "43"))
_add("ZH ZS ZSCH ZSH Z", ("4", "4", "4"))

_LONGEST = max(map(len, _CHART))
LENGTH = 6
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ" + OGONEK_A + OGONEK_E + CEDILLA_T)


def _vowel(reading: _Reading) -> bool:
    """A reading sounds as a vowel when the chart codes it 0 or 1 at the start of a name."""
    return reading[0] in ("0", "1")


def letters(word: str) -> str:
    """The letters the chart codes, upper case (Ą, Ę, Ţ as placeholders; other accents and ł folded)."""
    folded = unicodedata.normalize("NFC", word).casefold().translate(_SPECIAL)
    return "".join(c for c in normalise(folded).upper() if c in _LETTERS)


def groups(word: str) -> list[str]:
    """The word cut into the chart's letter groups, longest first at each position."""
    text = letters(word)
    found, i = [], 0
    while i < len(text):
        for size in range(min(_LONGEST, len(text) - i), 0, -1):
            if text[i:i + size] in _CHART:
                break
        found.append(text[i:i + size])
        i += size
    return found


def codes(word: str) -> list[str]:
    """The word's codes, sorted (empty when it has no letter the chart codes, e.g. a number)."""
    cut = groups(word)
    if not cut:
        return []
    # a branch: (code so far, the last digit written or "" after a group not coded, which reading of this
    # group the one before it assumed: None = either, True = a vowel reading, False = a consonant reading)
    branches: set[tuple[str, str, bool | None]] = {("", "", None)}
    for n, group in enumerate(cut):
        following = _CHART[cut[n + 1]] if n + 1 < len(cut) else None
        grown: set[tuple[str, str, bool | None]] = set()
        for code, last, assumed in branches:
            if len(code) >= LENGTH:
                grown.add((code, last, None))
                continue
            for reading in _CHART[group]:
                if assumed is not None and _vowel(reading) != assumed:
                    continue  # the group before was coded as if this one were read the other way
                # the column depends on how the next group sounds; a J there may sound either way
                nexts: list[bool | None] = sorted({_vowel(r) for r in following}) if following else [None]
                either = len(nexts) > 1
                for vowel_next in nexts:
                    column = 0 if n == 0 else 1 if vowel_next else 2
                    digits = reading[column]
                    if digits and digits[0] == last:
                        digits = digits[1:]  # the same digit as the group before ended with: written once
                    written = reading[column]
                    grown.add(((code + digits)[:LENGTH], written[-1] if written else "",
                               vowel_next if either else None))
        branches = grown
    return sorted({code.ljust(LENGTH, "0") for code, _, _ in branches})


__all__ = ["LENGTH", "codes", "groups", "letters"]
