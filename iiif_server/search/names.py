"""How close a word, or a whole name, is to what a researcher typed: the matching the search ranks by, as plain
functions of two strings (no database), for any code that compares names (persons to portraits, lines of lists).

A word answers a query word at one of five tiers, best first:

0. EXACT: as typed (`Lévy` for `Lévy`);
1. FOLDED: with other case or accents (`LEVY`, `Levy`), or a name glued to its particles (`Dewolf` for
   `De Wolf`, `Vanpraag` for `Van Praag`);
2. PREFIX: a word it begins (`Goldsztajnowa` for `Goldsz`);
3. SOUNDS: a word sharing a Daitch–Mokotoff code (`Wijnberg`, `Vainberg` for `Weinberg`; `Dijk` for `Dyk`);
4. TYPO: one letter off: one changed, added, dropped, or two swapped (`Krause` for `Keause`).

Within a tier, closer is better: fewer added letters for a prefix, fewer letters changed for a sound-alike; a
typo ranks with the sound-alikes two letters off (a sound-alike one letter off comes first). The
cost of a match (`WordMatch.cost`) orders all of that in one number. A name (`compare`) matches another when each
of its words matches one of the other's, in any order; particles (de, van, van der, le ...) may be left out, and
the glued and separate spellings of a particle meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby

from rapidfuzz.distance import OSA

from iiif_server.search.soundex import codes as dm_codes
from iiif_server.words import normalise

EXACT, FOLDED, PREFIX, SOUNDS, TYPO = range(5)
TIER_NAMES = ("as typed", "case or accents", "begins the word", "sounds alike", "one letter off")
FUZZY_MIN = 3  # shorter words are matched as typed or folded only (every word would match)
TYPO_MIN = 4  # shorter words get no typo tier (one letter off of three is another word)
TYPO_MAX = 32  # nor do longer ones: no name is that long, and a typo's look-up grows with the length
TIER_COST = 100  # a tier's cost: closeness within a tier never reaches the next one, except between the two fuzzy
EDIT_COST = 20  # tiers: a sound-alike costs this per letter changed, a typo (one letter) as much and TYPO_EXTRA more,
TYPO_EXTRA = 15  # so a typo of one letter ranks before a sound-alike of two (Krause before Hersz for Keause)

# surname particles as the registers of Belgium, the Netherlands, France, Germany and Italy write them
PARTICLES = frozenset(
    "de del della dei der den des di da dos das du d van von vom zu zum zur ter ten te t het in op le la les l "
    "ben bat bar el al".split())
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class WordMatch:
    """How a word answers a query word: its tier, a cost that orders every match (lower is closer), and why."""

    tier: int
    cost: int
    why: str


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: as typed, folded, whether it is a particle, whether it is only a beginning (`gold*`),
    and the glued spellings it may stand in (`van praag` -> `vanpraag` for `praag`)."""

    typed: str
    norm: str
    particle: bool = False
    prefix_only: bool = False
    glued: tuple[str, ...] = ()


@dataclass(frozen=True)
class NameMatch:
    """How a name answers another: every query word matched (or missing), the total cost, and why."""

    cost: int
    matched: tuple[tuple[str, str, WordMatch], ...]  # (query word, name word, how)
    missing: tuple[str, ...] = ()
    in_order: bool = True
    why: str = field(default="")

    @property
    def tier(self) -> int:
        """The worst tier among the matched words."""
        return max((m.tier for _, _, m in self.matched), default=EXACT)


def tokens(text: str) -> list[str]:
    """The words of a text as written (\\w+ runs), accents and case kept."""
    return _TOKEN.findall(text)


@lru_cache(maxsize=1 << 16)  # the words of names recur: a word ~0.2 KB with its folded form (~13 MB at most)
def folded(word: str) -> str:
    """`words.normalise` of a word, remembered."""
    return normalise(word)


