"""Finding people by name: every person's names in memory, indexed by word, code and deletion (typos).

The archive's people are a list of known, bounded size (26,000): each process holds their names, dates,
places and transports (a few MB) and rebuilds them when the catalogue's `person_index` counter moves (an
import, a person hidden or shown), never on a link decision or an ingest. A query's words each find names
through the tiers Content Search ranks by (`search.names`: as typed, folded, prefix, sounds alike, one letter
off, with the same rules of length); a person matches when
every word finds one of their names, at the worst of those words' tiers. Results are ranked by tier, then by
closeness within it as Content Search ranks (`names.match_word`'s cost: a shorter word begun, fewer letters
changed), then surname, given names and birth, and paged by that key.
"""

from __future__ import annotations

import base64
import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Person, State, sort_key
from iiif_server.db.persons import PERSON_INDEX
from iiif_server.errors import RequestError
from iiif_server.search.namematch import NONE, name_words, surname_forms
from iiif_server.search.names import (
    EXACT,
    FOLDED,
    FUZZY_MIN,
    PREFIX,
    SOUNDS,
    TIER_COST,
    TYPO,
    TYPO_MAX,
    TYPO_MIN,
    QueryWord,
    codes,
    deletions,
    distance,
    glued_forms,
    match_word,
    query_words,
    typo_keys,
)
from iiif_server.words import normalise as fold

QUERY_WORDS = 6  # words of a query
PREFIX_WORDS = 2000  # distinct name words a prefix reaches at most
PAGE = 20
NO_COST = 9 * TIER_COST  # a query word no word of the person's meets by itself (a missing particle)


@dataclass(frozen=True)
class Entry:
    """A person as the index holds them."""

    id: str
    surname: str
    given_names: str
    birth_date: str | None
    birth_year: int | None
    birth_place: str | None
    transport: str | None
    number: str | None
    hidden: bool
    order: str  # surname, given names, birth: the results' order within a tier


@dataclass(frozen=True)
class Filters:
    year: int | None = None
    within: int = 0  # years either side of `year`
    place: str = ""
    transport: str = ""
    hidden: bool = False  # staff: hidden people too

    def keeps(self, entry: Entry) -> bool:
        if entry.hidden and not self.hidden:
            return False
        if self.year is not None and (entry.birth_year is None or abs(entry.birth_year - self.year) > self.within):
            return False
        if self.transport and (entry.transport or "").casefold() != self.transport.casefold():
            return False
        if self.place:
            have = fold(entry.birth_place or "").split()
            return all(any(w.startswith(want) for w in have) for want in fold(self.place).split())
        return True


@dataclass(frozen=True)
class Found:
    entry: Entry
    tier: int


