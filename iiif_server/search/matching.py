"""A query's hits in one document or a batch of documents, in one plan: each query word's candidate entries
through the tier ladder (a few index look-ups per word, whatever the number of documents), then entries and
lines ranked in memory by how many words match how closely (names.py).

What is read depends only on what the requester may read: every look-up carries the pages they may read, and
the vocabulary look-ups (Daitch–Mokotoff codes, the deletions of typos) are exact sets, never cut to a number
that words elsewhere could fill. The work is bounded per query: at most PHRASE_MAX words, each of at most
TYPO_MAX letters for typos, and at most ROWS_MAX index rows per word and look-up.

The unit of a name is an entry (a CSV row) or an ALTO line: a query of several words matches them in any
order within one unit, never across two, except a phrase typed in order that runs on over a line break within
one ALTO TextBlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from iiif_server.db.bulk import chunks
from iiif_server.db.models import TextCode, TextEntry, TextKey, TextTerm, TextVocab
from iiif_server.search import names
from iiif_server.search.names import EXACT, FOLDED, PREFIX, SOUNDS, TIER_COST, TYPO, WordMatch
from iiif_server.search.results import Pages

TOP = "\U0010ffff"  # above every character: [p, p + TOP) holds every term starting with p
PHRASE_MAX = 8  # words of a query
ROWS_MAX = 20_000  # index rows one look-up of one word reads at most
PAGES_MAX = 2_000  # pages of the first word that narrow the other words' look-ups (more: not narrowed)
MISSING = 10_000  # the cost of a missing word (a query of three words or more may miss one)
PARTICLE_MISSING = 20  # the cost of a missing particle (van, de ...)
FAR = 3  # letters apart (registers aside) of a sound-alike that a word one letter off in the document sets aside
GLUED = 15  # the cost of meeting a name through its glued particles (Dewolf / De Wolf)
CROSS_LINE = 2  # a phrase over a line break ranks after the same words on one line


@dataclass(frozen=True)
class Row:
    """One word of one entry, as a look-up found it."""

    document_pk: int
    entry_id: int
    ord: int
    norm: str
    image_pk: int
    source: str
    pos: int | None
    start: int | None
    unit: int | None
    block: int | None
    text: str

    @property
    def alto(self) -> bool:
        return self.start is not None

    @property
    def unit_key(self) -> tuple[str, int]:
        """The unit of a name: the ALTO line (its first word's id), or the entry itself."""
        return ("u", self.unit) if self.alto and self.unit is not None else ("e", self.entry_id)


@dataclass(frozen=True)
class Found:
    """A hit before it is read: its rank (lower is better), worst tier, its entries (ids, in order) and the
    words that matched (entry id, word's place in the entry)."""

    document_pk: int
    rank: int
    tier: int
    entries: tuple[int, ...]
    matched: tuple[tuple[int, int], ...] = field(default=())

    @property
    def key(self) -> tuple[int, int]:
        return self.rank, self.entries[0]


_COLUMNS = (TextTerm.document_pk, TextTerm.entry_id, TextTerm.ord, TextTerm.norm, TextEntry.image_pk,
            TextEntry.source, TextEntry.pos, TextEntry.start, TextEntry.unit, TextEntry.block, TextEntry.text)



@lru_cache(maxsize=4096)
def _splits(norm: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    """A word that may be a name glued to its particles: (particles, the rest) for each way to read it
    (`vanderberg` -> (van, der) + berg, (van) + derberg); the rest of three letters or more."""
    found: list[tuple[tuple[str, ...], str]] = []

    def walk(prefix: tuple[str, ...], rest: str) -> None:
        for particle in names.PARTICLES:
            if len(particle) > 1 and rest.startswith(particle) and len(rest) - len(particle) >= 3:
                tail = rest[len(particle):]
                found.append(((*prefix, particle), tail))
                if len(prefix) < 2:
                    walk((*prefix, particle), tail)

    walk((), norm)
    return tuple(sorted(set(found)))


class Matcher:
    """The look-ups and ranking of one query (one request), over the documents given to `find`."""

    def __init__(self, session: Session, query: str) -> None:
        self.session = session
        self.words = names.query_words(query, PHRASE_MAX)
        self.content = [n for n, w in enumerate(self.words) if not w.particle]
        self._codes: dict[int, list[str]] = {}
        self._typos: dict[int, list[str]] = {}
        self._sounds: dict[int, tuple[list[str], list[str]]] = {}
        self._misread: dict[int, list[str]] = {}
        self._split_forms: dict[int, dict[str, tuple[str, ...]]] = {}
        self._units: dict[int, int | None] = {}
        self.before: dict[tuple[int, int], int] = {}  # (entry, word) matched through particles -> ALTO words before

    # -- the vocabulary: exact sets, never cut --------------------------------------------------------------

    def codes(self, n: int) -> list[str]:
        if n not in self._codes:
            word = self.words[n]
            self._codes[n] = sorted(names.codes(word.typed)) if len(word.norm) >= names.FUZZY_MIN else []
        return self._codes[n]

    def _coded(self, codes: Sequence[str]) -> list[str]:
        """The words of the vocabulary under any of these Daitch–Mokotoff codes (the whole set)."""
        if not codes:
            return []
        return sorted(set(self.session.execute(select(TextCode.norm).where(TextCode.code.in_(codes))).scalars()))

    def fuzzy(self, n: int) -> bool:
        """Whether query word n gets the fuzzy tiers (sound-alikes, typos): particles, beginnings only (`gold*`)
        and words shorter than FUZZY_MIN do not."""
        word = self.words[n]
        return not (len(word.norm) < names.FUZZY_MIN or word.particle or word.prefix_only)

    def sound_forms(self, n: int) -> tuple[list[str], list[str]]:
        """The words of the vocabulary sharing a code with query word n (and not beginning with it): those near
        it (one letter apart at most, registers aside), and the others."""
        if n not in self._sounds:
            word = self.words[n].norm
            near: list[str] = []
            far: list[str] = []
            for w in self._coded(self.codes(n)):
                if not w.startswith(word):
                    (near if names.near(word, w) else far).append(w)
            self._sounds[n] = (near, far)
        return self._sounds[n]

    def misread(self, n: int) -> list[str]:
        """The words of the vocabulary that read as query word n once the registers' spellings and the OCR's
        misreadings are set aside (Birnfelcl for Birnfeld, Go1dbergh for Goldbergh), not beginning with it: the
        exact set under its reading's key. Only the query's own reading is looked up: going on from the words
        found would make an answer depend on which other words exist, restricted ones included."""
        if n not in self._misread:
            word = self.words[n].norm
            self._misread[n] = sorted(w for w in self._read(word) if not w.startswith(word))
        return self._misread[n]

    def _read(self, word: str) -> set[str]:
        """The words of the vocabulary that read as this one (the whole set, under one key)."""
        key = names.READING + names.reading(word)
        return set(self.session.execute(select(TextKey.norm).where(TextKey.key == key)).scalars())

    def split_forms(self, n: int) -> dict[str, tuple[str, ...]]:
        """For a query word that may be a name glued to its particles (`deleeuv`): the words a page may spell
        its rest with (`leeuv`, and `leeuw` or `leenw` of the vocabulary: the same name in another register,
        or misread), each with the rests it stands for."""
        if n not in self._split_forms:
            word = self.words[n]
            rests = sorted({rest for _, rest in _splits(word.norm)}) if not word.particle else []
            forms: dict[str, set[str]] = {rest: {rest} for rest in rests}
            for rest in rests:
                coded = self._coded(sorted(names.codes(rest)) if len(rest) >= names.FUZZY_MIN else [])
                for form in {*coded, *self._read(rest)}:  # another register's spelling, or misread
                    if names.spelling_distance(rest, form) == 0:
                        forms.setdefault(form, set()).add(rest)
            self._split_forms[n] = {form: tuple(sorted(r)) for form, r in forms.items()}
        return self._split_forms[n]

    def typos(self, n: int) -> list[str]:
        """Every word of the vocabulary one letter off the query word (not starting with it), as typed or as
        other registers would spell it (a typo in a name spelt otherwise): by equality on the deletions, at most
        (1 + SPELLINGS_MAX) x (32 + 1) keys."""
        if n not in self._typos:
            word = self.words[n].norm
            keys = sorted(set().union(*(names.typo_keys(form) for form in (word, *names.register_spellings(word)))))
            found: set[str] = set()
            for chunk in chunks(keys):
                found.update(self.session.execute(select(TextKey.norm).where(TextKey.key.in_(chunk))).scalars())
                found.update(self.session.execute(select(TextVocab.norm).where(TextVocab.norm.in_(chunk))).scalars())
            self._typos[n] = sorted(w for w in found if not w.startswith(word) and w != word
                                    and (names.distance(word, w, 1) <= 1 or names.spelling_distance(word, w) <= 1))
        return self._typos[n]

    # -- the look-ups ---------------------------------------------------------------------------------------

    def _rows(self, scope: ColumnElement[bool], *norm: ColumnElement[bool]) -> list[Row]:
        stmt: Select = (select(*_COLUMNS).select_from(TextTerm).join(TextEntry, TextEntry.id == TextTerm.entry_id)
                        .where(scope, *norm).limit(ROWS_MAX))
        return [Row(*r) for r in self.session.execute(stmt)]

    def _among(self, scope: ColumnElement[bool], norms: list[str]) -> list[Row]:
        return [row for chunk in chunks(norms) for row in self._rows(scope, TextTerm.norm.in_(chunk))]

    def lookups(self, scope: ColumnElement[bool], n: int, fuzzy: bool = True) -> dict[str, list[Row]]:
        """The rows of query word n, by kind: near (the word, words it begins, its glued spellings), split
        (a glued query word's last part), sounds (Daitch–Mokotoff, the near ones: `find` reads the others only
        where they count), misread (OCR), typos."""
        word = self.words[n]
        w = word.norm
        short = len(w) < names.FUZZY_MIN or word.particle
        near = [TextTerm.norm == w] if short else [TextTerm.norm >= w, TextTerm.norm < w + TOP]
        found: dict[str, list[Row]] = {"near": self._rows(scope, *near)}
        if word.glued:
            found["glued"] = self._rows(scope, TextTerm.norm.in_(word.glued))
        forms = self.split_forms(n)
        if forms:
            found["split"] = self._among(scope, sorted(forms))
        if not fuzzy or not self.fuzzy(n):
            return found
        near_sounds = self.sound_forms(n)[0]
        if near_sounds:
            found["sounds"] = self._among(scope, near_sounds)
        misread = sorted(set(self.misread(n)) - set(near_sounds))
        if misread:
            found["misread"] = self._among(scope, misread)
        typos = self.typos(n)
        if typos:
            found["typos"] = self._rows(scope, TextTerm.norm.in_(typos))
        return found

    def _preceding(self, rows: list[Row]) -> dict[int, dict[int, str]]:
        """The words of the entries holding `rows` and of the ALTO words before them: entry id -> {ord: norm}
        (a glued query word's particles are checked against them)."""
        ids = sorted({r.entry_id for r in rows} | {r.entry_id - k for r in rows if r.alto for k in (1, 2, 3)})
        found: dict[int, dict[int, str]] = {}
        for chunk in chunks(ids):
            for entry_id, ord_, norm in self.session.execute(
                    select(TextTerm.entry_id, TextTerm.ord, TextTerm.norm).where(TextTerm.entry_id.in_(chunk))):
                found.setdefault(entry_id, {})[ord_] = norm
        units = {}
        for chunk in chunks(ids):
            units.update(dict(self.session.execute(select(TextEntry.id, TextEntry.unit)
                                                   .where(TextEntry.id.in_(chunk))).all()))
        self._units = units
        return found

    # -- ranking ----------------------------------------------------------------------------------------------

    def _matches(self, n: int, kinds: dict[str, list[Row]],
                 best: dict[tuple[int, int], tuple[WordMatch, Row]] | None = None
                 ) -> dict[tuple[int, int], tuple[WordMatch, Row]]:
        """Query word n's best match per (entry, word of the entry) (added to `best`, when given)."""
        word = self.words[n]
        w = word.norm
        best = {} if best is None else best

        def keep(row: Row, how: WordMatch) -> None:
            key = (row.entry_id, row.ord)
            if key not in best or how.cost < best[key][0].cost:
                best[key] = (how, row)

        for row in kinds.get("near", []):
            if row.norm == w:
                keep(row, names.WordMatch(EXACT, 0, "as typed") if _typed(row, word.typed)
                     else names.WordMatch(FOLDED, FOLDED * TIER_COST, "case or accents"))
            elif len(w) >= names.FUZZY_MIN and row.norm.startswith(w):
                keep(row, WordMatch(PREFIX, PREFIX * TIER_COST + min(len(row.norm) - len(w), TIER_COST - 1),
                                    "begins the word"))
        for row in kinds.get("glued", []):
            keep(row, WordMatch(FOLDED, FOLDED * TIER_COST + GLUED, "glued particles"))
        split_rows = kinds.get("split", [])
        if split_rows:
            words = self._preceding(split_rows)
            forms = self.split_forms(n)
            for row in split_rows:
                for particles, rest in _splits(w):
                    if rest in forms.get(row.norm, ()) and self._preceded(row, particles, words):
                        # the rest as glued, or spelt as another register writes it (Deleeuv, De Leeuw)
                        other = 0 if row.norm == rest else names.SAME_NAME
                        keep(row, WordMatch(FOLDED, FOLDED * TIER_COST + GLUED + other, "glued particles"))
                        if row.alto:
                            self.before[(row.entry_id, row.ord)] = len(particles)
        for row in kinds.get("sounds", []):
            if not row.norm.startswith(w):
                keep(row, WordMatch(SOUNDS, names.sounds_cost(w, row.norm), "sounds alike"))
        for row in kinds.get("misread", []):  # ranked and kept as the sound-alikes, by how many letters apart
            keep(row, WordMatch(SOUNDS, names.sounds_cost(w, row.norm), "misread"))
        for row in kinds.get("typos", []):
            keep(row, WordMatch(TYPO, names.TYPO_COST, "one letter off"))
        return best

    def _preceded(self, row: Row, particles: tuple[str, ...], words: dict[int, dict[int, str]]) -> bool:
        """Whether the particles stand right before the row's word, in its entry (CSV) or line (ALTO), as written
        or a letter off as OCR reads them (`Vann`, `Dc`)."""
        if row.alto:
            for k, particle in enumerate(reversed(particles), 1):
                before = row.entry_id - k
                if self._units.get(before) != row.unit or not _particle(words.get(before, {}).get(0), particle):
                    return False
            return True
        own = words.get(row.entry_id, {})
        return all(_particle(own.get(row.ord - k), p) for k, p in enumerate(reversed(particles), 1))

    def first_word(self, order: Sequence[int] | None = None) -> int | None:
        """The content word looked up first in a query of several (`order`: rarest first, when the caller knows;
        else the longest: surnames are rarer than given names)."""
        content = self.content or list(range(len(self.words)))
        if len(self.words) < 2:
            return None
        if order:
            return next(n for n in order if n in content)
        return max(content, key=lambda n: (len(self.words[n].norm), -n))

    def find(self, scope: ColumnElement[bool], order: Sequence[int] | None = None) -> dict[int, list[Found]]:
        """Every hit in the documents `scope` selects (with the pages readable), ranked, per document."""
        if not self.words:
            return {}
        per_word: list[dict[tuple[int, int], tuple[WordMatch, Row]]] = [{} for _ in self.words]
        content = self.content or list(range(len(self.words)))
        first = self.first_word(order)
        pages: list[int] | None = None
        for n in ([first, *(k for k in range(len(self.words)) if k != first)] if first is not None
                  else range(len(self.words))):
            within = scope if pages is None else and_(scope, TextEntry.image_pk.in_(pages))
            best = self._matches(n, self.lookups(within, n))
            closer = self._closer(n, best)
            far = self.sound_forms(n)[1] if self.fuzzy(n) else []
            if far:  # other names of the word's code: read only in documents where it finds nothing closer
                rest = and_(within, TextTerm.document_pk.not_in(sorted(closer))) if closer else within
                best = self._matches(n, {"sounds": self._among(rest, far)}, best)  # far ones: `closer` stays
            per_word[n] = self._narrow(n, best, closer)
            if n == first and len(content) <= 2:
                # every hit holds this word (one or two content words: none may be missing), so the other words
                # are looked up only on the pages where it stands: a common given name is not read everywhere
                held = sorted({row.image_pk for _, row in per_word[n].values()})
                if not held:
                    return {}
                pages = held if len(held) <= PAGES_MAX else None
        if len(self.words) == 1:
            hits: dict[int, list[Found]] = {}
            for how, row in per_word[0].values():
                first = row.entry_id - self.before.get((row.entry_id, row.ord), 0)
                hits.setdefault(row.document_pk, []).append(Found(
                    row.document_pk, how.cost, how.tier, tuple(range(first, row.entry_id + 1)),
                    ((row.entry_id, row.ord),)))
            return {d: _dedupe(found) for d, found in hits.items()}
        return self._units_and_phrases(per_word)

    def _closer(self, n: int, best: dict[tuple[int, int], tuple[WordMatch, Row]]) -> set[int]:
        """Documents where query word n finds something closer than a sound-alike more than a letter apart."""
        word = self.words[n].norm
        return {row.document_pk for how, row in best.values()
                if how.tier < SOUNDS or how.tier == SOUNDS and names.near(word, row.norm)}

    def _narrow(self, n: int, best: dict[tuple[int, int], tuple[WordMatch, Row]], closer: set[int]
                ) -> dict[tuple[int, int], tuple[WordMatch, Row]]:
        """Per document, what a word's closest matches there say it is:

        - a sound-alike that only shares the chart's code with the word (Rotfeld for Rotblat: more than a letter
          apart once the registers' spellings are set aside) stays only where the word finds nothing closer (the
          name, its spellings in other registers, a word it begins); beside a word one letter off (most likely
          the name, mistyped) only if it is less than FAR letters apart;
        - a word that begins words but is not a name there (in any register's spelling) is taken as their
          beginning: no typos, and no sound-alikes but its own spellings in other registers (`Goldsz` finds
          Goldsztajn, not Goldes or Golds; `Fisher` finds Fiszer and Fisherowicz);
        - a word that is a name there is taken as that name: the longer names it begins are other people's
          (`Zylber` beside Zylberman), unless the query asks for beginnings (`Zylber*`) or the longer word is
          still the name (`Kirszmann` for Kirszman, a woman's `Goldsztajnowa`).

        `closer`: the documents where the word finds something closer than such a sound-alike (`_closer`).
        Decided on the rows the requester may read, as everything else."""
        word = self.words[n].norm
        whole: set[int] = set()
        begins: set[int] = set()
        typos: set[int] = set()
        for how, row in best.values():
            if how.tier <= FOLDED or how.tier == SOUNDS and names.spelling_distance(word, row.norm) == 0:
                whole.add(row.document_pk)
            elif how.tier == PREFIX:
                begins.add(row.document_pk)
            elif how.tier == TYPO:
                typos.add(row.document_pk)
        beginning = self.words[n].prefix_only
        if not closer and not typos and (beginning or not whole & begins):
            return best

        def keeps(how: WordMatch, row: Row) -> bool:
            doc = row.document_pk
            if doc in begins and doc not in whole:
                return how.tier <= PREFIX or how.tier == SOUNDS and names.spelling_distance(word, row.norm) == 0
            if how.tier == PREFIX:  # beside the name itself, a longer word it begins is another name
                return beginning or doc not in whole or names.same_name_longer(word, row.norm)
            if how.tier == TYPO:  # one letter off only as another register spells it: where nothing is closer
                return doc not in closer or names.distance(word, row.norm, 1) <= 1
            if how.tier != SOUNDS:
                return True
            apart = names.spelling_distance(word, row.norm)
            return apart <= names.NEAR or doc not in closer and (doc not in typos or apart < FAR)

        return {k: v for k, v in best.items() if keeps(*v)}

    def _units_and_phrases(self, per_word: list[dict[tuple[int, int], tuple[WordMatch, Row]]]
                           ) -> dict[int, list[Found]]:
        units: dict[tuple[int, tuple[str, int]], dict[int, list[tuple[WordMatch, Row]]]] = {}
        for n, best in enumerate(per_word):
            for how, row in best.values():
                units.setdefault((row.document_pk, row.unit_key), {}).setdefault(n, []).append((how, row))
        content = self.content or list(range(len(self.words)))
        allowed_missing = 1 if len(content) >= 3 else 0
        hits: dict[int, list[Found]] = {}
        for (document_pk, _), options in units.items():
            missing = [n for n in content if n not in options]
            if len(missing) > allowed_missing:
                continue
            used: set[tuple[int, int]] = set()
            cost, tier, places = 0, EXACT, []
            chosen: list[Row] = []
            for n in sorted(options, key=lambda k: min(h.cost for h, _ in options[k])):
                choices = sorted(options[n], key=lambda hr: (hr[0].cost, hr[1].entry_id, hr[1].ord))
                pick = next((hr for hr in choices if (hr[1].entry_id, hr[1].ord) not in used), None)
                if pick is None:
                    continue
                how, row = pick
                used.add((row.entry_id, row.ord))
                cost += how.cost
                tier = max(tier, how.tier)
                places.append((n, row.pos if row.alto else row.ord, row))
                chosen.append(row)
            absent = [n for n in range(len(self.words)) if n not in {p[0] for p in places}]
            missing_content = [n for n in absent if n in content]
            if len(missing_content) > allowed_missing or not chosen:
                continue
            cost += MISSING * len(missing_content) + PARTICLE_MISSING * (len(absent) - len(missing_content))
            in_order = [p[1] for p in sorted(places, key=lambda p: p[0])]
            cost += 0 if in_order == sorted(in_order) else 1
            alto = chosen[0].alto
            ids = sorted({r.entry_id for r in chosen})
            entries = tuple(range(ids[0], ids[-1] + 1)) if alto else (ids[0],)
            hits.setdefault(document_pk, []).append(
                Found(document_pk, cost, tier, entries, tuple(sorted((r.entry_id, r.ord) for r in chosen))))
        for document_pk, found in self._phrases(per_word).items():
            hits.setdefault(document_pk, []).extend(found)
        return {d: _dedupe(found) for d, found in hits.items()}

    def _phrases(self, per_word: list[dict[tuple[int, int], tuple[WordMatch, Row]]]) -> dict[int, list[Found]]:
        """The query's words in order on consecutive ALTO words that run over a line break within one block."""
        at: dict[tuple[int, str, int], dict[int, tuple[WordMatch, Row]]] = {}
        for n, best in enumerate(per_word):
            for how, row in best.values():
                if row.alto and row.pos is not None:
                    place = at.setdefault((row.image_pk, row.source, row.pos), {})
                    if n not in place or how.cost < place[n][0].cost:
                        place[n] = (how, row)
        found: dict[int, list[Found]] = {}
        last = len(self.words) - 1
        for (image, source, pos), first in at.items():
            if 0 not in first:
                continue
            run = [first[0]]
            for k in range(1, last + 1):
                step = at.get((image, source, pos + k), {}).get(k)
                if step is None or step[1].block != run[0][1].block:
                    break
                run.append(step)
            if len(run) != last + 1 or len({r.unit for _, r in run}) < 2:
                continue  # not the whole phrase, or on one line (the line's hit has it)
            rows = [r for _, r in run]
            cost = sum(h.cost for h, _ in run) + CROSS_LINE
            found.setdefault(rows[0].document_pk, []).append(Found(
                rows[0].document_pk, cost, max(h.tier for h, _ in run), tuple(r.entry_id for r in rows),
                tuple((r.entry_id, r.ord) for r in rows)))
        return found


def _particle(found: str | None, particle: str) -> bool:
    return found == particle or found is not None and 0 < len(found) and names.distance(found, particle, 1) <= 1


def _typed(row: Row, typed: str) -> bool:
    """Whether the entry has the word exactly as typed at that place."""
    words = names.tokens(row.text)
    return 0 <= row.ord < len(words) and words[row.ord] == typed or typed in words and len(words) == 1


def _dedupe(found: list[Found]) -> list[Found]:
    """One hit per first entry (its best), ranked."""
    best: dict[int, Found] = {}
    for f in found:
        if f.entries[0] not in best or f.key < best[f.entries[0]].key:
            best[f.entries[0]] = f
    return sorted(best.values(), key=lambda f: f.key)


def scope_of(documents: dict[int, Pages]) -> ColumnElement[bool]:
    """The SQL condition for the rows of these documents on the pages readable in each."""
    whole = [d for d, p in documents.items() if p.everything and not p.denied]
    parts: list[ColumnElement[bool]] = []
    if whole:
        parts.append(TextTerm.document_pk.in_(whole))
    for d, pages in documents.items():
        if d in whole or pages.none:
            continue
        clause = pages.clause(TextEntry.image_pk)
        parts.append(and_(TextTerm.document_pk == d, *([clause] if clause is not None else [])))
    return or_(*parts) if parts else false()


__all__ = ["PHRASE_MAX", "ROWS_MAX", "TOP", "Found", "Matcher", "Row", "scope_of"]
