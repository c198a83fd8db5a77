"""Name search a researcher can trust (issue 20): an entry (a CSV row, an ALTO line) is the unit of a name; a
query of several words matches each word through every tier, in any order within one entry; particles and the
Dutch ij; ranking within a tier by closeness; prefixes without sound-alike noise; the same in collection search."""

from __future__ import annotations

from typing import Any

import httpx

SEARCH = "/iiif/search/1/lists/{}/search"


async def hits(client: httpx.AsyncClient, q: str, document: str = "index") -> list[str]:
    body = (await client.get(SEARCH.format(document), params={"q": q})).json()
    return [r["resource"]["chars"] for r in body["resources"]]


async def test_a_phrase_never_glues_two_entries(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    # rows "Nemes, Boruch" and "Szwarc, Dawid" follow each other: the end of one and the start of the next are
    # not a person; "Szwarc, Boruch" is
    assert await hits(client, "Boruch Szwarc") == ["Szwarc, Boruch"]
    # ALTO: two TextBlocks are two entries, even on consecutive words
    assert await hits(client, "Boruch Szwarc", "ocr") == []
    # within a block a phrase in order runs on over a line break
    assert await hits(client, "Abraham Levy", "ocr") == ["Abraham Levy", "Abraham Levy"]  # one box per line


async def test_full_names_in_any_order_with_variants_of_each_word(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    assert await hits(client, "Abram Goldberg") == ["Goldberg, Abram"]
    assert await hits(client, "Goldberg Abram") == ["Goldberg, Abram"]
    # a spelling variant inside a full name (Daitch–Mokotoff), a given name before the surname on OCR text
    assert await hits(client, "Chaja Goldstein", "ocr") == ["Goldsztajn Chaja"]
    assert await hits(client, "Chaja Goldsztajn", "ocr") == ["Goldsztajn Chaja"]
    # a typo in one word of two
    assert await hits(client, "Abram Goldbreg") == ["Goldberg, Abram"]
    # both words must be there: a surname alone is not a full name's hit
    assert await hits(client, "Abram Szwarc") == []


async def test_particles_glued_or_apart_and_the_dutch_ij(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    assert await hits(client, "Dewolf") == ["De Wolf, Maurice"]
    assert await hits(client, "De Wolf") == ["De Wolf, Maurice"]
    assert (await hits(client, "Vanpraag"))[0] == "Van Praag, Sara"  # then Wijnberg: the same code, 767950
    assert await hits(client, "Sara van Praag") == ["Van Praag, Sara"]
    assert await hits(client, "Van der Berg Leo") == ["Vanderberg, Leo"]
    assert "Van Dijk, Jozef" in await hits(client, "Dyk")
    assert "Wijnberg, Mozes" in await hits(client, "Weinberg")
    assert "Wijnberg, Mozes" in await hits(client, "Vainberg")


async def test_closest_first_within_a_tier(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    # one letter off Krause: first, before 30 entries of page order
    assert (await hits(client, "Keause"))[0] == "Krause, Ernst"


async def test_a_beginning_finds_the_words_it_begins_without_sound_alikes(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    assert await hits(client, "Goldsz") == ["Goldsztajn, Icek"]  # not Goldes, Golds (same code)
    assert await hits(client, "goldsz*") == ["Goldsztajn, Icek"]


async def test_the_2_0_answer_highlights_the_matched_words_in_an_entry(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    body = (await client.get("/iiif/search/2/lists/index/search", params={"q": "abram goldberg"})).json()
    assert [i["body"]["value"] for i in body["items"]] == ["Goldberg, Abram"]
    notes = body["annotations"][0]["items"]
    assert [n["motivation"] for n in notes] == ["highlighting", "highlighting"]
    assert [n["target"]["selector"][0]["exact"] for n in notes] == ["Goldberg", "Abram"]
    assert notes[1]["target"]["selector"][0]["prefix"] == "Goldberg, "


def manifests(body: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for item in body["items"]:
        doc = item["target"]["source"]["partOf"][0]["id"].split("/presentation/")[1].removesuffix("/manifest")
        if doc not in seen:
            seen.append(doc)
    return seen


async def test_collection_search_has_the_same_tiers_and_entries(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists

    async def found(q: str) -> tuple[list[str], list[str]]:
        body = (await client.get("/iiif/search/collections/lists", params={"q": q})).json()
        return manifests(body), [i["body"]["value"] for i in body["items"]]

    assert await found("Goldsz") == (["lists/index", "lists/ocr"], ["Goldsztajn, Icek", "Goldsztajn"])
    assert await found("Boruch Szwarc") == (["lists/index"], ["Szwarc, Boruch"])
    assert await found("Chaja Goldstein") == (["lists/ocr"], ["Goldsztajn Chaja"])
    assert await found("Vainberg") == (["lists/index"], ["Wijnberg, Mozes"])


async def test_autocomplete_completes_real_spellings_and_the_whole_phrase(lists) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = lists
    one = (await client.get("/iiif/search/1/lists/index/autocomplete", params={"q": "lod"})).json()
    assert [t["match"] for t in one["terms"]] == ["Łódź"]
    two = (await client.get("/iiif/search/2/lists/index/autocomplete", params={"q": "abram gol"})).json()
    assert [t["value"] for t in two["items"]] == ["Abram Goldberg"]
    ocr = (await client.get("/iiif/search/2/lists/ocr/autocomplete", params={"q": "chaja gol"})).json()
    assert [t["value"] for t in ocr["items"]] == ["Chaja Goldsztajn"]
    assert (await client.get("/iiif/search/2/lists/index/autocomplete", params={"q": "szwarc n"})).json()["items"] == []