@dataclass
class PersonIndex:
    entries: list[Entry]
    by_typed: dict[str, set[int]] = field(default_factory=dict)  # a name word as written -> people
    by_word: dict[str, set[int]] = field(default_factory=dict)  # folded
    words: list[str] = field(default_factory=list)  # the folded words, sorted (prefixes)
    by_code: dict[str, set[str]] = field(default_factory=dict)  # Daitch–Mokotoff code -> folded words
    by_key: dict[str, set[str]] = field(default_factory=dict)  # a deletion of a folded word -> those words
    by_surname: dict[str, set[int]] = field(default_factory=dict)  # folded surname form -> people
    surname_codes: dict[str, set[str]] = field(default_factory=dict)  # code -> folded surname forms
    positions: dict[str, int] = field(default_factory=dict)  # person id -> index

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> PersonIndex:
        index = cls(sorted(entries, key=lambda e: (e.order, e.id)))
        spelt: set[str] = set()  # the surname forms as written
        for n, entry in enumerate(index.entries):
            index.positions[entry.id] = n
            for word in name_words(f"{entry.surname} {entry.given_names}"):
                index.by_typed.setdefault(word, set()).add(n)
                index.by_word.setdefault(fold(word), set()).add(n)
            for form in surname_forms(entry.surname):
                index.by_surname.setdefault(fold(form), set()).add(n)
                spelt.add(form)
            for _, _, form in glued_forms([fold(w) for w in name_words(entry.surname)]):  # Vanpraag finds Van Praag
                index.by_word.setdefault(form, set()).add(n)
        index.words = sorted(index.by_word)
        for word in index.by_typed:  # codes of the spelling as written too (Ą, Ę, Ţ), as Content Search's
            for code in codes(word):
                index.by_code.setdefault(code, set()).add(fold(word))
        for word in {*index.words, *index.by_surname}:
            for key in deletions(word) if TYPO_MIN <= len(word) <= TYPO_MAX else ():
                index.by_key.setdefault(key, set()).add(word)
        for form in spelt:
            for code in codes(form):
                index.surname_codes.setdefault(code, set()).add(fold(form))
        return index

    # -- one word -----------------------------------------------------------------------------------

    def _typos(self, word: str) -> list[str]:
        """Name words and surname forms one letter off `word` (folded), as Content Search finds them: through
        the deletions both share."""
        found: set[str] = set()
        for key in typo_keys(word):
            found |= self.by_key.get(key, set())
            if key in self.by_word or key in self.by_surname:
                found.add(key)
        return [w for w in found if w != word and distance(word, w, 1) <= 1]

    def word_matches(self, word: str, prefix: bool = True, fuzzy: bool = True) -> dict[int, int]:
        """Every person a word finds, with the best tier at which it finds one of their names, by the rules of
        `names.match_word`: `prefix` whether a name the word begins counts, `fuzzy` whether sound-alikes and
        words one letter off do."""
        found: dict[int, int] = {}

        def add(people: Iterable[int], tier: int) -> None:
            for n in people:
                if found.get(n, NONE) > tier:
                    found[n] = tier

        add(self.by_typed.get(word, ()), EXACT)
        fw = fold(word)
        add(self.by_word.get(fw, ()), FOLDED)
        if len(fw) < FUZZY_MIN:
            return found
        if prefix:
            start = bisect.bisect_left(self.words, fw)
            for other in self.words[start:start + PREFIX_WORDS]:
                if not other.startswith(fw):
                    break
                add(self.by_word[other], PREFIX)
        if not fuzzy:
            return found
        for code in codes(word):
            for other in self.by_code.get(code, ()):
                add(self.by_word[other], SOUNDS)
        for other in self._typos(fw):
            add(self.by_word.get(other, ()), TYPO)
        return found

    def surname_candidates(self, word: str) -> set[int]:
        """People whose surname (or a word of it) a word written on a page may be: folded, coded alike, or a
        typing error away."""
        fw = fold(word)
        found = set(self.by_surname.get(fw, ()))
        if len(fw) < FUZZY_MIN:
            return found
        for code in codes(word):
            for form in self.surname_codes.get(code, ()):
                found |= self.by_surname[form]
        for other in self._typos(fw):
            found |= self.by_surname.get(other, set())
        return found

    # -- a query --------------------------------------------------------------------------------------

    def search(self, query: str, filters: Filters, after: str = "", limit: int = PAGE) -> tuple[list[Found], str]:
        """A page of the people every word of the query finds, best tier first, and the next page's cursor
        ("" at the end)."""
        words = [w for w in query_words(query, QUERY_WORDS) if any(c.isalpha() for c in w.norm)]
        if not words:
            return [], ""
        tiers: dict[int, int] | None = None
        for word in sorted(words, key=lambda w: w.particle):  # particles last: they only lower a tier
            matches = self.word_matches(word.typed, fuzzy=not word.prefix_only)
            for form in word.glued:  # `van praag` finds Vanpraag
                for n, tier in self.word_matches(form, fuzzy=not word.prefix_only).items():
                    matches[n] = min(tier, matches.get(n, NONE))
            if tiers is None:
                tiers = matches
            elif word.particle:  # a particle may be missing, as in search (`de jong` finds Dejong, Jong)
                tiers = {n: max(t, matches.get(n, t)) for n, t in tiers.items()}
            else:
                tiers = {n: max(t, matches[n]) for n, t in tiers.items() if n in matches}
            if not tiers:
                return [], ""
        assert tiers is not None
        start = decode_cursor(after)
        kept = [(t, n) for n, t in tiers.items() if filters.keeps(self.entries[n])]
        costs = self._costs([w for w in words if not w.particle], [n for _, n in kept])
        keys = sorted((t, costs[n], self.entries[n].order, self.entries[n].id, n) for t, n in kept)
        first = bisect.bisect_right(keys, start, key=lambda k: k[:4]) if start else 0
        page = keys[first:first + limit]
        more = first + limit < len(keys)
        cursor = encode_cursor(keys[first + limit - 1][:4]) if more and page else ""
        return [Found(self.entries[k[4]], k[0]) for k in page], cursor

    def _costs(self, words: list[QueryWord], people: list[int]) -> dict[int, int]:
        """How close each person's names are to the query, as Content Search ranks within a tier
        (`names.match_word`'s cost: letters added to a beginning, letters changed in a sound-alike, a typo),
        summed over the query's words (each meeting the closest of the person's words); lower is closer."""
        memo: dict[tuple[int, str], int] = {}
        costs = {}
        for n in people:
            entry = self.entries[n]
            names = self.names_of(entry)
            total = 0
            for k, word in enumerate(words):
                best = NO_COST
                for name in names:
                    cost = memo.get((k, name))
                    if cost is None:
                        found = match_word(word.typed, name, fuzzy=not word.prefix_only)
                        for form in word.glued:  # `van praag` meets Vanpraag
                            glued = match_word(form, name, fuzzy=not word.prefix_only)
                            if glued is not None and (found is None or glued.cost < found.cost):
                                found = glued
                        cost = memo[(k, name)] = NO_COST if found is None else found.cost
                    best = min(best, cost)
                total += best
            costs[n] = total
        return costs

    def names_of(self, entry: Entry) -> tuple[str, ...]:
        """The words a query word may meet of a person: their names' words and their surname glued to its
        particles."""
        words = name_words(f"{entry.surname} {entry.given_names}")
        return (*words, *(form for _, _, form in glued_forms([fold(w) for w in name_words(entry.surname)])))