@lru_cache(maxsize=65536)
def codes(word: str) -> frozenset[str]:
    """The Daitch–Mokotoff codes of a word: of its spelling as written and folded (Dąbrowski codes Ą by the chart
    and as A), and with the Dutch ij written y, as the registers of other countries wrote it (Kleijn, Kleyn: the
    chart codes EIJ otherwise than EY)."""
    folded = normalise(word)
    found = frozenset(dm_codes(word)) | frozenset(dm_codes(folded))
    return found | frozenset(dm_codes(folded.replace("ij", "y"))) if "ij" in folded else found


def distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance (Levenshtein with adjacent transpositions), or limit + 1 when larger."""
    return OSA.distance(a, b, score_cutoff=limit)


# spellings the registers of different countries gave one sound (Polish sz, German sch, English sh; the
# diphthong written aj, ei, ey, ij ...), longest first: after them, Szwarc and Schwarz, Wajnberg, Weinberg and
# Wijnberg, Kirsz and Kirsch, Lipszowicz and Lipszovitch differ by a letter at most
_REGISTERS = (("tsch", "cz"), ("tch", "cz"), ("witz", "wicz"), ("sch", "sz"), ("sh", "sz"), ("tz", "c"),
              ("ck", "k"), ("ph", "f"), ("gh", "g"), ("v", "w"), ("eij", "y"), ("aj", "y"), ("ai", "y"),
              ("ay", "y"), ("ei", "y"), ("ey", "y"), ("ej", "y"), ("ij", "y"))
_REGISTER_PATTERN = re.compile("|".join(re.escape(a) for a, _ in _REGISTERS))
_REGISTER_MAP = dict(_REGISTERS)


def _single(text: str) -> str:
    """Doubled letters written once (re.sub's `\\1` template expansion was most of a query's first reading of a
    thousand sound-alikes)."""
    return "".join(letter for letter, _ in groupby(text))


SAME_NAME = 50  # a sound-alike no letter apart once the registers are set aside: after the folded tier, before prefixes
NEAR = 1  # letters a sound-alike may differ by, registers aside, and still be the same name (`near`)


@lru_cache(maxsize=65536)
def skeleton(norm: str) -> str:
    """A folded word with each register's spelling of a sound written one way and doubled letters single."""
    # then szt as st: Polish sztajn is German stein (st read sht)
    written = _REGISTER_PATTERN.sub(lambda m: _REGISTER_MAP[m.group(0)], norm).replace("szt", "st")
    return _single(written)


# what OCR reads for what was printed: letter pairs, then single letters and digits (read as the letters they
# stand for), then the pairs again (rnbin, a misread rubin, and mbin both read mbln)
_MISREAD_PAIRS = (("cl", "d"), ("rn", "m"), ("vv", "w"), ("ii", "u"))
_MISREAD_LETTERS = str.maketrans({"1": "l", "i": "l", "|": "l", "0": "o", "5": "s", "2": "z", "8": "b", "c": "e",
                                  "u": "n"})
READING = "~"  # text_keys holds each word of the vocabulary under READING + its reading (no deletion begins so)


def _pairs(text: str) -> str:
    for a, b in _MISREAD_PAIRS:
        text = text.replace(a, b)
    return text


@lru_cache(maxsize=65536)
def reading(norm: str) -> str:
    """A folded word as it reads whatever the register that spelt it and whatever the OCR misread: its skeleton
    with the letters OCR confuses written one way (Birnfelcl, Zylbcr, Go1dberg, Kirszmau and Bljl read as
    Birnfeld, Zylber, Goldberg, Kirszmann and Bijl)."""
    # lj first: the Dutch ij (a ligature in print) read as lj is still the diphthong the skeleton writes y
    return _single(_pairs(_pairs(skeleton(norm.replace("lj", "ij"))).translate(_MISREAD_LETTERS)))


@lru_cache(maxsize=65536)
def spelling_distance(a: str, b: str) -> int:
    """Letters two folded words differ by once the registers' spellings and the OCR's misreadings are set aside
    (at most 9)."""
    return distance(reading(a), reading(b), 9)


# the other spellings of each of the skeleton's sounds (register_spellings writes a word in each)
_SPELLINGS = (("wicz", ("witz",)), ("cz", ("tsch", "tch")), ("sz", ("sch", "sh")), ("st", ("szt",)),
              ("y", ("ij", "ei", "aj", "ey", "ay", "ej")), ("w", ("v",)), ("c", ("tz",)))
