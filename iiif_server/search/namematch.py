"""Scoring a name written on a page against a person: surname, given names and birth date.

A name on a transport list, a portrait's label and the deportees' list spell one person differently: Polish,
Yiddish, German, French and Dutch forms (Szmul, Shmuel, Samuel), accents lost (Levy for Lévy), typing errors
(Goldsztain). Each written word meets a person's names through the tiers of `search.names`, the one place where
words of names are compared (folding, Daitch–Mokotoff codes with the Dutch ij, one letter off, particles and
their glued spellings), so a name is found alike by Content Search, the person search and the link
suggestions. What is here is about persons only: which forms of a surname to look for, given names and their
usual equivalents across languages (Moszek, Moshe, Moïse, Mozes), birth dates, and the scores of each.

This module is pure (strings in, scores out).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from iiif_server.db.persons import check_date
from iiif_server.search.names import (
    EXACT,
    FOLDED,
    PARTICLES,
    PREFIX,
    SOUNDS,
    TIER_NAMES,
    TYPO,
    codes,
    folded,
    glued_forms,
    match_word,
)

NONE = 9  # no match at all
_WORD = re.compile(r"[^\W\d_]+")  # letters: the words of `names.tokens` but numbers (Rozen-berg, d'Ancona: two)

# The usual equivalents of Jewish given names across the languages of the lists (folded forms). Spellings
# that differ only as Daitch–Mokotoff hears them (Szmul, Shmul) need not be listed.
_EQUIVALENTS = """
abraham abram avram awram abe | isaac izaak isak icek ickek icchak itzhak yitzchak itzek ajzyk | jacob jakob jakub
jankiel yankel jankel jacques jaakov jakow | moses moshe moszek mojzesz mozes moise moishe mosze moszko mojsze |
samuel szmul shmuel schmul szmuel samuil | salomon solomon szlama shlomo szloma salomo | joseph josef jozef josek
yosef josel jossel joszek | david dawid dovid | hersz hirsch hersch herszel herschel hirsz hirsh cwi zwi tzvi |
leib lejb lejba leibusz lajb leon | chaim haim chajm hyman | aron aaron | mordechai mordka mordko mordechaj |
pinkus pinchas pinkas pincus | wolf wolff welwel wulf zeev | srul israel izrael yisrael srulek | elias eliasz
elijahu eliyahu | benjamin beniamin binem | sara sarah sura surah saartje sarra | rachel ruchla rochla rachela
rahel rochel | rivka rywka rifka riwka ryfka rebecca rebekka rebeka | chaja chaya chaia haja haya | esther estera
ester | leah lea laja leja | miriam mirjam mira | hanna hana chana channa | dwojra dwora debora deborah dvora |
frajda freida frida frieda fryda | fajga feiga fejga fega | golda golde goldie | perla perel pearl | malka malke
| gitla gittel gitel | tauba tojba toba | blima bluma blume | cyrla cirla tsirl
"""
EQUIVALENT: dict[str, int] = {name: n for n, group in enumerate(_EQUIVALENTS.replace("\n", " ").split("|"))
                              for name in group.split()}


@dataclass(frozen=True)
class Compared:
    """How well two names agree: a score in [0, 1] and the tier and words that say why."""

    score: float
    tier: int
    how: str


NO_MATCH = Compared(0.0, NONE, "")


def name_words(text: str) -> list[str]:
    """The words of a name as written (case and accents kept, NFC), split as Content Search splits them; numbers
    and dates are not names."""
    return _WORD.findall(unicodedata.normalize("NFC", text))


@lru_cache(maxsize=1 << 16)  # pairs of words recur across a list's lines (~0.2 KB each: ~13 MB at most)
def tier(written: str, name: str) -> int:
    """The tier at which a written word finds a word of a person's name (`names.match_word`, no prefixes: a
    page's word is whole), or NONE."""
    found = match_word(written, name, prefix=False)
    return NONE if found is None else found.tier


SURNAME_SCORES = {EXACT: 1.0, FOLDED: 0.95, SOUNDS: 0.82, TYPO: 0.72}


def surname_forms(surname: str) -> list[str]:
    """A surname's forms to look for: the whole (its words joined, `Van Praag` as `VanPraag`) and each word
    that is not a particle."""
    words = name_words(surname)
    forms = ["".join(words)] if len(words) > 1 else []
    return forms + [w for w in words if folded(w) not in PARTICLES]


PARTICLES_LEFT_OUT = 0.1  # a surname written without its particles (Praag for Van Praag) scores this much less


