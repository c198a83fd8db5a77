"""Scoring a text that may name people (a list's line, a portrait's label) against the people it may name,
fast enough for the archive's 24 M list entries.

A text's score for a person is made of its name words (surname, given names: `namematch`, the costly part),
its dates and the number it begins with (cheap), and the transport of its list. The name words are scored
once per distinct spelling (`Named`, remembered in a bounded memo): a list names the same people in many
copies, and a name is spelt a few ways only. Only the people whose surname shares a blocking key with a word
of the text are scored at all (the folded surname, a Daitch–Mokotoff code, a word one letter off:
`PersonIndex.surname_candidates`, remembered per word), once per distinct surname and given names. People
whose best possible score (birth date agreeing, number agreeing) cannot reach `FLOOR` on a list of a given
transport are left out there, so a text's finishing touches (dates, number) meet a handful of people. The
scores are exactly those of the plain formula (`finish`), only computed for fewer people.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from iiif_server.search.namematch import (
    EQUIVALENT,
    NONE,
    Compared,
    compare_birth,
    compare_given,
    compare_surname,
    dates_in,
    name_words,
)
from iiif_server.search.names import folded
from iiif_server.search.persons import Entry, PersonIndex

KEEP = 0.6  # below this a suggestion is not stored at all
CANDIDATES = 3  # suggestions kept per text, best first
AMBIGUOUS = 0.03  # two people scored this close on one text: both lose AMBIGUITY
AMBIGUITY = 0.12
RUNNER_UP = 0.5  # a candidate behind the best loses half as much again as it trails by
FLOOR = KEEP - AMBIGUITY - 1e-4  # a person whose best is below this (before rounding to 4 places) neither is kept
# nor makes another ambiguous
# The memories below are bounded by bytes, as estimated for each entry (`Memo`), the least recently used
# forgotten first: a spelling met on every list stays, one met once goes.
WORDS = 8 << 20  # words with their surnames
NAMES = 64 << 20  # spellings of names with their people (the costly part: ~1 ms a spelling)
GIVEN = 16 << 20  # given names compared with the other words of a text
CANDIDATES_MEMO = 48 << 20  # (spelling, transport) with their people: a transport's spellings at a time
_NUMBER = re.compile(r"^\s*(\d{1,5})\b")
_NO_GIVEN = Compared(0.5, NONE, "no given name written")

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Remembered values, at most `budget` bytes of them by `weigh`'s estimate of each (key and value), the least
    recently used forgotten first."""

    __slots__ = ("budget", "items", "used", "weigh")

    def __init__(self, budget: int, weigh: Callable[[K, V], int]) -> None:
        self.budget = budget
        self.weigh = weigh
        self.used = 0
        self.items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: K) -> V | None:
        found = self.items.get(key)
        if found is None:
            return None
        self.items.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> V:
        size = self.weigh(key, value)
        self.used += size
        self.items[key] = (value, size)
        while self.used > self.budget and len(self.items) > 1:
            self.used -= self.items.popitem(last=False)[1][1]
        return value


# Estimates of the bytes an entry holds (CPython objects: a small object ~60, a string ~50 + its letters, a
# tuple or set ~60 + 8 to 30 an item); what is shared with the index (people, surnames) is not counted.
def _words_size(key: str, value: frozenset[str]) -> int:
    return 120 + len(key) + 30 * len(value)


def _named_size(key: tuple[str, ...], value: Named) -> int:
    return 200 + 60 * len(key) + 800 * len(value.surnames) + 150 * len(value.other)


def _given_size(key: tuple[str, tuple[str, ...]], value: Compared) -> int:
    return 300 + 60 * len(key[1]) + len(value.how)


def _candidates_size(key: tuple[tuple[str, ...], str], value: tuple[Partial, ...]) -> int:
    return 250 + 60 * len(key[0]) + 40 * len(value)  # its people are mostly those of `Named.other`


@dataclass(frozen=True, slots=True)
class Partial:
    """A person as the name words of a text meet them: surname and given names compared."""

    entry: Entry
    surname: Compared
    given: Compared
    transport: str  # the person's, casefolded; "" when unknown
    year: int | None  # the person's year of birth, when known
    dated: bool  # whether they reach FLOOR only if the text's dates (if any) agree with their birth year


@dataclass(frozen=True, slots=True)
class Surname:
    """A surname the words of a text agree with: how, and the text's other words (given names, perhaps)."""

    surname: str
    compared: Compared
    rest: tuple[str, ...]
    unknown: bool  # none of the other words is anybody's given name: one that disagrees is no conflict
    givens: dict[str, Compared] = field(default_factory=dict, compare=False)  # given names met so far