def encode_cursor(key: tuple[int, int, str, str]) -> str:
    raw = f"{key[0]}\x1f{key[1]}\x1f{key[2]}\x1f{key[3]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int, str, str] | None:
    """The key of the last person of the previous page (tier, closeness, order, id); RequestError (400) for
    anything this server did not give."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        tier, cost, order, ident = raw.split("\x1f")
        if not tier.isdigit() or len(tier) > 1 or not cost.isdigit() or len(cost) > 6:
            raise ValueError(tier)
        return int(tier), int(cost), order, ident
    except (ValueError, UnicodeDecodeError):
        raise RequestError(f"not a cursor this server gave: {text[:40]!r}") from None


def order_key(surname: str, given_names: str, birth_date: str | None) -> str:
    return sort_key(f"{fold(surname)} {fold(given_names)} {birth_date or ''}")


def load(catalogue: Catalogue) -> PersonIndex:
    """Every person of the catalogue, hidden ones marked."""
    with catalogue.sessions() as session:
        rows = session.execute(select(Person.id, Person.surname, Person.given_names, Person.birth_date,
                                      Person.birth_year, Person.birth_place, Person.transport, Person.number,
                                      Person.hidden)).all()
    return PersonIndex.build(Entry(*row, order=order_key(row[1], row[2], row[3])) for row in rows)


class PersonSearch:
    """This process's index of people, rebuilt when the catalogue's `person_index` counter moves."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._index: PersonIndex | None = None
        self._revision: int | None = None
        self._lock = threading.Lock()

    def revision(self) -> int:
        with self.catalogue.sessions() as session:
            return session.scalar(select(State.value).where(State.key == PERSON_INDEX)) or 0

    def index(self) -> PersonIndex:
        """Blocking: the current index (built at most once per revision, whoever asks)."""
        revision = self.revision()
        with self._lock:
            if self._index is None or revision != self._revision:
                self._index, self._revision = load(self.catalogue), revision
            return self._index

    def search(self, query: str, filters: Filters, after: str = "", limit: int = PAGE) -> tuple[list[Found], str]:
        return self.index().search(query, filters, after, limit)


def tier_words(tier: int) -> str:
    return {EXACT: "as written", FOLDED: "without accents", PREFIX: "beginning", SOUNDS: "sounds alike",
            TYPO: "spelt nearly alike"}.get(tier, "")


__all__ = ["Entry", "Filters", "Found", "PersonIndex", "PersonSearch", "tier_words"]
