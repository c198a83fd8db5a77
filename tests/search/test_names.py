"""The name matching as plain functions (iiif_server/search/names.py), for the search and for any code that
compares two names: the tiers, closeness, particles, the Dutch ij."""

from __future__ import annotations

import pytest

from iiif_server.search.names import (
    EXACT,
    FOLDED,
    PREFIX,
    SOUNDS,
    TYPO,
    best_matches,
    compare,
    distance,
    match_word,
    query_words,
    typo_keys,
)


@pytest.mark.parametrize(("query", "word", "tier"), [
    ("Lévy", "Lévy", EXACT), ("levy", "LÉVY", FOLDED), ("lodz", "Łódź", FOLDED), ("Goldsz", "Goldsztajnowa", PREFIX),
    ("Weinberg", "Wijnberg", SOUNDS), ("Vainberg", "Weinberg", SOUNDS), ("Dyk", "Dijk", SOUNDS),
    ("Kleyn", "Kleijn", SOUNDS), ("Szmul", "Schmul", SOUNDS), ("Keause", "Krause", TYPO),
])
def test_the_tiers(query: str, word: str, tier: int) -> None:
    found = match_word(query, word)
    assert found is not None and found.tier == tier, found


def test_no_match_and_short_words() -> None:
    assert match_word("Goldberg", "Kowalski") is None
    assert match_word("Ja", "Jakub") is None  # two letters: as typed or folded only
    assert match_word("Goldsz", "Goldes", fuzzy=False) is None


def test_closer_is_cheaper() -> None:
    one = match_word("Keause", "Krause")
    far = match_word("Keause", "Hersz")  # a code in common, four letters apart
    assert one is not None and far is not None and one.cost < far.cost
    assert match_word("Gold", "Golda").cost < match_word("Gold", "Goldsztajn").cost  # type: ignore[union-attr]
    assert distance("goldsztajn", "gokdsztajn") == 1 and distance("ab", "ba") == 1 and distance("a" * 9, "b" * 9) == 4


def test_full_names_in_any_order_with_particles() -> None:
    m = compare("Abram Goldberg", "Goldberg, Abram")
    assert m is not None and not m.in_order and m.tier == EXACT
    assert compare("Boruch Szwarc", "Nemes, Boruch") is None  # every word but particles must be there
    assert compare("Dewolf", "De Wolf, Maurice") is not None
    assert compare("Sara van Praag", "Vanpraag, Sara") is not None
    assert compare("De Wolf", "Wolf, Maurice").missing == ("De",)  # type: ignore[union-attr]
    found = best_matches("Chaja Goldstein", ["Goldsztajn Chaja", "Goldstein Abram", "Chaja Kowalska"])
    assert [name for name, _ in found] == ["Goldsztajn Chaja"]
    assert "sounds alike" in found[0][1].why


def test_query_words() -> None:
    words = query_words("Van der Berg Abram gold*")
    assert [(w.norm, w.particle, w.prefix_only) for w in words] == [
        ("van", True, False), ("der", True, False), ("berg", False, False), ("abram", False, False),
        ("gold", False, True)]
    assert words[2].glued == ("derberg", "vanderberg")
    assert [w.particle for w in query_words("van der")] == [False, False]  # only particles: they are the query


def test_typo_keys_are_bounded() -> None:
    assert typo_keys("abc") == set() and typo_keys("x" * 33) == set()
    assert len(typo_keys("krause")) == 7


def test_spellings_of_the_registers_are_set_aside() -> None:
    from iiif_server.search.names import near, spelling_distance

    for a, b in (("szwarc", "schwarz"), ("wajnberg", "weinberg"), ("wijnberg", "vainberg"), ("kirsz", "kirsch"),
                 ("lipszowicz", "lipszovitch"), ("kacblat", "katzblat"), ("gutman", "guttmann"), ("dyk", "dijk"),
                 ("goldsztajn", "goldstein"), ("kleijn", "klein")):
        assert near(a, b), (a, b)
    assert spelling_distance("kirsz", "kirsch") == 0 and spelling_distance("szwarc", "schwarz") == 1
    for a, b in (("rotblat", "rotfeld"), ("holcson", "kleijn"), ("felson", "vlijm"), ("frenkelwitz", "frenkelfeld")):
        assert not near(a, b), (a, b)  # one chart code, other names

