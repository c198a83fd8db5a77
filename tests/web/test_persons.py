"""A page per person (HTML and JSON-LD), finding a person, the transports: what each requester sees.

The world (tests/persons_world.py): a public transport list with a reading-room page, portraits public,
reading-room and staff, six people imported from the archive's CSV with their links.
"""

from __future__ import annotations

import json
import re
from html import unescape

import jsonschema
import pytest
from persons_world import READING_ROOM, STAFF_NET, People
from pyld import jsonld
from support import presentation_schema

SCHEMA = "https://schema.org/"


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)[^>]*>.*?</\1>", "", page,
                                                                        flags=re.S))))


def hrefs(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'(?:href|src)="([^"]+)"', page)]


def assert_public(r: object) -> None:
    assert r.headers["cache-control"] == "public, max-age=60", r.headers  # type: ignore[attr-defined]


def assert_private(r: object) -> None:
    assert r.headers["cache-control"].startswith("private"), r.headers  # type: ignore[attr-defined]


async def test_a_persons_page_shows_portrait_facts_line_and_viewer_links(people_world: People) -> None:
    client = people_world.client()
    r = await client.get("/persons/1")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_public(r)
    shown = text_of(r.text)
    for fact in ("Lévy, Abraham", "1921-03-12, Warszawa", "polonaise", "XX , number 12 on the list",
                 "List of transport XX, page 1"):
        assert fact in shown, (fact, shown)
    links = hrefs(r.text)
    portrait = "http://testserver/iiif/3/portraits%2Flevy-abraham%2Fp1/full/!600,600/0/default.jpg"
    assert portrait in links
    # the line: its box (200,300,420,60) with a margin of 0.6 of its height, as an Image API region
    assert "http://testserver/iiif/3/lists%2Flist-20%2Fp1/164,264,492,132/max/0/default.jpg" in links
    viewer = [h for h in links if h.startswith("http://testserver/view?iiif-content=")]
    assert len(set(viewer)) == 2, links  # the portrait and the line
    uv = [h for h in links if h.startswith("http://testserver/uv#?iiif-content=")]
    assert {h.split("=", 1)[1] for h in uv} == {h.split("=", 1)[1] for h in viewer}, links
    for h in viewer + uv:  # each opens a page of this server
        assert (await client.get(h.split("#")[0])).status_code == 200, h
    assert "http://testserver/transports/XX" in links
    assert "Kazerne Dossin, person 1. http://testserver/persons/1" in shown  # the citation
    # a conditional request
    again = await client.get("/persons/1", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


async def test_the_json_ld_is_a_schema_org_person_with_partial_dates_as_given(people_world: People) -> None:
    client = people_world.client()
    r = await client.get("/persons/3.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    doc = r.json()
    expanded = jsonld.expand(doc)  # no remote context: it parses as it is
    person = expanded[0]
    assert person["@type"] == [SCHEMA + "Person"] and person["@id"] == "http://testserver/persons/3"
    assert person[SCHEMA + "familyName"] == [{"@value": "Lewin"}]
    assert person[SCHEMA + "birthDate"] == [{"@value": "1899-05"}]  # a month, as the list gives it
    assert person[SCHEMA + "birthPlace"][0][SCHEMA + "name"] == [{"@value": "Kraków"}]
    works = person[SCHEMA + "subjectOf"]
    names = [w[SCHEMA + "name"][0]["@value"] for w in works]
    assert "List of transport XX, page 2" in names
    assert "Portraits Rr (in the reading room)" in names  # a reading-room portrait: that it exists, nothing more
    assert "lewin-moszek" not in r.text
    assert_private(r)
    # the HTML page carries the same document
    page = (await client.get("/persons/3")).text
    embedded = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1)) == doc


