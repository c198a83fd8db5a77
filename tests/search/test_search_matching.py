"""Matching that suits names: Daitch–Mokotoff codes, trigram typos, ranked tiers, and phrases over ALTO words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.search.importer import import_text
from iiif_server.search.results import Pages
from iiif_server.search.soundex import codes
from iiif_server.search.store import EXACT, FOLDED, PREFIX, SOUNDS, TYPO, Entry, TextStore

EVERYTHING = Pages(True)


def test_variants_of_the_transport_lists_meet() -> None:
    for a, b in (("Szmul", "Schmul"), ("Goldsztajn", "Goldstein"), ("Mendelowicz", "Mendelovitch"),
                 ("Lévy", "LEVY")):
        assert set(codes(a)) & set(codes(b)), (a, b)
    assert not set(codes("Levy")) & set(codes("Goldstein"))
    assert codes("1942") == [] and codes("") == []


WORDS = {  # page: words, one ALTO-like line each
    "p1": ["Goldsztajn", "Chaja"],  # exact
    "p2": ["GOLDSZTAJN", "Icek"],  # case folded
    "p3": ["Goldsztajnowa", "Ruchla"],  # prefix
    "p4": ["Goldstein", "Abram"],  # Daitch–Mokotoff
    "p5": ["Gokdsztajn", "Moszek"],  # a typo (other code, similar trigrams)
    "p6": ["Kowalski", "Jan"],  # nothing alike
    "p7": ["Szmul", "Schmul", "Mendelovitch"],
    "p8": ["Rotblat", "Sura"],  # and one chart code with Rotfeld, four letters apart: another name
    "p9": ["Rotfeld", "Gitla"],
    "p10": ["Rotblatt", "Chil"],  # Rotblat in another register
    "p11": ["Fiszer", "Laja"],  # Fisher in the Polish register
    "p12": ["Fisherowicz", "Mala"],
    "p13": ["Vann", "Raalte", "Sara"],  # the particle as OCR read it
    "p14": ["De", "Leeuw", "Ida"],
    "p15": ["Wijnberg", "Hersz"],
    "p16": ["Birnfelcl", "Laja"],  # Birnfeld as OCR read it: cl for d
    "p17": ["Goldberg", "Perla"],
    "p18": ["Goldbcrg", "Srul"],  # Goldberg misread: c for e (another chart code)
    "p19": ["Bljl", "Chaja"],  # the Dutch ij (a ligature in print) read as lj
    "p20": ["Van", "der", "Bcrg", "Sura"],
    "p21": ["Klrsza", "Icek"],  # Kirsza misread; Kirsza is one letter from Kirsz, Klrsza two
    "p22": ["Kirsza", "Mala"],
}


@pytest.fixture
def text_store(database_url: str) -> Iterator[tuple[TextStore, dict[str, int], int]]:
    cat = Catalogue(database_url)
    cat.upgrade()
    with cat.session() as s:
        s.add(Collection(id="c", label="c", tier="public", metadata_pairs=[]))
        s.flush()
        doc = Document(collection_id="c", ident="d", label="d", position=0, metadata_pairs=[])
        s.add(doc)
        s.flush()
        images = {}
        for n, page in enumerate([*WORDS, "lines"]):
            image = Image(document_pk=doc.pk, ident=page, position=n, label=page, width=1000, height=1000,
                          checksum="0" * 64, source_path="-", source_size=1, source_mtime=0)
            s.add(image)
            s.flush()
            images[page] = image.pk
        store = TextStore(cat)
        for page, words in WORDS.items():
            line = " ".join(words)
            store.replace_page(s, doc.pk, images[page], "alto", [
                Entry(w, "word", (100 * n, 10, 90, 20), line, line.index(w)) for n, w in enumerate(words)])
        doc_pk = doc.pk
    yield store, images, doc_pk
    cat.engine.dispose()


def found(store: TextStore, doc: int, q: str, pages: Pages = EVERYTHING) -> list[tuple[str, int]]:
    hits, total, more = store.search(doc, q, pages)
    assert total == len(hits) and not more
    return [(h.text, h.tier) for h in hits]


def test_ranked_tiers(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    # Goldstein is Goldsztajn in the German register (no letter apart once sz/sch, szt/st and aj/ei are set
    # aside): the same name, before Goldsztajnowa (a woman's form); the typo ranks with sound-alikes two letters off
    assert found(store, doc, "Goldsztajn") == [
        ("Goldsztajn", EXACT), ("GOLDSZTAJN", FOLDED), ("Goldstein", SOUNDS), ("Goldsztajnowa", PREFIX),
        ("Gokdsztajn", TYPO)]
    # a name typed without capitals: nothing is exact, the rest keeps its order
    assert [t for _, t in found(store, doc, "goldsztajn")] == [FOLDED, FOLDED, SOUNDS, PREFIX, TYPO]


def test_a_name_found_brings_no_other_name_of_its_code(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, images, doc = text_store
    # Rotblat, Rotblatt and Rotfeld share a chart code; Rotfeld is four letters from Rotblat
    assert found(store, doc, "Rotblat") == [("Rotblat", EXACT), ("Rotblatt", PREFIX)]
    assert found(store, doc, "Rotblatt") == [("Rotblatt", EXACT), ("Rotblat", SOUNDS)]
    # a typo (two letters swapped) finds the name one letter off, and no other name of its code
    assert found(store, doc, "Rotbalt") == [("Rotblat", SOUNDS), ("Rotblatt", SOUNDS)]
    # where the readable pages hold neither spelling, every sound-alike stays: the chart is all there is
    only = Pages(False, allowed=(images["p9"],))
    assert found(store, doc, "Rotblat", only) == [("Rotfeld", SOUNDS)]
    # and the cut is made on what the requester may read: hidden Rotblat pages do not take Rotfeld away
    hidden = Pages(True, denied=(images["p8"], images["p10"]))
    assert found(store, doc, "Rotblat", hidden) == [("Rotfeld", SOUNDS)]


def test_a_name_glued_to_its_particles_meets_them_misread_or_in_another_register(
        text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    assert found(store, doc, "Vanraalte") == [("Vann Raalte", FOLDED)]  # van read as vann
    assert found(store, doc, "Deleeuv") == [("De Leeuw", FOLDED)]  # leeuv as leeuw: w and v, one sound
    assert found(store, doc, "Deleeuw") == [("De Leeuw", FOLDED)]
    assert found(store, doc, "Doleeuw") == []  # not a particle: nothing glued to find


def test_a_typo_in_a_name_spelt_in_another_register(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    # Wynbnerg: Wynberg mistyped, and Wynberg is Wijnberg as another register spells it
    assert found(store, doc, "Wynbnerg") == [("Wijnberg", TYPO)]
    assert found(store, doc, "Wijnbnerg") == [("Wijnberg", TYPO)]  # the plain typo, as before


def test_beside_the_name_itself_the_longer_names_it_begins_are_other_people(
        text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    # Fiszer is Fisher as a Polish register wrote it: the name is on the page, so Fisherowicz (Fisher's son's
    # name) is somebody else's; asked as a beginning, it is found
    assert found(store, doc, "Fisher") == [("Fiszer", SOUNDS)]
    assert found(store, doc, "Fisher*") == [("Fisherowicz", PREFIX)]
    # what stays: a longer spelling of the same name (a doubled letter) and a woman's form of it
    assert ("Rotblatt", PREFIX) in found(store, doc, "Rotblat")
    assert ("Goldsztajnowa", PREFIX) in found(store, doc, "Goldsztajn")


def test_names_as_the_ocr_misread_them(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    # two letters off (cl for d) and another chart code: no tier found it; OCR reads cl for d
    assert found(store, doc, "Birnfeld") == [("Birnfelcl", SOUNDS)]
    # a name in another register misread: Goldbergh is Goldberg's spelling, Goldbcrg reads as Goldberg
    assert found(store, doc, "Goldbergh") == [("Goldberg", SOUNDS), ("Goldbcrg", SOUNDS)]
    # the misreading of the very word ranks as the word in another register: before a longer name it begins
    assert found(store, doc, "Goldberg") == [("Goldberg", EXACT), ("Goldbcrg", SOUNDS)]
    # the ij misread as lj is still the diphthong other registers write y
    assert found(store, doc, "Bijl") == [("Bljl", SOUNDS)]
    assert found(store, doc, "Byl") == [("Bljl", SOUNDS)]
    # a name glued to its particles, its rest misread
    assert found(store, doc, "Vanderberg") == [("Van der Bcrg", FOLDED)]


def test_misreadings_found_depend_on_no_other_word(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, images, doc = text_store
    # Klrsza reads as Kirsza, which is near Kirsz: whether Klrsza is found must not hang on Kirsza being held
    # somewhere (here on a page the requester may not read): only the query's own reading is looked up
    hidden = Pages(True, denied=(images["p22"],))
    assert ("Klrsza", SOUNDS) not in found(store, doc, "Kirsz", hidden)
    assert found(store, doc, "Kirsz", hidden) == found(store, doc, "Kirsz", Pages(True, denied=(images["p22"],
                                                                                                 images["p21"])))


def test_spelling_variants_of_names(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    assert ("Schmul", SOUNDS) in found(store, doc, "Szmul")
    assert ("Goldstein", SOUNDS) in found(store, doc, "Goldsztajn")
    assert found(store, doc, "Mendelowicz") == [("Mendelovitch", SOUNDS)]
    assert found(store, doc, "Kowalsky") == [("Kowalski", SOUNDS)]
    assert found(store, doc, "Nobody") == []
    # short words are matched exactly only: a two-letter query does not flood the results
    assert found(store, doc, "Ja") == []


def test_hidden_pages_give_no_fuzzy_hits(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, images, doc = text_store
    hidden = Pages(True, denied=(images["p4"], images["p5"]))
    assert [t for t, _ in found(store, doc, "Goldsztajn", hidden)] == ["Goldsztajn", "GOLDSZTAJN", "Goldsztajnowa"]
    only = Pages(False, allowed=(images["p5"],))
    assert found(store, doc, "Goldsztajn", only) == [("Gokdsztajn", TYPO)]


def test_paging_runs_through_the_tiers(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    store, _, doc = text_store
    seen, after = [], ""
    while True:
        hits, total, more = store.search(doc, "Goldsztajn", EVERYTHING, after, limit=2)
        assert total == 5
        seen += [h.text for h in hits]
        if not more:
            break
        after = hits[-1].cursor
    assert seen == ["Goldsztajn", "GOLDSZTAJN", "Goldstein", "Goldsztajnowa", "Gokdsztajn"]


def test_typo_look_ups_are_bounded_whatever_the_word(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    """A typo is looked up by equality on the deletions of the word and of its spellings in other registers: at most
    (1 + SPELLINGS_MAX) x (32 + 1) keys, none for a longer word (issue 17, finding 6: a 200-letter word cost
    seconds through trigrams)."""
    from iiif_server.search.matching import Matcher
    from iiif_server.search.names import SPELLINGS_MAX, TYPO_MAX, register_spellings, typo_keys

    assert len(typo_keys("a" * TYPO_MAX)) <= 2 * TYPO_MAX + 1 and typo_keys("a" * 200) == set()
    assert len(register_spellings("wyszcwyszcwyszcwyszcwyszcwyszcwy")) <= SPELLINGS_MAX
    store, _, doc = text_store
    with store.catalogue.sessions() as s:
        # one letter off as typed, and (Goldstein) one letter off as the Polish register would write it
        assert Matcher(s, "goldsztajm").typos(0) == ["goldstein", "goldsztajn"]
        assert Matcher(s, "x" * 200).typos(0) == []


ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout><Page WIDTH="1000" HEIGHT="1000"><PrintSpace>
 <TextBlock>
  <TextLine><String CONTENT="Transport" HPOS="10" VPOS="100" WIDTH="200" HEIGHT="30"/><SP/>
   <String CONTENT="Abraham" HPOS="300" VPOS="102" WIDTH="150" HEIGHT="30"/><SP/>
   <String CONTENT="Levy" HPOS="470" VPOS="98" WIDTH="100" HEIGHT="36"/></TextLine>
  <TextLine><String CONTENT="Szmul" HPOS="820" VPOS="200" WIDTH="120" HEIGHT="30"/></TextLine>
  <TextLine><String CONTENT="Abraham" HPOS="10" VPOS="300" WIDTH="150" HEIGHT="30"/><SP/>
   <String CONTENT="Goldstein" HPOS="170" VPOS="300" WIDTH="200" HEIGHT="30"/></TextLine>
 </TextBlock></PrintSpace></Page></Layout></alto>
"""