SPELLINGS_MAX = 16


@lru_cache(maxsize=4096)
def register_spellings(norm: str) -> tuple[str, ...]:
    """The word as other registers would write it (one sound respelled at a time, everywhere it stands), at most
    SPELLINGS_MAX: the typo tier looks up the words one letter off each (Wynbnerg, a typo, finds Wijnberg)."""
    base = skeleton(norm)
    found = {base}
    for unit, others in _SPELLINGS:
        if unit in base:
            found.update(base.replace(unit, other) for other in others)
    found.discard(norm)
    return tuple(sorted(found)[:SPELLINGS_MAX])


# the endings a surname takes for a woman (Polish -owa and -ówna, Czech -ová, Lithuanian -ienė and -aitė), folded
_FEMININE = ("owa", "owna", "ova", "iene", "aite", "yte")


def same_name_longer(norm: str, longer: str) -> bool:
    """Whether a word the folded name begins is still that name: in another register's spelling (Kirszmann for
    Kirszman) or a woman's form of it (Goldsztajnowa)."""
    return longer[len(norm):] in _FEMININE or spelling_distance(norm, longer) == 0


def near(query: str, word: str) -> bool:
    """Whether a sound-alike is the same name in another register, not another name sharing its code (Rotblat
    and Rotfeld, Holcson and Kleijn: one chart code, three or more letters apart)."""
    return spelling_distance(query, word) <= NEAR


def sounds_cost(query: str, word: str) -> int:
    """The cost of a sound-alike: by how many letters it differs (folded words), registers' spellings aside. The
    same name in another register (no letter apart: Kirsch for Kirsz) ranks before the words the query begins
    (Kirszberg), which are other names."""
    apart = spelling_distance(query, word)
    return FOLDED * TIER_COST + SAME_NAME if apart == 0 else SOUNDS * TIER_COST + EDIT_COST * apart


TYPO_COST = SOUNDS * TIER_COST + EDIT_COST + TYPO_EXTRA


def deletions(word: str) -> set[str]:
    """The word with one letter left out, each way: two words one letter apart share one of these, or one is the
    other's (the typo tier's index keys)."""
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def typo_keys(word: str) -> set[str]:
    """The keys a query word looks up in the index of deletions: itself and its deletions."""
    if not TYPO_MIN <= len(word) <= TYPO_MAX:
        return set()
    return {word} | deletions(word)


def match_word(query: str, word: str, typed: str | None = None, *, prefix: bool = True,
               fuzzy: bool = True) -> WordMatch | None:
    """How `word` answers the query word `query`: both as written (case and accents kept); None when not at all.
    `typed` is the query word as the researcher typed it when `query` is not (the exact tier compares with it).
    `prefix`: whether a word the query begins counts; `fuzzy`: whether sound-alikes and typos do."""
    typed = query if typed is None else typed
    if word == typed:
        return WordMatch(EXACT, 0, TIER_NAMES[EXACT])
    q, w = folded(query), folded(word)
    if not q or not w:
        return None
    if q == w:
        return WordMatch(FOLDED, FOLDED * TIER_COST, TIER_NAMES[FOLDED])
    if len(q) < FUZZY_MIN:
        return None
    if prefix and w.startswith(q):
        return WordMatch(PREFIX, PREFIX * TIER_COST + min(len(w) - len(q), TIER_COST - 1), TIER_NAMES[PREFIX])
    if not fuzzy:
        return None
    shared = codes(q) & codes(w)
    if shared:
        return WordMatch(SOUNDS, sounds_cost(q, w), f"{TIER_NAMES[SOUNDS]} ({min(shared)})")
    if TYPO_MIN <= len(q) <= TYPO_MAX and distance(q, w, 1) <= 1:
        return WordMatch(TYPO, TYPO_COST, TIER_NAMES[TYPO])
    return None


