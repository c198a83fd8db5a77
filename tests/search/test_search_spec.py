"""Every MUST of IIIF Content Search 1.0 and 2.0 that a server answers for, a test each, with the specification's
sentence (https://iiif.io/api/search/1.0/, https://iiif.io/api/search/2.0/)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from iiif_server.search import across
from iiif_server.search import routes as search_routes

BASE = "http://testserver"


def local(url: str) -> str:
    return url.removeprefix(BASE)


async def manifest_services(client: httpx.AsyncClient, document: str = "index") -> dict[str, dict[str, Any]]:
    manifest = (await client.get(f"/iiif/presentation/lists/{document}/manifest")).json()
    return {s["type"]: s for s in manifest["service"]}


# -- Content Search 2.0 -----------------------------------------------------------------------------------------


async def test_2_0_s3_services_have_id_and_type_and_the_id_is_the_service(lists) -> None:  # type: ignore[no-untyped-def]
    """2.0 §3: "These objects MUST have the id and type properties. The value of the id property MUST be the URI
    used to interact with the service." """
    client, _, _ = lists
    service = (await manifest_services(client))["SearchService2"]
    assert service["type"] == "SearchService2" and service["service"][0]["type"] == "AutoCompleteService2"
    assert (await client.get(local(service["id"]), params={"q": "abram"})).json()["type"] == "AnnotationPage"
    assert (await client.get(local(service["service"][0]["id"]), params={"q": "ab"})).json()["type"] == "TermPage"
    collection = (await client.get("/iiif/presentation/lists/collection")).json()["service"][0]
    assert collection["type"] == "SearchService2" and "id" in collection
    assert (await client.get(local(collection["id"]), params={"q": "abram"})).status_code == 200


async def test_2_0_s4_1_services_of_different_resources_differ(lists) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.1: "The URIs for services associated with different resources MUST be different." """
    client, _, _ = lists
    ids = [(await manifest_services(client, d))["SearchService2"]["id"] for d in ("index", "ocr")]
    ids += [(await client.get("/iiif/presentation/lists/collection")).json()["service"][0]["id"],
            (await client.get("/iiif/presentation/collections")).json()["service"][0]["id"]]
    assert len(set(ids)) == 4


SERVICES_2 = ["/iiif/search/2/lists/index/search", "/iiif/search/collections/lists", "/iiif/search/collections"]


@pytest.mark.parametrize("path", SERVICES_2)
async def test_2_0_s4_1_1_unimplemented_parameters_are_ignored_and_listed(lists, path: str) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.1.1: "Parameters defined by this specification that are received in a request but not implemented
    MUST be ignored, and MUST be included in the ignored property in the response"; §4.2.4: "If the server has
    ignored any of the parameters in the request, then an ignored property MUST be present, and MUST contain a
    list of the ignored parameters." """
    client, _, _ = lists
    plain = (await client.get(path, params={"q": "abram"})).json()
    assert "ignored" not in plain
    sent = {"q": "abram", "user": "https://example.org/u/1", "motivation": "painting",
            "date": "2020-01-01T00:00:00Z/2021-01-01T00:00:00Z"}
    body = (await client.get(path, params=sent)).json()
    assert body["ignored"] == ["user", "motivation", "date"]
    assert body["items"] == plain["items"] and body["items"]


@pytest.mark.parametrize("path", SERVICES_2)
async def test_2_0_s4_2_the_answer_is_an_annotation_page_with_embedded_annotations(lists, path: str) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.2: "The response from the server MUST be an Annotation Page"; §4.2.1: "Every Annotation MUST be fully
    embedded in the response." """
    client, _, _ = lists
    body = (await client.get(path, params={"q": "Goldberg"})).json()
    assert body["type"] == "AnnotationPage" and body["@context"] == "http://iiif.io/api/search/2/context.json"
    assert body["items"]
    for item in body["items"]:
        assert {"id", "type", "motivation", "body", "target"} <= set(item) and item["type"] == "Annotation"
        assert item["body"]["value"]