class Named:
    """The people a spelling of a name may be: its surnames, and those good enough even on another transport's list
    (the others are found by transport when a text of that transport asks: `Scorer.candidates`)."""

    __slots__ = ("other", "surnames")

    def __init__(self, surnames: tuple[Surname, ...], other: tuple[Partial, ...]) -> None:
        self.surnames = surnames
        self.other = other


def score_of(p: Partial, birth: float, transport: str, number: str | None) -> float:
    """How likely it is that the text names the person (0 ... 1); `transport` is the text's, casefolded."""
    v = 0.5 * p.surname.score + 0.35 * p.given.score + 0.15 * birth
    if p.given.score == 0.0:
        v *= 0.7
    if birth == 0.0:
        v *= 0.6
    if transport and p.transport:
        if transport == p.transport:
            v += 0.05
        else:
            v *= 0.7
    if number and p.entry.number and number == p.entry.number.strip():
        v += 0.05
    return min(1.0, round(v, 4))


def reasons(p: Partial, birth: Compared, transport: str | None, number: str | None) -> str:
    """Why `score_of` says what it says, in words staff can check."""
    said = [p.surname.how, p.given.how, birth.how]
    person = p.entry
    if transport and person.transport:
        if transport.casefold() == p.transport:
            said.append(f"on transport {transport}'s list")
        else:
            said.append(f"transport {person.transport}, the list's is {transport}")
    if number and person.number and number == person.number.strip():
        said.append(f"number {person.number} on the list")
    return "; ".join(r for r in said if r)


def _core(surname: Compared, given: Compared) -> float:
    """The best a person can score with these surname and given names: birth date agreeing, before transport and
    number."""
    return (0.5 * surname.score + 0.35 * given.score + 0.15) * (0.7 if given.score == 0.0 else 1.0)


