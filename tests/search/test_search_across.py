"""Search across documents: a collection's manifests with their hits, the catalogue by label, and the viewer page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from iiif_server.db.models import Document
from iiif_server.search import across


def manifests(body: dict) -> list[str]:  # type: ignore[type-arg]
    """The documents of a collection search's hits, in order, once each."""
    seen: list[str] = []
    for item in body["items"]:
        doc = item["target"]["source"]["partOf"][0]["id"].split("/presentation/")[1].removesuffix("/manifest")
        if doc not in seen:
            seen.append(doc)
    return seen


async def test_collection_search_lists_manifests_with_hits_the_requester_may_see(setup) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = setup
    collection = (await client.get("/iiif/presentation/transports/collection")).json()
    service = collection["service"][0]
    assert service["type"] == "SearchService2" and service["id"].endswith("/iiif/search/collections/transports")
    r = await client.get("/iiif/search/collections/transports", params={"q": "levy"})
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    body = r.json()
    assert body["type"] == "AnnotationPage" and "next" not in body and "total" not in str(body)
    # anonymous: the public pages of `list` only; rr's Lévy is on a reading-room page, `secret` is hidden
    assert manifests(body) == ["transports/list"]
    first = body["items"][0]["target"]
    assert first["source"]["id"].endswith("/transports/list/canvas/p1") and first["selector"]["value"] == \
        "xywh=120,101,80,19"
    assert first["source"]["partOf"][0]["label"] == {"none": ["list"]}
    assert "Rywka" not in r.text and "Abram" not in r.text and "Staff" not in r.text
    reader, _ = store.issue("reading-room", "Reader", 1)
    body = (await client.get("/iiif/search/collections/transports", params={"q": "levy"},
                             headers={"Authorization": f"Bearer {reader}"})).json()
    assert manifests(body) == ["transports/list", "transports/rr"]
    assert len([i for i in body["items"] if "/list/" in i["target"]["source"]["id"]]) == across.HITS_PER_DOCUMENT
    staff, _ = store.issue("staff", "Staff", 1)
    body = (await client.get("/iiif/search/collections/transports", params={"q": "levy"},
                             headers={"Authorization": f"Bearer {staff}"})).json()
    assert manifests(body) == ["transports/list", "transports/rr", "transports/secret"]
    # and the anonymous answer is unchanged afterwards
    body = (await client.get("/iiif/search/collections/transports", params={"q": "levy"})).json()
    assert manifests(body) == ["transports/list"]