async def test_restricted_links_say_only_that_they_are_in_the_reading_room(people_world: People) -> None:
    outside = people_world.client()
    r = await outside.get("/persons/3")
    assert "A portrait of this person can be consulted in the reading room (Portraits Rr)." in text_of(r.text)
    assert "lewin-moszek" not in r.text and "portraits-rr" not in r.text
    assert_private(r)
    inside = await people_world.client(peer=READING_ROOM).get("/persons/3")
    assert "http://testserver/iiif/3/portraits-rr%2Flewin-moszek%2Fp1/full/!600,600/0/default.jpg" in hrefs(inside.text)
    assert_private(inside)
    # person 6: a portrait in the hidden staff tier (nothing of it shown), a line on a reading-room page
    kahn = await outside.get("/persons/6")
    assert "personnel" not in kahn.text and "kahn-ruth" not in kahn.text and "Personnel" not in kahn.text
    assert "portrait" not in text_of(kahn.text).lower().replace("portraits", "")
    assert "line on a list can be consulted in the reading room (Lists)" in text_of(kahn.text)
    assert "list-20%2Fp3" not in kahn.text
    staff = await people_world.client(peer=STAFF_NET).get("/persons/6")
    assert "personnel%2Fkahn-ruth%2Fp1" in staff.text and "list-20%2Fp3" in staff.text


async def test_a_hidden_person_is_404_to_visitors_and_shown_to_staff_marked(people_world: People) -> None:
    people_world.catalogue.set_hidden("1", True)
    outside, room = people_world.client(), people_world.client(peer=READING_ROOM)
    unknown = await outside.get("/persons/999")
    for client in (outside, room):
        for path in ("/persons/1", "/persons/1.json"):
            r = await client.get(path)
            assert r.status_code == 404 and r.text == unknown.text, path
            assert "no-store" in r.headers["cache-control"]
    staff = await people_world.client(peer=STAFF_NET).get("/persons/1")
    assert staff.status_code == 200 and "Hidden from visitors" in staff.text
    assert_private(staff)
    # and nowhere else for visitors
    assert "Lévy" not in (await outside.get("/transports/XX")).text
    assert (await outside.get("/persons?q=levy&format=json")).json()["items"] == []
    people_world.catalogue.set_hidden("1", False)
    assert (await outside.get("/persons/1")).status_code == 200


async def test_other_public_documents_that_name_a_person_are_listed(people_world: People) -> None:
    page = (await people_world.client().get("/persons/1")).text
    assert "Also named in" in page
    assert "A letter" in text_of(page) and "“Abraham Lévy est parti” (page p1)" in text_of(page)
    assert "/iiif/view/letters/letter-1?q=" in page
    # a variant spelling within a full name is a mention too (Goldsztain Chaja, unlinked, for Chaja Goldsztajn)
    page = (await people_world.client().get("/persons/2")).text
    assert "Also named in" in page and "“Goldsztain Chaja” (page p1)" in text_of(page)
    # a name written only on a reading-room page is no public mention
    page = (await people_world.client().get("/persons/6")).text
    assert "Kahn" in page and "Also named in" not in page


@pytest.mark.parametrize(("query", "expected"), [
    ("Lévy", ["1"]), ("levy", ["1"]), ("LEVY abraham", ["1"]), ("Goldstein", ["2"]), ("Goldsztjan", ["2"]),
    ("Cohe", ["5", "4"]), ("Szmul", []), ("Lewin", ["3"]),
])
async def test_finding_a_person_by_name_as_content_search_matches(people_world: People, query: str,
                                                                  expected: list[str]) -> None:
    r = await people_world.client().get("/persons", params={"q": query, "format": "json"})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == expected, r.json()


async def test_finding_a_person_filtered_by_birth_year_place_and_transport(people_world: People) -> None:
    client = people_world.client()

    async def ids(**params: str) -> list[str]:
        r = await client.get("/persons", params={"q": "Cohen", "format": "json", **params})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await ids() == ["5", "4"]  # born 1901 before 1925: the same name, then by birth
    assert await ids(year="1924", within="1") == ["4"]
    assert await ids(year="1924") == []
    assert await ids(year="1903", within="2") == ["5"]
    assert await ids(place="anvers") == ["5"]
    assert await ids(place="Antwerp") == ["4"]
    assert await ids(transport="xxi") == ["5"]
    for bad in ({"year": "19x4"}, {"year": "1200"}, {"within": "-1"}, {"after": "garbage!"}):
        r = await client.get("/persons", params={"q": "Cohen", **bad})
        assert r.status_code == 400, bad