def glued_forms(words: Sequence[str]) -> list[tuple[int, int, str]]:
    """Where particles stand before a word, the word glued to them: (first particle's index, word's index, glued
    form), e.g. ["van", "der", "berg"] -> (0, 2, "vanderberg") and (1, 2, "derberg"). Words are folded."""
    found = []
    for end, word in enumerate(words):
        if word in PARTICLES:
            continue
        start = end
        while start > 0 and words[start - 1] in PARTICLES:
            start -= 1
            found.append((start, end, "".join(words[start:end + 1])))
    return found


def query_words(query: str, limit: int = 8) -> list[QueryWord]:
    """The words of a query as the search matches them: at most `limit`, particles marked (unless the query is only
    particles), a trailing `*` makes a word a beginning only, and each word after particles carries its glued
    spellings."""
    raw = re.findall(r"\w+\*?", query)[:limit]
    typed = [w.rstrip("*") for w in raw]
    norms = [normalise(w) for w in typed]
    keep = [n for n, w in enumerate(norms) if w]
    typed, norms, raw = [typed[n] for n in keep], [norms[n] for n in keep], [raw[n] for n in keep]
    only_particles = all(w in PARTICLES for w in norms)
    glued: dict[int, list[str]] = {}
    for _, end, form in glued_forms(norms):
        glued.setdefault(end, []).append(form)
    return [QueryWord(t, n, particle=n in PARTICLES and not only_particles, prefix_only=r.endswith("*"),
                      glued=tuple(glued.get(k, ()))) for k, (t, n, r) in enumerate(zip(typed, norms, raw, strict=True))]


def compare(query: str, name: str) -> NameMatch | None:
    """How the name `name` answers the name `query` (a person's name as a list, a caption or a researcher wrote it):
    each word of `query` matched to its best word of `name` through the tiers, in any order; particles may be
    missing, and glued particles meet separate ones (`Vanpraag` and `van Praag`). None when a word other than a
    particle finds nothing."""
    asked = query_words(query, limit=16)
    written = tokens(name)
    folded = [normalise(w) for w in written]
    candidates = list(zip(written, folded, strict=True))
    candidates += [(form, form) for _, _, form in glued_forms(folded)]
    matched: list[tuple[str, str, WordMatch]] = []
    missing: list[str] = []
    positions: list[int] = []
    cost = 0
    for word in asked:
        best: tuple[WordMatch, str, int] | None = None
        options = [(word.typed, 0), *((form, 15) for form in word.glued)]
        for typed, extra in options:
            for n, (w, f) in enumerate(candidates):
                how = match_word(typed, w, prefix=True, fuzzy=not word.prefix_only) if f else None
                if how is not None and (best is None or how.cost + extra < best[0].cost):
                    best = (WordMatch(how.tier, how.cost + extra, how.why + (" (glued particles)" if extra else "")),
                            w, n)
        if best is None:
            if not word.particle:
                return None  # a word other than a particle that finds nothing: no match
            missing.append(word.typed)
            cost += 20
            continue
        matched.append((word.typed, best[1], best[0]))
        positions.append(best[2])
        cost += best[0].cost
    in_order = positions == sorted(positions)
    why = "; ".join(f"{q} ~ {w}: {m.why}" for q, w, m in matched)
    return NameMatch(cost + (0 if in_order else 1), tuple(matched), tuple(missing), in_order, why)


def best_matches(query: str, names: Iterable[str], limit: int = 10) -> list[tuple[str, NameMatch]]:
    """The names answering `query`, closest first (a helper for lists held in memory)."""
    found = [(name, m) for name in names if (m := compare(query, name)) is not None]
    return sorted(found, key=lambda nm: (nm[1].cost, nm[0]))[:limit]


__all__ = ["EXACT", "FOLDED", "NameMatch", "PARTICLES", "PREFIX", "READING", "QueryWord", "SOUNDS", "TIER_COST",
           "TYPO", "TYPO_COST", "WordMatch", "best_matches", "codes", "compare", "deletions", "distance", "glued_forms",
           "match_word", "near", "query_words", "reading", "register_spellings", "same_name_longer", "skeleton",
           "sounds_cost", "spelling_distance", "tokens", "typo_keys"]