def test_phrase_over_alto_words_within_and_across_lines(text_store: tuple[TextStore, dict[str, int], int],
                                                        tmp_path: Path) -> None:
    store, _, doc = text_store
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "lines.xml").write_text(ALTO, encoding="utf-8")
    assert import_text(store, tmp_path, "c").errors == []
    hits, total, _ = store.search(doc, "Abraham Levy", EVERYTHING)
    assert total == 1 and hits[0].text == "Abraham Levy" and hits[0].page == "lines"
    assert hits[0].boxes == ((300, 98, 270, 36),)  # the union of the two words' boxes
    assert (hits[0].before, hits[0].after) == ("Transport", "")
    # across a line break: one box per line
    hits, _, _ = store.search(doc, "levy szmul", EVERYTHING)
    assert [h.boxes for h in hits] == [((470, 98, 100, 36), (820, 200, 120, 30))]
    # within a line the words match in any order, the words between them shown; over a line break only as a
    # phrase, in order
    assert [h.text for h in store.search(doc, "Transport Levy", EVERYTHING)[0]] == ["Transport Abraham Levy"]
    assert [h.text for h in store.search(doc, "Levy Abraham", EVERYTHING)[0]] == ["Abraham Levy"]
    assert store.search(doc, "szmul levy", EVERYTHING)[0] == []
    assert [h.text for h in store.search(doc, "abraham goldstein", EVERYTHING)[0]] == ["Abraham Goldstein"]
    # the context comes from the neighbouring words: no copy of the line is stored with each word
    from iiif_server.db.models import TextEntry

    with store.catalogue.sessions() as s:
        assert s.execute(select(TextEntry.line).where(TextEntry.source == "alto").distinct()).scalars().all() == [None]
    hits, _, _ = store.search(doc, "Goldstein", EVERYTHING)
    assert [(h.page, h.before, h.after) for h in hits if h.tier == EXACT] == [("p4", "", "Abram"),
                                                                              ("lines", "Abraham", "")]