async def test_top_collection_search_ranks_and_pages_by_keyset(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    top = (await client.get("/iiif/presentation/collections")).json()
    assert top["service"][0]["id"].endswith("/iiif/search/collections")
    body = (await client.get("/iiif/search/collections", params={"q": "Mendelowicz"})).json()
    # the word itself (a CSV entry of `list`) before a spelling variant (`open`'s Mendelovitch)
    assert manifests(body) == ["transports/list", "transports/open"]
    monkeypatch.setattr(across, "DOCUMENTS_PAGE", 1)
    one = (await client.get("/iiif/search/collections", params={"q": "Mendelowicz"})).json()
    assert manifests(one) == ["transports/list"] and one["next"]["type"] == "AnnotationPage"
    two = (await client.get(one["next"]["id"].removeprefix("http://testserver"))).json()
    assert manifests(two) == ["transports/open"]
    if "next" in two:
        assert (await client.get(two["next"]["id"].removeprefix("http://testserver"))).json()["items"] == []


async def test_collection_search_of_an_unknown_or_hidden_collection_is_404(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    from iiif_server.db.models import Collection

    with cat.session() as s:
        s.add(Collection(id="closed", label="Closed", tier="staff", metadata_pairs=[]))
    for path in ("/iiif/search/collections/nothing", "/iiif/search/collections/closed"):
        r = await client.get(path, params={"q": "levy"})
        assert r.status_code == 404 and r.headers["cache-control"] == "private, no-store"


async def test_catalogue_search_by_label_summary_and_metadata(setup) -> None:  # type: ignore[no-untyped-def]
    client, store, cat = setup
    with cat.session() as s:
        for doc in s.execute(select(Document).where(Document.collection_id == "transports")).scalars():
            if doc.ident == "list":
                doc.label, doc.summary = "Transport list 42", "Departure from Drancy, 1942"
                doc.metadata_pairs = [["Convoy", "Nº 42"]]
            if doc.ident == "secret":
                doc.label = "Drancy staff notes"
    r = await client.get("/iiif/search", params={"q": "drancy", "format": "json"})
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    items = r.json()["items"]
    assert [i["label"] for i in items] == [{"none": ["Transport list 42"]}]
    assert items[0]["id"].endswith("/iiif/presentation/transports/list/manifest")
    assert items[0]["viewer"].endswith("/iiif/view/transports/list")
    assert "staff" not in r.text.lower().replace("transports", "")
    staff, _ = store.issue("staff", "Staff", 1)
    r = await client.get("/iiif/search", params={"q": "DRANCY"},
                         headers={"Authorization": f"Bearer {staff}", "Accept": "application/json"})
    assert [i["label"]["none"][0] for i in r.json()["items"]] == ["Transport list 42", "Drancy staff notes"]
    # metadata values and every word of the query; the collection itself by its label
    assert [i["label"] for i in (await client.get("/iiif/search", params={"q": "convoy 42", "format": "json"}))
            .json()["items"]] == []  # metadata names are not searched, only values
    assert len((await client.get("/iiif/search", params={"q": "nº 42", "format": "json"})).json()["items"]) == 1
    colls = (await client.get("/iiif/search", params={"q": "transport lists", "format": "json"})).json()["items"]
    assert [(c["type"], c["label"]) for c in colls] == [("Collection", {"none": ["Transport lists"]})]
    # the HTML page: each result opens the document in the viewer page and links its manifest
    page = await client.get("/iiif/search", params={"q": "drancy"})
    assert page.headers["content-type"].startswith("text/html") and page.headers["cache-control"].startswith("private")
    assert 'href="http://testserver/iiif/view/transports/list"' in page.text
    assert 'href="http://testserver/iiif/presentation/transports/list/manifest"' in page.text
    assert "Drancy staff" not in page.text
    assert "<script" not in (await client.get("/iiif/search", params={"q": "<script>x"})).text


async def test_catalogue_search_pages_by_keyset(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    with cat.session() as s:
        for doc in s.execute(select(Document).where(Document.collection_id == "transports")).scalars():
            doc.summary = "Deportation list"
    monkeypatch.setattr(across, "DOCUMENTS_PAGE", 2)
    first = (await client.get("/iiif/search", params={"q": "deportation", "format": "json"})).json()
    assert len(first["items"]) == 2 and "after=" in first["next"]
    second = (await client.get(first["next"].removeprefix("http://testserver"))).json()
    labels = [i["label"]["none"][0] for i in first["items"] + second["items"]]
    assert labels == ["list", "open"]  # `rr` is reading-room, `secret` hidden: their labels are not shown


async def test_restricted_labels_and_page_names_only_to_those_cleared(setup) -> None:  # type: ignore[no-untyped-def]
    """A reading-room document is announced (its manifest offers the sign-in) but its label is content, as are
    a restricted page's name and the catalogue's words for it: none reach a visitor, all reach the reader."""
    client, store, cat = setup
    with cat.session() as s:
        for doc in s.execute(select(Document).where(Document.collection_id == "transports")).scalars():
            doc.summary = "Deportation list"
            if doc.ident == "rr":
                doc.label = "Convoy of Abram Zylberberg"
            for image in doc.images:
                if (doc.ident, image.ident) == ("list", "p3"):
                    image.label = "Rywka Zylberberg"
    reader, _ = store.issue("reading-room", "Reader", 1)
    for who, headers in (("visitor", {}), ("reader", {"Authorization": f"Bearer {reader}"})):
        found = (await client.get("/iiif/search", params={"q": "zylberberg", "format": "json"},
                                  headers=headers)).json()["items"]
        listed = (await client.get("/iiif/search", params={"q": "deportation", "format": "json"},
                                   headers=headers)).json()["items"]
        rr = await client.get("/iiif/view/transports/rr", headers=headers)
        view = await client.get("/iiif/view/transports/list", headers=headers)
        pages = [(await client.get("/iiif/view/transports/list", params={"page": p}, headers=headers)).text
                 for p in ("p1", "p2", "p3")]
        assert rr.status_code == 200 and view.status_code == 200  # announced to both
        if who == "visitor":
            assert found == [] and [i["label"]["none"][0] for i in listed] == ["list", "open"]
            assert "Zylberberg" not in rr.text and "Zylberberg" not in view.text
            assert not any("Zylberberg" in text or "p3" in text.replace("page=p3", "") for text in pages)
        else:
            assert [i["label"]["none"][0] for i in found] == ["Convoy of Abram Zylberberg"]
            assert [i["label"]["none"][0] for i in listed] == ["list", "Convoy of Abram Zylberberg", "open"]
            assert "Convoy of Abram Zylberberg" in rr.text and "Rywka Zylberberg" in pages[2]


async def test_viewer_page_shows_the_page_with_its_hits(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = setup
    r = await client.get("/iiif/view/transports/list", params={"q": "levy"})
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    # the ALTO box (120,101,80,19) on a 1000x500 page, as percentages over the image
    assert 'style="left:12.000%;top:20.200%;width:8.000%;height:3.800%"' in r.text
    assert "/iiif/3/transports%2Flist%2Fp1/full/!1200,1200/0/default.jpg" in r.text
    assert "Rywka" not in r.text
    p2 = await client.get("/iiif/view/transports/list", params={"q": "levy", "page": "p2"})
    assert 'style="left:1.000%;top:4.000%;width:3.000%;height:8.000%"' in p2.text
    assert (await client.get("/iiif/view/transports/secret")).status_code == 404
    assert (await client.get("/iiif/view/transports/nothing")).status_code == 404
    rr = await client.get("/iiif/view/transports/rr", params={"q": "levy"})
    assert rr.status_code == 200 and "Abram" not in rr.text and 'class="hit"' not in rr.text


async def test_the_search_page_lists_documents_whose_text_holds_the_words(setup) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = setup
    page = await client.get("/iiif/search", params={"q": "levy"})
    assert "In the text of the pages" in page.text
    assert 'href="http://testserver/iiif/view/transports/list?page=p1&amp;q=levy">Lévy</a>' in page.text
    # the reading-room and staff documents' Lévy never shows anonymously
    assert "/iiif/view/transports/rr" not in page.text and "/transports/secret" not in page.text
    reader, _ = store.issue("reading-room", "Reader", 1)
    page = await client.get("/iiif/search", params={"q": "levy"}, headers={"Authorization": f"Bearer {reader}"})
    assert "/iiif/view/transports/rr?page=p1" in page.text and "/transports/secret" not in page.text


async def test_a_query_of_several_words_walks_the_rarest_word(setup) -> None:  # type: ignore[no-untyped-def]
    client, _, cat = setup
    from iiif_server.db.models import LabelTerm, TextDocTerm
    from iiif_server.search.store import TextStore

    with cat.session() as s:
        for doc in s.execute(select(Document).where(Document.collection_id == "transports")).scalars():
            doc.summary = "Deportation list" + (" from Drancy" if doc.ident == "open" else "")
    finder = across.Across(TextStore(cat))
    with cat.sessions() as s:
        assert finder.rarest_first(s, LabelTerm.norm, ["deportation", "drancy"]) == ["drancy", "deportation"]
        # page text: `paris` stands on every ALTO page, `chaja` on one
        assert finder.rarest_first(s, TextDocTerm.norm, ["paris", "chaja"]) == ["chaja", "paris"]
    body = (await client.get("/iiif/search", params={"q": "deportation drancy", "format": "json"})).json()
    assert [i["label"]["none"][0] for i in body["items"]] == ["open"]


async def test_a_collection_search_works_for_a_bounded_time_then_sends_its_page_with_next(  # type: ignore[no-untyped-def]
        setup, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, _ = setup
    # one candidate a round and no time to spare: each request examines one round, then answers with `next`
    monkeypatch.setattr(across, "CANDIDATES", 1)
    monkeypatch.setattr(across, "EXAMINE_SECONDS", 0.0)
    seen: list[str] = []
    url = "/iiif/search/collections?" + "q=Mendelowicz"
    for _ in range(6):
        body = (await client.get(url)).json()
        assert len(manifests(body)) <= 1
        seen += manifests(body)
        if "next" not in body:
            break
        url = body["next"]["id"].removeprefix("http://testserver")
    # nothing lost or repeated on the way: the same documents as one request with time to spare
    assert seen == ["transports/list", "transports/open"]