async def walk(client: httpx.AsyncClient, path: str, q: str) -> list[dict[str, Any]]:
    """Every page of a paged answer, by `next`, checking §4.2.2's MUSTs on each."""
    pages = [(await client.get(path, params={"q": q})).json()]
    while "next" in pages[-1]:
        page = pages[-1]
        assert page["next"]["type"] == "AnnotationPage"
        pages.append((await client.get(local(page["next"]["id"]))).json())
        assert len(pages) < 50
    for page in pages:
        part = page["partOf"]  # "The Annotation Page MUST have a partOf property."
        assert part["type"] == "AnnotationCollection"
        # "The Annotation Collection MUST have a first property ... with an id of the URI of the first page"
        assert part["first"]["type"] == "AnnotationPage"
        assert (await client.get(local(part["first"]["id"]))).json()["items"] == pages[0]["items"]
    return pages


async def test_2_0_s4_2_2_paged_answers_have_part_of_first_and_next(lists, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.2.2: "The Annotation Page MUST have a partOf property"; "The Annotation Page MUST have a next
    property if there is a subsequent page"; "The Annotation Collection MUST have a first property." """
    client, _, _ = lists
    whole = (await client.get("/iiif/search/2/lists/index/search", params={"q": "Gold"})).json()
    monkeypatch.setattr(search_routes, "PAGE_SIZE", 1)
    pages = await walk(client, "/iiif/search/2/lists/index/search", "Gold")
    assert len(pages) == len(whole["items"]) > 1
    assert [i for p in pages for i in p["items"]] == whole["items"]
    assert {p["partOf"]["total"] for p in pages} == {len(whole["items"])}
    monkeypatch.setattr(across, "DOCUMENTS_PAGE", 1)
    pages = await walk(client, "/iiif/search/collections/lists", "Gold")
    assert len(pages) >= 2


async def test_2_0_s4_2_3_targets_name_their_manifest(lists) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.2.3: "The id and type of the containing resource MUST be given" (and a label SHOULD)."""
    client, _, _ = lists
    body = (await client.get("/iiif/search/collections/lists", params={"q": "Goldberg"})).json()
    for item in body["items"]:
        manifest = item["target"]["source"]["partOf"][0]
        assert manifest["type"] == "Manifest" and manifest["id"].endswith("/manifest") and manifest["label"]


async def test_2_0_s4_3_context_and_highlighting_annotations(lists) -> None:  # type: ignore[no-untyped-def]
    """2.0 §4.3.1: words on the page (ALTO) with the words around them: `contextualizing`, prefix and suffix of
    the text immediately before and after; §4.3.2: a whole entry (CSV) with the match within its text:
    `highlighting`. Each refers to an annotation of `items` by its `source`."""
    client, _, _ = lists
    ocr = (await client.get("/iiif/search/2/lists/ocr/search", params={"q": "Chaja"})).json()
    note = ocr["annotations"][0]["items"][0]
    assert note["motivation"] == "contextualizing"
    assert note["target"]["selector"][0] == {"type": "TextQuoteSelector", "prefix": "Goldsztajn ", "exact": "Chaja",
                                             "suffix": " Paris"}
    assert note["target"]["source"] == ocr["items"][0]["id"]
    index = (await client.get("/iiif/search/2/lists/index/search", params={"q": "Chaja"})).json()
    note = index["annotations"][0]["items"][0]
    assert note["motivation"] == "highlighting" and note["target"]["source"] == index["items"][0]["id"]
    assert note["target"]["selector"][0] == {"type": "TextQuoteSelector", "prefix": "Abramowicz, ", "exact": "Chaja",
                                             "suffix": ""}


async def test_2_0_s5_autocomplete_term_page(lists) -> None:  # type: ignore[no-untyped-def]
    """2.0 §5.2: "The TermPage MUST have an id property", "a type property. The value MUST be TermPage", "an items
    property ... each of which is a Term"; §5.3: "The Term MUST have a value property"; "ignored ... The value
    MUST be an array of strings"; a term's value is used directly in `q` (its service links the search)."""
    client, _, _ = lists
    body = (await client.get("/iiif/search/2/lists/index/autocomplete", params={"q": "lo", "user": "x"})).json()
    assert body["type"] == "TermPage" and body["id"].startswith(BASE) and isinstance(body["items"], list)
    assert body["ignored"] == ["user"]
    assert [t["value"] for t in body["items"]] == ["Łódź"] and body["items"][0]["total"] == 1
    search = (await client.get(local(body["items"][0]["service"][0]["id"]))).json()
    assert [i["body"]["value"] for i in search["items"]] == ["Łódź, Chil"]
    # `min`: implemented (the fewest occurrences), so not ignored
    fewer = (await client.get("/iiif/search/2/lists/index/autocomplete", params={"q": "lo", "min": "2"})).json()
    assert fewer["items"] == [] and "ignored" not in fewer


# -- Content Search 1.0 -----------------------------------------------------------------------------------------


async def test_1_0_s3_1_the_service_block(lists) -> None:  # type: ignore[no-untyped-def]
    """1.0 §3.1: "The description block MUST have the @context property with the value
    http://iiif.io/api/search/1/context.json, the profile property with the value
    http://iiif.io/api/search/1/search, and the @id property"; §6.1 (autocomplete): "MUST have an @id property
    ... and MUST have a profile property with the value http://iiif.io/api/search/1/autocomplete"."""
    client, _, _ = lists
    service = (await manifest_services(client))["SearchService1"]
    assert service["@context"] == "http://iiif.io/api/search/1/context.json"
    assert service["profile"] == "http://iiif.io/api/search/1/search" and service["@id"] == service["id"]
    auto = service["service"][0]
    assert auto["profile"] == "http://iiif.io/api/search/1/autocomplete" and auto["@id"] == auto["id"]


async def test_1_0_s4_3_paged_lists_name_the_next_page_and_the_layer(lists,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """1.0 §4.3: "The next page of results that follows the current response MUST be referenced in a next
    property"; "The layer MUST have the @type property, with the value of sc:Layer"."""
    client, _, _ = lists
    whole = (await client.get("/iiif/search/1/lists/index/search", params={"q": "Gold"})).json()
    monkeypatch.setattr(search_routes, "PAGE_SIZE", 1)
    pages = [(await client.get("/iiif/search/1/lists/index/search", params={"q": "Gold"})).json()]
    while "next" in pages[-1]:
        pages.append((await client.get(local(pages[-1]["next"]))).json())
    assert [r for p in pages for r in p["resources"]] == whole["resources"]
    assert all(p["within"]["@type"] == "sc:Layer" and p["within"]["total"] == len(whole["resources"]) for p in pages)


async def test_1_0_s5_context_and_hits(lists) -> None:  # type: ignore[no-untyped-def]
    """1.0 §5: "the value of @context MUST be an array with both the Presentation API and the Search API context
    URIs included, in that order"; hits reference annotations by @id ("annotations MUST have a URI"); before
    and after are single strings."""
    client, _, _ = lists
    body = (await client.get("/iiif/search/1/lists/ocr/search", params={"q": "Chaja"})).json()
    assert body["@context"] == ["http://iiif.io/api/presentation/2/context.json",
                                "http://iiif.io/api/search/1/context.json"]
    ids = {r["@id"] for r in body["resources"]}
    assert body["hits"] == [{"@type": "search:Hit", "annotations": [body["resources"][0]["@id"]], "match": "Chaja",
                             "before": "Goldsztajn", "after": "Paris"}]
    assert set(body["hits"][0]["annotations"]) <= ids


@pytest.mark.parametrize("path", ["/iiif/search/1/lists/index/search", "/iiif/search/1/lists/index/autocomplete"])
async def test_1_0_ignored_parameters_are_listed(lists, path: str) -> None:  # type: ignore[no-untyped-def]
    """1.0 §5.2: "If the server has ignored any of the parameters in the request, then the layer MUST be present
    and MUST have an ignored property"; §6.3: "Parameters that were not processed by the service MUST be returned
    in the ignored property of the main TermList object. The value MUST be an array of strings." """
    client, _, _ = lists
    body = (await client.get(path, params={"q": "abr", "motivation": "painting", "date": "x", "user": "y"})).json()
    ignored = body["within"]["ignored"] if "within" in body else body["ignored"]
    assert ignored == ["motivation", "date", "user"]


async def test_1_0_s6_terms_have_match_url_and_a_positive_count(lists) -> None:  # type: ignore[no-untyped-def]
    """1.0 §6.3: "The matching term is given as the value of the match property, and MUST be present"; "The link
    to the search to perform is the value of the url property, and this MUST be present"; count "MUST be a
    positive integer"."""
    client, _, _ = lists
    body = (await client.get("/iiif/search/1/lists/index/autocomplete", params={"q": "gold"})).json()
    assert body["@type"] == "search:TermList" and body["terms"]
    for term in body["terms"]:
        assert term["match"] and term["url"].startswith(BASE) and isinstance(term["count"], int) and term["count"] > 0
        found = (await client.get(local(term["url"]))).json()
        assert found["within"]["total"] >= 1