def _one_entry_at(database_url: str, revision: str, words: list[str], vocabulary: bool) -> Catalogue:
    """A catalogue at an earlier revision holding one CSV entry of `words` (in the vocabulary too, when that
    revision keeps one), then upgraded: what the migrations since make of text imported before them."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from iiif_server.db.catalogue import MIGRATIONS
    from iiif_server.words import normalise

    cat = Catalogue(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with cat.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    norms = [normalise(w) for w in words]
    with cat.engine.begin() as conn:
        conn.execute(text("INSERT INTO collections (id, label, tier, revision, metadata, created, updated) "
                          "VALUES ('c', 'c', 'public', 1, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO documents (pk, collection_id, ident, label, position, metadata, created, "
                          "updated) VALUES (1, 'c', 'd', 'd', 0, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO images (pk, document_pk, ident, position, label, width, height, checksum, "
                          "source_path, source_page, source_size, source_mtime, created, updated) VALUES "
                          "(1, 1, 'p', 0, 'p', 10, 10, 'x', '-', 0, 1, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO text_entries (id, image_pk, document_pk, source, kind, text) "
                          "VALUES (1, 1, 1, 'csv', 'name', :t)"), {"t": " ".join(words)})
        conn.execute(text("INSERT INTO text_terms (entry_id, ord, document_pk, norm) VALUES (1, :o, 1, :n)"),
                     [{"o": o, "n": n} for o, n in enumerate(norms)])
        if vocabulary:
            conn.execute(text("INSERT INTO text_vocab (norm) VALUES (:n)"), [{"n": n} for n in norms])
    cat.upgrade()
    return cat


def test_migration_0006_indexes_the_words_already_imported(database_url: str) -> None:
    cat = _one_entry_at(database_url, "0004", ["Goldstein", "Szmul"], vocabulary=False)
    store = TextStore(cat)
    assert [(h.text, h.tier) for h in store.search(1, "Goldsztajn", EVERYTHING)[0]] == [("Goldstein Szmul", SOUNDS)]
    assert [h.tier for h in store.search(1, "Schmul", EVERYTHING)[0]] == [SOUNDS]
    from iiif_server.db.models import LabelTerm

    with cat.sessions() as s:  # the documents' labels are indexed for catalogue search too
        assert s.execute(select(LabelTerm.norm, LabelTerm.document_pk)).all() == [("d", 1)]
    cat.engine.dispose()


def test_migration_0015_reads_the_words_already_imported(database_url: str) -> None:
    cat = _one_entry_at(database_url, "0014", ["Birnfelcl", "Laja"], vocabulary=True)
    store = TextStore(cat)
    assert [(h.text, h.tier) for h in store.search(1, "Birnfeld", EVERYTHING)[0]] == [("Birnfelcl Laja", SOUNDS)]
    cat.engine.dispose()


def test_the_work_of_a_query_is_bounded_whatever_its_words(text_store: tuple[TextStore, dict[str, int], int]) -> None:
    """Issue 17, finding 6: a query's statements are bounded by its words (at most 8), each word's by its kinds of
    look-up, whatever the words' length or the vocabulary's size; a 200-letter word is no dearer than a name."""
    from sqlalchemy import event

    store, _, doc = text_store
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(store.catalogue.engine, "before_cursor_execute", count)
    try:
        store.search(doc, "Goldsztajn", EVERYTHING)
        one = len(statements)
        statements.clear()
        store.search(doc, "x" * 200, EVERYTHING)
        assert len(statements) <= one
        statements.clear()
        store.search(doc, " ".join(chr(97 + n) * 32 for n in range(12)), EVERYTHING)  # 12 words: 8 are read
        assert len(statements) <= 8 * one
    finally:
        event.remove(store.catalogue.engine, "before_cursor_execute", count)
