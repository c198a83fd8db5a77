"""Content Search: text import (ALTO, CSV), the 1.0 and 2.0 services, matching, and access."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from search_world import write_alto
from sqlalchemy import func, select

from iiif_server.cli import main
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Document, Image, TextEntry
from iiif_server.search import routes as search_routes
from iiif_server.search.importer import import_text
from iiif_server.search.store import Entry, TextStore, normalise


def test_normalise_folds_case_and_accents() -> None:
    assert normalise("LÉVY Łódź Straße") == "levy lodz strasse"


async def test_manifest_advertises_both_services_and_search_1_finds_names_without_accents(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    manifest = (await client.get("/iiif/presentation/transports/list/manifest")).json()
    services = {s["type"]: s for s in manifest["service"]}
    assert set(services) == {"SearchService1", "SearchService2"}
    url = services["SearchService1"]["id"].removeprefix("http://testserver")
    r = await client.get(url, params={"q": "levy"})
    assert r.status_code == 200
    body = r.json()
    assert body["@type"] == "sc:AnnotationList" and body["within"]["total"] == 2
    on = [a["on"].split("/presentation/")[1] for a in body["resources"]]
    # the ALTO word on p1 at (240,202,160,38) in a 2000x1000 ALTO page = half in pixels; the CSV box as given
    assert on == ["transports/list/canvas/p1#xywh=120,101,80,19", "transports/list/canvas/p2#xywh=10,20,30,40"]
    assert body["resources"][0]["resource"]["chars"] == "Lévy"
    assert body["hits"][0]["before"] == "Szmul" and body["hits"][0]["after"] == "Paris"
    # a page without a box: the hit is the whole page
    whole = (await client.get(url, params={"q": "MENDELOWICZ"})).json()
    assert [a["on"].split("#")[1] for a in whole["resources"]] == ["xywh=0,0,1000,500"]
    # several words: first as consecutive ALTO words (a phrase), then entries holding all of them
    both = (await client.get(url, params={"q": "szmul lévy"})).json()
    assert [a["resource"]["chars"] for a in both["resources"]] == ["Szmul Lévy", "LÉVY, Szmul"]
    assert (await client.get(url, params={"q": "nobody"})).json()["resources"] == []


async def test_autocomplete_and_search_2(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    terms = (await client.get("/iiif/search/1/transports/list/autocomplete", params={"q": "Gol"})).json()
    assert [t["match"] for t in terms["terms"]] == ["Goldsztajn"]  # as the document spells it
    assert terms["terms"][0]["url"].endswith("/search?q=Goldsztajn")
    terms2 = (await client.get("/iiif/search/2/transports/list/autocomplete", params={"q": "le"})).json()
    assert terms2["type"] == "TermPage" and [t["value"] for t in terms2["items"]] == ["Lévy"]
    page = (await client.get("/iiif/search/2/transports/list/search", params={"q": "Levy"})).json()
    assert page["type"] == "AnnotationPage" and page["partOf"]["total"] == 2
    first = page["items"][0]
    assert first["target"].endswith("/canvas/p1#xywh=120,101,80,19")
    assert first["body"]["value"] == "Lévy"
    hit = page["annotations"][0]["items"][0]
    assert hit["motivation"] == "contextualizing" and hit["target"]["source"] == first["id"]
    assert hit["target"]["selector"][0] == {"type": "TextQuoteSelector", "prefix": "Szmul ", "exact": "Lévy",
                                            "suffix": " Paris"}


async def test_paging(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    monkeypatch.setattr(search_routes, "PAGE_SIZE", 1)
    one = (await client.get("/iiif/search/1/transports/list/search", params={"q": "levy"})).json()
    assert len(one["resources"]) == 1 and one["within"]["total"] == 2
    two = (await client.get(one["next"].removeprefix("http://testserver"))).json()
    assert [a["on"].split("/canvas/")[1].split("#")[0] for a in two["resources"]] == ["p2"] and "next" not in two
    page = (await client.get("/iiif/search/2/transports/list/search", params={"q": "levy"})).json()
    assert page["next"]["type"] == "AnnotationPage"


async def test_restricted_text_is_never_found_without_clearance(setup) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = setup
    # a reading-room page of a public document: no hit, no term, no count
    body = (await client.get("/iiif/search/1/transports/list/search", params={"q": "rywka"})).json()
    assert body["resources"] == [] and body["within"]["total"] == 0
    r = await client.get("/iiif/search/1/transports/list/search", params={"q": "levy"})
    assert r.headers["cache-control"].startswith("private") and "Cookie" in r.headers["vary"]
    assert (await client.get("/iiif/search/1/transports/list/autocomplete", params={"q": "ry"})).json()["terms"] == []
    # a reading-room document: its manifest is shown, its text is not; only its public page is
    r = await client.get("/iiif/search/1/transports/rr/search", params={"q": "levy"})
    assert r.status_code == 200 and r.json()["resources"] == [] and r.json()["within"]["total"] == 0
    assert r.headers["cache-control"].startswith("private")
    lewin = (await client.get("/iiif/search/2/transports/rr/search", params={"q": "lewin"})).json()
    assert [i["target"].split("/canvas/")[1].split("#")[0] for i in lewin["items"]] == ["p2"]
    assert (await client.get("/iiif/search/2/transports/rr/autocomplete", params={"q": "abr"})).json()["items"] == []
    # a staff document is hidden: the same 404 as for a document that does not exist
    for path in ("/iiif/search/1/transports/secret/search", "/iiif/search/2/transports/secret/autocomplete",
                 "/iiif/search/1/transports/nothing/search"):
        r = await client.get(path, params={"q": "levy"})
        assert r.status_code == 404 and r.headers["cache-control"] == "private, no-store"
    # with clearance
    token, _ = store.issue("reading-room", "Reader", 1)
    auth = {"Authorization": f"Bearer {token}"}
    body = (await client.get("/iiif/search/1/transports/rr/search", params={"q": "levy"}, headers=auth)).json()
    assert body["within"]["total"] == 1 and body["hits"][0]["before"] == "Abram"
    body = (await client.get("/iiif/search/1/transports/list/search", params={"q": "rywka"}, headers=auth)).json()
    assert body["within"]["total"] == 1
    # and the anonymous answer is unchanged afterwards
    body = (await client.get("/iiif/search/1/transports/list/search", params={"q": "rywka"})).json()
    assert body["within"]["total"] == 0
    staff, _ = store.issue("staff", "Staff", 1)
    r = await client.get("/iiif/search/1/transports/secret/search", params={"q": "levy"},
                         headers={"Authorization": f"Bearer {staff}"})
    assert r.status_code == 200 and r.json()["within"]["total"] == 1


async def test_public_text_is_publicly_cacheable_and_documents_without_text_have_no_service(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    r = await client.get("/iiif/search/1/transports/open/search", params={"q": "mendelovitch"})
    assert r.json()["within"]["total"] == 1 and r.headers["cache-control"].startswith("public")
    with cat.session() as s:
        doc = Document(collection_id="transports", ident="blank", label="blank", position=9, metadata_pairs=[])
        s.add(doc)
        s.flush()
        s.add(Image(document_pk=doc.pk, ident="p1", position=0, label="p1", width=10, height=10,
                    checksum="0" * 64, source_path="-", source_size=1, source_mtime=0))
        cat.touch(s, "transports")
    assert "service" not in (await client.get("/iiif/presentation/transports/blank/manifest")).json()
    assert (await client.get("/iiif/search/1/transports/blank/search", params={"q": "x"})).status_code == 404


async def test_reimport_replaces_and_errors_name_their_place(setup, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    _, _, cat = setup

    def count() -> int:
        with cat.sessions() as s:
            return int(s.execute(select(func.count()).select_from(TextEntry)).scalar_one())

    before = count()
    src = tmp_path / "text"
    assert import_text(TextStore(cat), src, "transports").errors == []
    assert count() == before
    bad = tmp_path / "bad"
    write_alto(bad, "list", "p9", "Nobody")
    (bad / "rows.csv").write_text("list,p1,Kowalski,1,2,3\nlist,p1,,1,2,3,4\nlist,p1,Nowak,a,b,c,d\n"
                                  "ghost,p1,Someone\nlist,p1,Nowak,5,6,7,8\n", encoding="utf-8")
    (bad / "list" / "broken.xml").write_text("<alto><Layout>", encoding="utf-8")
    result = CliRunner().invoke(main, ["text", "import", str(bad), "--collection", "transports",
                                       "--database", database_url, "--images", str(tmp_path / "images")])
    assert result.exit_code == 1, result.output
    out = result.output
    for place in ("rows.csv:1:", "rows.csv:2:", "rows.csv:3:", "rows.csv:4: no page transports/ghost/p1",
                  "list/p9.xml: no page transports/list/p9", "list/broken.xml:"):
        assert place in out, out
    # rows.csv is a source of its own: its good row adds to list/p1, names.csv's entries stay
    assert sources(cat) == {"csv:names": {"LÉVY, Szmul", "Mendelowicz Icek"}, "csv:rows": {"Nowak"}}


def sources(cat: Catalogue) -> dict[str, set[str]]:
    with cat.sessions() as s:
        rows = s.execute(select(TextEntry.source, TextEntry.text).where(TextEntry.source != "alto")).all()
    found: dict[str, set[str]] = {}
    for source, text in rows:
        found.setdefault(source, set()).add(text)
    return found


async def test_csv_sources_add_up_and_a_source_imported_again_replaces_only_itself(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "deportees.csv").write_text("list,p1,Szmul Lévy,5,5,5,5\n", encoding="utf-8")
    assert import_text(TextStore(cat), extra, "transports").errors == []
    r = (await client.get("/iiif/search/1/transports/list/search", params={"q": "levy"})).json()
    assert r["within"]["total"] == 3  # the ALTO word, names.csv's and deportees.csv's entries
    # names.csv again, without its p2 row: p2 loses that entry, deportees.csv and the ALTO text stay
    again = tmp_path / "again"
    again.mkdir()
    (again / "names.csv").write_text("list,p1,Mendelowicz Icek\n", encoding="utf-8")
    assert import_text(TextStore(cat), again, "transports").errors == []
    assert import_text(TextStore(cat), again, "transports").errors == []
    assert sources(cat) == {"csv:names": {"Mendelowicz Icek"}, "csv:deportees": {"Szmul Lévy"}}
    r = (await client.get("/iiif/search/1/transports/list/search", params={"q": "levy"})).json()
    assert [a["on"].split("/canvas/")[1] for a in r["resources"]] == ["p1#xywh=120,101,80,19", "p1#xywh=5,5,5,5"]


async def test_batches_write_the_same_as_one_transaction(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    before = (await client.get("/iiif/search/2/transports/list/search", params={"q": "paris"})).json()
    assert import_text(TextStore(cat), tmp_path / "text", "transports", batch=1).errors == []
    after = (await client.get("/iiif/search/2/transports/list/search", params={"q": "paris"})).json()
    assert after["partOf"]["total"] == before["partOf"]["total"] == 2
    assert [i["target"] for i in after["items"]] == [i["target"] for i in before["items"]]


TWO_LINES = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout><Page WIDTH="1000" HEIGHT="500"><PrintSpace><TextBlock>
 <TextLine><String CONTENT="Icek" HPOS="10" VPOS="10" WIDTH="50" HEIGHT="20"/><SP/>
  <String CONTENT="Abraham" HPOS="900" VPOS="12" WIDTH="90" HEIGHT="20"/></TextLine>
 <TextLine><String CONTENT="Levy" HPOS="10" VPOS="40" WIDTH="60" HEIGHT="20"/><SP/>
  <String CONTENT="Paris" HPOS="80" VPOS="40" WIDTH="60" HEIGHT="20"/></TextLine>
</TextBlock></PrintSpace></Page></Layout></alto>
"""