def compare_surname(surname: str, written: list[str]) -> tuple[Compared, int | None, int]:
    """The person's surname against the words written on a page: the best agreement, the index of the first
    written word that gives it and how many words it takes (a compound surname may be written as two, or as a
    name after its particles: `van der Berg`). A surname may also be written without its particles (`Berg` for
    `Van den Berg`, as Content Search lets a query leave them out), for a little less."""
    best, where, span = NO_MATCH, None, 0
    candidates = [(n, w, 1) for n, w in enumerate(written)]
    candidates += [(n, written[n] + written[n + 1], 2) for n in range(len(written) - 1)]
    candidates += [(start, "".join(written[start:end + 1]), end + 1 - start)
                   for start, end, _ in glued_forms([folded(w) for w in written]) if end - start > 1]
    words = name_words(surname)
    forms = [("".join(words), 0.0, "")]
    bare = [w for w in words if folded(w) not in PARTICLES]
    if bare and len(bare) < len(words):
        forms.append(("".join(bare), PARTICLES_LEFT_OUT, ", without its particles"))
    for form, less, note in forms:
        for n, word, size in candidates:
            found = tier(word, form)
            if found == NONE:
                continue
            score = SURNAME_SCORES[found] - less
            if score > best.score:
                best = Compared(score, found, f"surname {TIER_NAMES[found]}{note} ({word} = {surname})")
                where, span = n, size
    return best, where, span


@lru_cache(maxsize=1 << 16)  # pairs of given names recur (~0.2 KB each: ~13 MB at most)
def given_tier(a: str, b: str) -> tuple[int, float]:
    """Two given names: their tier and score; equivalents across languages count as sounding alike."""
    found = tier(a, b)
    if found in (EXACT, FOLDED):
        return found, 1.0
    fa, fb = folded(a), folded(b)
    if EQUIVALENT.get(fa) is not None and EQUIVALENT.get(fa) == EQUIVALENT.get(fb):
        return SOUNDS, 0.85
    if found == SOUNDS:
        return found, 0.85
    if found == TYPO:
        return found, 0.7
    return NONE, 0.0


def compare_given(given_names: str, written: list[str]) -> Compared:
    """The person's given names against the other words written with their surname. Nothing written: neutral
    (0.5); an initial that agrees: 0.6; a given name that agrees with none of theirs: 0."""
    names = [w for w in name_words(given_names) if len(w) > 1]
    words = [w for w in written if len(w) > 1]
    initials = [w for w in written if len(w) == 1]
    if not names:
        return Compared(0.5, NONE, "no given names known")
    if not words:
        if initials and any(folded(n)[0] == folded(i) for n in names for i in initials):
            return Compared(0.6, PREFIX, f"initial {initials[0].upper()}. of {given_names}")
        if initials:
            return Compared(0.0, NONE, f"initial {initials[0].upper()}. is not {given_names}")
        return Compared(0.5, NONE, "no given name written")
    best = Compared(0.0, NONE, f"given name {' '.join(words)} is not {given_names}")
    for word in words:
        for name in names:
            found, score = given_tier(word, name)
            if score > best.score:
                how = "equivalent" if found == SOUNDS and not codes(word) & codes(name) else TIER_NAMES[found]
                best = Compared(score, found, f"given name {how} ({word} = {name})")
    return best


# -- birth dates -----------------------------------------------------------------------------------------------

_DMY = re.compile(r"\b(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})\b")
_ISO = re.compile(r"\b(1[89]\d\d|20\d\d)-(\d{1,2})(?:-(\d{1,2}))?\b")
_YEAR = re.compile(r"\b(1[89]\d\d)\b")


def dates_in(text: str) -> list[str]:
    """The dates written in a text, each as precise as written (`1921`, `1921-03`, `1921-03-12`)."""
    found: list[str] = []
    rest = text
    for match in _DMY.finditer(text):
        day, month, year = (int(g) for g in match.groups())
        year += 1900 if year < 100 else 0
        try:
            found.append(check_date(year, month, day))
        except ValueError:
            continue
        rest = rest.replace(match.group(0), " ")
    for match in _ISO.finditer(rest):
        try:
            found.append(check_date(int(match[1]), int(match[2]), int(match[3]) if match[3] else None))
        except ValueError:
            continue
        rest = rest.replace(match.group(0), " ")
    found += [m for m in _YEAR.findall(rest)]
    return found


def compare_birth(birth_date: str | None, written: list[str]) -> Compared:
    """The person's birth date (as precise as known) against the dates written beside the name: the best agreement.
    Nothing to compare: neutral (0.5); years more than one apart: 0."""
    if not birth_date or not written:
        return Compared(0.5, NONE, "")
    best = Compared(0.0, NONE, f"born {birth_date}, not {written[0]}")
    for date in written:
        common = min(len(date), len(birth_date))
        if date[:common] == birth_date[:common]:
            score = {10: 1.0, 7: 0.9}.get(common, 0.85)
            how = f"birth date {date}" if common == 10 else f"born {date[:common]}"
        elif abs(int(date[:4]) - int(birth_date[:4])) <= 1 and date[:4] != birth_date[:4]:
            score, how = 0.45, f"born {birth_date[:4]}, written {date[:4]}"
        else:
            continue
        if score > best.score:
            best = Compared(score, EXACT, how)
    return best


__all__ = ["EQUIVALENT", "NONE", "PARTICLES_LEFT_OUT", "SURNAME_SCORES", "Compared", "check_date", "compare_birth",
           "compare_given", "compare_surname", "dates_in", "given_tier", "name_words", "surname_forms", "tier"]
