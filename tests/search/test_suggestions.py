"""Matching people's names: the tiers of one word, the scores of a written name, the suggestions' quality on a
labelled sample (tests/fixtures/names: Polish, Yiddish, German, French and Dutch forms, accents lost, typing
errors, people of the same name), and `persons suggest` over the lists and portraits of a catalogue."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from persons_world import People
from sqlalchemy import select
from support import FIXTURES

from iiif_server.db.models import SUGGESTED, PersonLink
from iiif_server.search import namematch, names
from iiif_server.search.namematch import NONE
from iiif_server.search.names import EXACT, FOLDED, PREFIX, SOUNDS, TYPO
from iiif_server.search.persons import Entry, Filters, PersonIndex, order_key
from iiif_server.search.suggest import THRESHOLD, Suggester, quality

SAMPLE = FIXTURES / "names"


@pytest.mark.parametrize(("typed", "name", "tier"), [
    ("lévy", "lévy", EXACT), ("levy", "lévy", FOLDED), ("LEVY", "lévy", FOLDED), ("lév", "lévy", PREFIX),
    ("goldstein", "goldsztajn", SOUNDS), ("szmul", "shmul", SOUNDS), ("wajsman", "weissmann", SOUNDS),
    # the chart codes a J after a consonant not at all: a transposed "tj" still sounds alike
    ("goldsztjan", "goldsztajn", SOUNDS), ("boldsztajn", "goldsztajn", TYPO),
    ("mendelowitz", "mendelovitz", SOUNDS), ("cohen", "levy", NONE),
    # a beginning of two letters finds nothing beyond its own folded word, as in Content Search (names.FUZZY_MIN):
    # before issue 20's tiers were shared, "lé" and "ab" were prefixes of Lévy and Abraham here
    ("ab", "abraham", NONE), ("lé", "lévy", NONE), ("abr", "abraham", PREFIX), ("chaja", "chana", TYPO),
    ("kleyn", "kleijn", SOUNDS),  # the Dutch ij written y
])
def test_a_word_finds_a_name_at_its_tier_as_content_search_does(typed: str, name: str, tier: int) -> None:
    index = PersonIndex.build([Entry("1", name, "", None, None, None, None, None, False, name)])
    assert index.word_matches(typed).get(0, NONE) == tier  # the person search
    found = names.match_word(typed, name, prefix=True)  # Content Search's tier of the same two words
    assert (NONE if found is None else found.tier) == tier


def test_the_person_search_meets_particles_as_content_search_does() -> None:
    people = [("1", "Van Praag", "Sientje"), ("2", "Dejong", "Aron"), ("3", "De Jong", "Mozes"),
              ("4", "Rozen-Berg", "Chaja"), ("5", "Praagman", "Levie")]
    index = PersonIndex.build(Entry(i, s, g, None, None, None, None, None, False, order_key(s, g, None))
                              for i, s, g in people)

    def found(query: str) -> list[tuple[str, int]]:
        return [(f.entry.id, f.tier) for f in index.search(query, Filters())[0]]

    # a particle may be missing, as in Content Search: Praagman begins with "praag", Berg sounds like it
    assert found("van praag") == [("1", FOLDED), ("5", PREFIX), ("4", SOUNDS)]
    assert found("Vanpraag") == [("1", FOLDED)]  # the glued spelling of a name written apart
    assert found("de jong") == [("3", FOLDED), ("2", FOLDED)]  # written apart, or glued: Dejong
    assert found("jong") == [("3", FOLDED)] and found("Jong") == [("3", EXACT)]  # as typed: case kept
    assert found("praag*") == [("1", FOLDED), ("5", PREFIX)]  # a beginning only
    assert found("Berg Chaja") == [("4", EXACT)]  # a hyphenated name is two words, as search splits it
    assert found("Sientje 1921") == [("1", EXACT)]  # numbers are no names: the year is a filter
    assert found("van de") == []  # only particles: each must be found


def test_the_person_search_ranks_a_close_spelling_before_a_far_one_within_a_tier() -> None:
    people = [("1", "Mandelbojm", "Abraham"), ("2", "Mendelbaun", "Abraham"), ("3", "Mendelbaum", "Icek"),
              ("4", "Goldsztajnowa", "Chaja"), ("5", "Goldsztajn", "Ruchla")]
    index = PersonIndex.build(Entry(i, s, g, None, None, None, None, None, False, order_key(s, g, None))
                              for i, s, g in people)

    def found(query: str, after: str = "", limit: int = 20) -> tuple[list[tuple[str, int]], str]:
        results, cursor = index.search(query, Filters(), after, limit)
        return [(f.entry.id, f.tier) for f in results], cursor

    # both sound alike; one letter changed ranks before three, though Mandelbojm comes first by name
    assert found("Mendelbaum Abraham")[0] == [("2", SOUNDS), ("1", SOUNDS)]
    assert found("Goldsz")[0] == [("5", PREFIX), ("4", PREFIX)]  # the shorter word begun ranks first
    # pages follow that order by their cursor, no one twice and no one left out
    first, cursor = found("Mendelbaum", limit=1)
    second, cursor = found("Mendelbaum", cursor, limit=1)
    third, end = found("Mendelbaum", cursor, limit=1)
    assert first + second + third == [("3", EXACT), ("2", SOUNDS), ("1", SOUNDS)] and end == ""


def test_given_names_meet_across_languages_and_a_conflict_counts_against() -> None:
    assert namematch.compare_given("Moszek", ["moshe"]).score == 0.85
    assert namematch.compare_given("Jankiel", ["jacques"]).score == 0.85
    assert namematch.compare_given("Abraham", ["abraham"]).score == 1.0
    assert namematch.compare_given("Abraham Icek", ["icek"]).score == 1.0  # a second given name
    assert namematch.compare_given("Abraham", []).score == 0.5  # nothing written: neutral
    assert namematch.compare_given("Abraham", ["a"]).score == 0.6  # an initial that agrees
    assert namematch.compare_given("Abraham", ["m"]).score == 0.0
    assert namematch.compare_given("Abraham", ["chaim"]).score == 0.0


def test_a_surname_written_without_its_particles_is_found_for_a_little_less() -> None:
    compared, where, span = namematch.compare_surname("Van den Berg", ["Berg", "Sientje"])
    assert (compared.score, where, span) == (1.0 - namematch.PARTICLES_LEFT_OUT, 0, 1)
    assert "without its particles" in compared.how
    assert namematch.compare_surname("Van den Berg", ["van", "den", "Berg"])[0].score == 0.95  # glued: folded
    assert namematch.compare_surname("Rozen-Berg", ["Berg"])[0].score == 0.0  # half a name is no particle
    index = sample_index()
    rows = [t for t in sample_texts() if t[0] in ("Berg Sientje 1910", "Praag Mozes", "Berg Chaja 1915")]
    assert len(rows) == 3
    q = quality(index, rows, THRESHOLD)
    assert (q.suggested, q.correct, q.found) == (3, 3, 3), q  # a plain Berg stays Berg, not Van den Berg


def test_birth_dates_compare_as_precisely_as_both_are_known() -> None:
    assert namematch.dates_in("Lévy Abraham 12.03.1921 Warszawa") == ["1921-03-12"]
    assert namematch.dates_in("born 1921-03") == ["1921-03"]
    assert namematch.dates_in("Chaja, 2.7.11") == ["1911-07-02"]
    assert namematch.dates_in("31.02.1921") == ["1921"]  # no such day: the year is still worth having
    assert namematch.compare_birth("1921-03-12", ["1921-03-12"]).score == 1.0
    assert namematch.compare_birth("1921", ["1921-03-12"]).score == 0.85  # the year agrees, the rest unknown
    assert namematch.compare_birth("1921-03", ["1921"]).score == 0.85
    assert namematch.compare_birth("1921-03-12", ["1922-03-12"]).score == 0.45  # a year apart: a slip?
    assert namematch.compare_birth("1921-03-12", ["1925"]).score == 0.0
    assert namematch.compare_birth(None, ["1925"]).score == 0.5


def sample_index() -> PersonIndex:
    with (SAMPLE / "people.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return PersonIndex.build(
        Entry(r["id"], r["surname"], r["given names"], r["birth date"] or None,
              int(r["birth date"][:4]) if r["birth date"] else None, None, r["transport"] or None, None, False,
              order_key(r["surname"], r["given names"], r["birth date"])) for r in rows)


def sample_texts(path: Path = SAMPLE / "written.csv") -> list[tuple[str, str, str | None, str | None]]:
    with path.open(encoding="utf-8") as f:
        return [(r["text"], r["kind"], r["transport"] or None, r["person"] or None) for r in csv.DictReader(f)]


def test_suggestions_above_the_threshold_are_right_on_the_labelled_sample() -> None:
    texts = sample_texts()
    assert len(texts) >= 80 and sum(1 for t in texts if t[3] is None) >= 8
    q = quality(sample_index(), texts, THRESHOLD)
    assert q.precision >= 0.95, q
    assert q.recall >= 0.9, q
    # below the threshold there is more to review, and more of it wrong: the threshold does its work
    lower = quality(sample_index(), texts, 0.7)
    assert lower.recall >= q.recall and lower.precision < q.precision


async def test_suggest_proposes_lines_and_portraits_once_and_never_for_a_confirmed_place(
        people_world: People) -> None:
    catalogue = people_world.catalogue
    first = Suggester(catalogue).run(["portraits"], ["lists"])
    with catalogue.sessions() as session:
        made = session.execute(select(PersonLink.person_id, PersonLink.kind, PersonLink.box, PersonLink.score)
                               .where(PersonLink.state == SUGGESTED)).all()
    found = {(p, k, b) for p, k, b, _ in made}
    assert ("2", "line", "200,420,480,60") in found  # Goldsztain Chaja on the list of transport XX
    assert ("4", "line", "200,540,460,60") in found  # Cohen Sara: the XX one, the list's transport
    assert ("2", "portrait", "") in found
    assert not any(p == "1" for p, _, _ in found)  # Lévy's line and portrait are confirmed already
    assert not any(b == "200,300,420,60" for p, k, b in found if k == "line")  # lines confirmed for someone
    assert first.skipped_known >= 2
    again = Suggester(catalogue).run(["portraits"], ["lists"])
    assert again.suggested == 0
    # a hidden person is not proposed
    with catalogue.session() as session:
        for link in session.scalars(select(PersonLink).where(PersonLink.state == SUGGESTED)):
            session.delete(link)
    catalogue.set_hidden("2", True)
    Suggester(catalogue).run(["portraits"], ["lists"])
    with catalogue.sessions() as session:
        assert "2" not in set(session.scalars(select(PersonLink.person_id).where(PersonLink.state == SUGGESTED)))


async def test_suggest_over_two_processes_proposes_what_one_does(people_world: People) -> None:
    catalogue = people_world.catalogue

    def proposed() -> set[tuple[str, int, str, str, float, str]]:
        with catalogue.sessions() as session:
            return {tuple(r) for r in session.execute(select(
                PersonLink.person_id, PersonLink.image_pk, PersonLink.kind, PersonLink.box, PersonLink.score,
                PersonLink.reason).where(PersonLink.state == SUGGESTED))}

    alone = Suggester(catalogue).run(["portraits"], ["lists"])
    one = proposed()
    with catalogue.session() as session:
        for link in session.scalars(select(PersonLink).where(PersonLink.state == SUGGESTED)):
            session.delete(link)
    assert proposed() == set()
    shared = Suggester(catalogue, workers=2).run(["portraits"], ["lists"])
    assert one and proposed() == one
    assert (shared.examined, shared.suggested, shared.above) == (alone.examined, alone.suggested, alone.above)