async def test_a_phrase_over_a_line_break_is_highlighted_on_both_lines(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    src = tmp_path / "lines"
    (src / "open").mkdir(parents=True)
    (src / "open" / "p1.xml").write_text(TWO_LINES, encoding="utf-8")
    assert import_text(TextStore(cat), src, "transports").errors == []
    one = (await client.get("/iiif/search/1/transports/open/search", params={"q": "abraham levy"})).json()
    assert [r["on"].split("#")[1] for r in one["resources"]] == ["xywh=900,12,90,20", "xywh=10,40,60,20"]
    assert one["hits"] == [{"@type": "search:Hit", "annotations": [r["@id"] for r in one["resources"]],
                            "match": "Abraham Levy", "before": "Icek", "after": "Paris"}]
    two = (await client.get("/iiif/search/2/transports/open/search", params={"q": "abraham levy"})).json()
    assert len(two["items"]) == 2
    targets = two["annotations"][0]["items"][0]["target"]
    assert [t["source"] for t in targets] == [i["id"] for i in two["items"]]
    assert targets[0]["selector"][0]["exact"] == "Abraham Levy"
    # the phrase's words one by one are still single hits
    assert (await client.get("/iiif/search/1/transports/open/search", params={"q": "abraham"})).json()[
        "within"]["total"] == 1


async def test_entries_of_an_unnamed_csv_give_way_to_a_named_one(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    store = TextStore(cat)
    with cat.session() as s:  # as an import before each file was a source of its own left it
        document_pk, image_pk = store.page_keys(s, "transports", "open", "p1")  # type: ignore[misc]
        store.replace_page(s, document_pk, image_pk, "csv", [Entry("Kowalski Jan", "name", (1, 2, 3, 4))])
    assert (await client.get("/iiif/search/1/transports/open/search", params={"q": "kowalski"})).json()[
        "within"]["total"] == 1
    names = tmp_path / "again" / "names.csv"
    names.parent.mkdir()
    names.write_text("open,p1,Kowalski Jan,1,2,3,4\n", encoding="utf-8")
    assert import_text(store, names, "transports").errors == []
    assert (await client.get("/iiif/search/1/transports/open/search", params={"q": "kowalski"})).json()[
        "within"]["total"] == 1
    assert sources(cat)["csv:names"] == {"Kowalski Jan"} and "csv" not in sources(cat)