async def test_the_results_show_the_portrait_and_the_line(people_world: People) -> None:
    r = await people_world.client().get("/persons", params={"q": "levy"})
    assert r.status_code == 200
    links = hrefs(r.text)
    assert "http://testserver/persons/1" in links
    assert any(h.startswith("http://testserver/iiif/3/portraits%2Flevy-abraham%2Fp1/full/") for h in links)
    assert "http://testserver/iiif/3/lists%2Flist-20%2Fp1/164,264,492,132/max/0/default.jpg" in links
    assert_public(r)
    lewin = await people_world.client().get("/persons", params={"q": "lewin"})
    assert "portrait in the reading room" in lewin.text and "lewin-moszek" not in lewin.text
    assert_private(lewin)


async def test_the_site_search_shows_matching_people_first(people_world: People) -> None:
    r = await people_world.client().get("/iiif/search", params={"q": "levy"})
    assert r.status_code == 200
    people = r.text.index('<h2>People</h2>')
    assert people < r.text.index("In the text of the pages")
    assert 'href="http://testserver/persons/1"' in r.text[people:]
    data = (await people_world.client().get("/iiif/search", params={"q": "levy", "format": "json"})).json()
    assert data["people"] == [{"id": "http://testserver/persons/1", "name": "Lévy, Abraham"}]


async def test_the_transports_list_their_people_in_list_order_with_portraits(people_world: People) -> None:
    client = people_world.client()
    listing = await client.get("/transports")
    assert listing.status_code == 200
    assert "XX 5 3" in text_of(listing.text) and "XXI 1 0" in text_of(listing.text)
    assert_public(listing)
    wall = await client.get("/transports/XX")
    names = re.findall(r'href="http://testserver/persons/(\d+)"', wall.text)
    assert names == ["1", "2", "3", "4", "6"]
    assert "http://testserver/iiif/3/portraits%2Flevy-abraham%2Fp1/full/" in wall.text
    assert "portrait in the reading room" in wall.text and "lewin-moszek" not in wall.text
    assert "kahn-ruth" not in wall.text
    assert_private(wall)
    assert (await client.get("/transports/nope")).status_code == 404
    assert (await client.get("/transports/XX", params={"after": "no-bar"})).status_code == 400


async def test_a_transport_wall_pages_by_key(people_world: People) -> None:
    rows = "".join(f"{n};Person{n:03d};Given;1920;;;LONG;{n}\n" for n in range(1, 251))
    people_world.import_people("id;surname;given names;birth date;birth place;nationality;transport;number\n" + rows,
                               "long.csv")
    client = people_world.client()
    seen: list[str] = []
    url = "/transports/LONG"
    while url:
        r = await client.get(url)
        assert r.status_code == 200
        page = re.findall(r'href="http://testserver/persons/(\d+)"', r.text)
        assert len(page) <= 100
        seen += page
        found = re.search(r'rel="next" href="([^"]+)"', r.text)
        url = unescape(found.group(1)).removeprefix("http://testserver") if found else ""
    assert seen == [str(n) for n in range(1, 251)]  # number order (2 before 10), each once


async def test_each_transport_is_a_valid_iiif_collection_of_its_portraits(people_world: People) -> None:
    client = people_world.client()
    schema = presentation_schema()
    top = await client.get("/iiif/transports")
    jsonschema.validate(top.json(), schema)
    assert [i["id"] for i in top.json()["items"]] == ["http://testserver/iiif/transports/XX",
                                                      "http://testserver/iiif/transports/XXI"]
    xx = await client.get("/iiif/transports/XX")
    doc = xx.json()
    jsonschema.validate(doc, schema)
    items = {i["id"]: i for i in doc["items"]}
    levy = "http://testserver/iiif/presentation/portraits/levy-abraham/manifest"
    assert list(items) == [levy, "http://testserver/iiif/presentation/portraits-rr/lewin-moszek/manifest"]
    assert items[levy]["label"] == {"none": ["Lévy, Abraham"]} and items[levy]["thumbnail"][0]["id"].startswith(
        "http://testserver/iiif/3/portraits%2Flevy-abraham%2Fp1/full/")
    assert "thumbnail" not in items["http://testserver/iiif/presentation/portraits-rr/lewin-moszek/manifest"]
    assert "kahn" not in xx.text  # a hidden tier: not listed
    assert_private(xx)
    assert (await client.get("/iiif/transports/none")).status_code == 404
