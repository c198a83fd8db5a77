"""Comparing names as the archive's lists write them: the one place where people's names are matched.

A name on a transport list, a portrait's label and the deportees' list spell one person differently: Polish,
Yiddish, German, French and Dutch forms (Szmul, Shmuel, Samuel), accents lost (Levy for Lévy), typing errors
(Goldsztain). Two words compare in tiers, best first, as Content Search ranks its hits: as typed, folded (case
and accents), a prefix (searching only), Daitch–Mokotoff codes in common, a typing error (one edit, or
similar trigrams). Given names also meet through their usual equivalents (Moszek, Moshe, Moïse, Mozes).

This module is pure (strings in, scores out). It rests on the search's own folding (`words.normalise`) and
Daitch–Mokotoff codes (`search.soundex`): when the search's name comparison is reworked, only this module
changes for the people's search and the link suggestions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import jellyfish

from iiif_server.db.persons import check_date
from iiif_server.search import soundex
from iiif_server.words import normalise, similarity

EXACT, FOLDED, PREFIX, SOUNDS, TYPO = range(5)
NONE = 9  # no match at all
TIER_NAMES = {EXACT: "as typed", FOLDED: "folded", PREFIX: "prefix", SOUNDS: "Daitch–Mokotoff", TYPO: "typo"}
TYPO_MIN = 4  # shorter words get no typo tier: every short word is one edit from many others
TRIGRAM_MIN = 0.45
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # letters, with inner apostrophes and hyphens

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
PARTICLES = frozenset("van der den de la le du von zu ten ter het d l".split())  # of compound surnames


@dataclass(frozen=True)
class Compared:
    """How well two names agree: a score in [0, 1] and the tier and words that say why."""

    score: float
    tier: int
    how: str


NO_MATCH = Compared(0.0, NONE, "")


def fold(text: str) -> str:
    """Case folded, accents removed (the search's own normalisation)."""
    return normalise(text)


def typed(text: str) -> str:
    """As typed: case folded but accents kept (NFC)."""
    return unicodedata.normalize("NFC", text.casefold())


def name_words(text: str) -> list[str]:
    """The letters-only words of a name, as typed (case folded, accents kept)."""
    return _WORD.findall(typed(text))


@lru_cache(maxsize=65536)
def codes(word: str) -> frozenset[str]:
    return frozenset(soundex.codes(word))


@lru_cache(maxsize=65536)
def folded(word: str) -> str:
    return fold(word)


def typo(a: str, b: str) -> bool:
    """Folded words one typing error apart (or with most trigrams in common), neither of them short."""
    if min(len(a), len(b)) < TYPO_MIN:
        return False
    return jellyfish.damerau_levenshtein_distance(a, b) <= 1 or similarity(a, b) >= TRIGRAM_MIN + 0.15


def word_tier(query: str, word: str, prefix: bool = False) -> int:
    """The tier at which a word typed (or written on a page) finds a word of a name: EXACT ... TYPO, or NONE."""
    if query == word:
        return EXACT
    fq, fw = folded(query), folded(word)
    if fq == fw:
        return FOLDED
    if prefix and len(fq) >= 2 and fw.startswith(fq):
        return PREFIX
    if len(fq) >= 3 and codes(fq) & codes(fw):
        return SOUNDS
    if typo(fq, fw) or (len(fq) >= TYPO_MIN and similarity(fq, fw) >= TRIGRAM_MIN):
        return TYPO
    return NONE


SURNAME_SCORES = {EXACT: 1.0, FOLDED: 0.95, SOUNDS: 0.82, TYPO: 0.72}


def surname_forms(surname: str) -> list[str]:
    """A surname's forms to look for: the whole (its words joined, `Van Praag` as `vanpraag`) and each word
    that is not a particle."""
    words = name_words(surname)
    forms = ["".join(words)] if len(words) > 1 else []
    return forms + [w for w in words if w not in PARTICLES]


def compare_surname(surname: str, written: list[str]) -> tuple[Compared, int | None, int]:
    """The person's surname against the words written on a page: the best agreement, the index of the first
    written word that gives it and how many words it takes (a compound surname may be written as two)."""
    best, where, span = NO_MATCH, None, 0
    candidates = [(n, w, 1) for n, w in enumerate(written)]
    candidates += [(n, written[n] + written[n + 1], 2) for n in range(len(written) - 1)]
    whole = "".join(name_words(surname))
    for n, word, size in candidates:
        tier = word_tier(word, whole)
        if tier == NONE:
            continue
        score = SURNAME_SCORES[tier]
        if score > best.score:
            best, where, span = Compared(score, tier, f"surname {TIER_NAMES[tier]} ({word} = {surname})"), n, size
    return best, where, span


def given_tier(a: str, b: str) -> tuple[int, float]:
    """Two given names: their tier and score; equivalents across languages count as Daitch–Mokotoff."""
    tier = word_tier(a, b)
    if tier in (EXACT, FOLDED):
        return tier, 1.0
    fa, fb = folded(a), folded(b)
    if EQUIVALENT.get(fa) is not None and EQUIVALENT.get(fa) == EQUIVALENT.get(fb):
        return SOUNDS, 0.85
    if tier == SOUNDS:
        return tier, 0.85
    if tier == TYPO:
        return tier, 0.7
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
            tier, score = given_tier(word, name)
            if score > best.score:
                how = "equivalent" if tier == SOUNDS and not codes(folded(word)) & codes(folded(name)) \
                    else TIER_NAMES[tier]
                best = Compared(score, tier, f"given name {how} ({word} = {name})")
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


__all__ = ["EXACT", "FOLDED", "NONE", "PREFIX", "SOUNDS", "TYPO", "Compared", "check_date", "codes",
           "compare_birth", "compare_given", "compare_surname", "dates_in", "fold", "name_words", "surname_forms",
           "typed", "word_tier"]