class Scorer:
    """Texts scored against the people of an index, the work shared between texts remembered (bounded)."""

    def __init__(self, index: PersonIndex, words: int = WORDS, names: int = NAMES, given: int = GIVEN,
                 candidates: int = CANDIDATES_MEMO) -> None:
        self.index = index
        self.vocab = {folded(w) for e in index.entries for w in name_words(e.given_names)}
        # a surname as written -> its people who may be proposed, by given names and by transport (casefolded)
        self.people: dict[str, dict[str, list[Entry]]] = {}
        self.transports: dict[str, dict[str, list[Entry]]] = {}
        for entry in index.entries:
            if not entry.hidden:
                self.people.setdefault(entry.surname, {}).setdefault(entry.given_names, []).append(entry)
                self.transports.setdefault(entry.surname, {}).setdefault(
                    entry.transport.casefold() if entry.transport else "", []).append(entry)
        self._surnames: Memo[str, frozenset[str]] = Memo(words, _words_size)
        self._named: Memo[tuple[str, ...], Named] = Memo(names, _named_size)
        self._given_memo: Memo[tuple[str, tuple[str, ...]], Compared] = Memo(given, _given_size)
        self._candidates: Memo[tuple[tuple[str, ...], str], tuple[Partial, ...]] = Memo(candidates, _candidates_size)

    def surnames(self, word: str) -> frozenset[str]:
        """The surnames a word written on a page may be (`PersonIndex.surname_candidates`)."""
        found = self._surnames.get(word)
        if found is None:
            entries = self.index.entries
            found = self._surnames.put(word, frozenset(entries[n].surname
                                                       for n in self.index.surname_candidates(word)))
        return found

    def named(self, words: tuple[str, ...]) -> Named:
        found = self._named.get(words)
        return found if found is not None else self._named.put(words, self._name(words))

    def _given(self, given_names: str, surname: Surname) -> Compared:
        found = surname.givens.get(given_names)
        if found is not None:
            return found
        key = (given_names, surname.rest)
        given = self._given_memo.get(key)
        if given is None:
            given = self._given_memo.put(key, compare_given(given_names, list(surname.rest)))
        surname.givens[given_names] = found = _NO_GIVEN if given.score == 0.0 and surname.unknown else given
        return found

    @staticmethod
    def _partial(entry: Entry, surname: Surname, given: Compared, core: float, foreign: bool,
                 bonus: float) -> Partial:
        """`foreign`: on another transport's list (value * 0.7); `bonus`: on their own transport's list (0.05)."""
        # their best with their birth year disagreeing with the text's dates: birth date 0, value * 0.6
        undated = (core - 0.15 * (0.7 if given.score == 0.0 else 1.0)) * 0.6 * (0.7 if foreign else 1.0)
        return Partial(entry, surname.compared, given, entry.transport.casefold() if entry.transport else "",
                       int(entry.birth_date[:4]) if entry.birth_date else None,
                       undated + bonus + (0.05 if entry.number else 0.0) < FLOOR)

    def _name(self, words: tuple[str, ...]) -> Named:
        found: set[str] = set()
        for word in words:
            if len(word) > 1:
                found |= self.surnames(word)
        written = list(words)
        surnames: list[Surname] = []
        other: list[Partial] = []
        for name in found:
            people = self.people.get(name)
            if not people:
                continue
            compared, where, span = compare_surname(name, written)
            if where is None:
                continue
            rest = tuple(written[:where] + written[where + span:])
            unknown = not any(folded(w) in self.vocab or folded(w) in EQUIVALENT for w in rest if len(w) > 1)
            surname = Surname(name, compared, rest, unknown)
            surnames.append(surname)
            for given_names, group in people.items():  # who is good enough even on another transport's list
                given = self._given(given_names, surname)
                core = _core(compared, given)
                if core * 0.7 + 0.05 < FLOOR:
                    continue
                other += [self._partial(e, surname, given, core, True, 0.0) for e in group
                          if e.transport and core * 0.7 + (0.05 if e.number else 0.0) >= FLOOR]
        return Named(tuple(surnames), tuple(other))

    def candidates(self, words: tuple[str, ...], transport: str) -> tuple[Partial, ...]:
        """The people a spelling of a name may be who may reach FLOOR on a text of `transport` (casefolded, ""
        for none)."""
        found = self._candidates.get((words, transport))
        if found is not None:
            return found
        named = self.named(words)
        kept = [p for p in named.other if p.transport != transport] if transport else []
        for surname in named.surnames:
            if transport:  # on their transport's list: + 0.05; or of no transport
                groups = [(self.transports[surname.surname].get(transport, ()), 0.05),
                          (self.transports[surname.surname].get("", ()), 0.0)]
            else:
                groups = [(people, 0.0) for people in self.transports[surname.surname].values()]
            for people, bonus in groups:
                for entry in people:
                    given = self._given(entry.given_names, surname)
                    core = _core(surname.compared, given)
                    if core + bonus + (0.05 if entry.number else 0.0) >= FLOOR:
                        kept.append(self._partial(entry, surname, given, core, False, bonus))
        return self._candidates.put((words, transport), tuple(kept))

    def best(self, text: str, transport: str | None) -> list[tuple[Entry, float, str]]:
        """The people a text most likely names, best first, each scored KEEP or more (ambiguity lowers the
        scores)."""
        where = transport.casefold() if transport else ""
        candidates = self.candidates(tuple(name_words(text)), where)
        if not candidates:
            return []
        dates = dates_in(text)
        years = {int(d[:4]) + k for d in dates for k in (-1, 0, 1)}  # a birth date agrees only within these
        match = _NUMBER.match(text)
        number = match[1] if match else None
        births: dict[str | None, Compared] = {}
        scored = []
        for p in candidates:
            if p.dated and years and p.year is not None and p.year not in years:
                continue  # its birth date scores 0: it cannot reach FLOOR
            birth = births.get(p.entry.birth_date)
            if birth is None:
                birth = births[p.entry.birth_date] = compare_birth(p.entry.birth_date, dates)
            v = score_of(p, birth.score, where, number)
            if v >= KEEP - AMBIGUITY:
                scored.append((p, v, birth))
        if not scored:
            return []
        scored.sort(key=lambda s: (-s[1], s[0].entry.id))
        top = scored[0][1]
        close = sum(1 for s in scored if top - s[1] < AMBIGUOUS)
        ranked = []
        for p, value, birth in scored:
            alike = close > 1 and top - value < AMBIGUOUS  # several people fit alike: staff must tell
            if alike:
                value = value - AMBIGUITY
            elif value < top:  # one text names one person: the others fall behind the best by more
                value = value - RUNNER_UP * (top - value)
            ranked.append((p, round(value, 4), birth, alike))
        ranked.sort(key=lambda s: (-s[1], s[0].entry.id))
        chosen = [r for r in ranked if r[1] >= KEEP][:CANDIDATES]
        return [(p.entry, value, reasons(p, birth, transport, number) + (f"; {close} people match alike"
                                                                          if alike else ""))
                for p, value, birth, alike in chosen]
