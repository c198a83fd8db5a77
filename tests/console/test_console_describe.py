"""The console's form for describing a collection: it shows what is set, saves what staff type (checked as the
CSV's rows are: rights a Creative Commons or RightsStatements.org URI), audits what changed, and the public
page and the IIIF Collection say it at once; a bad field changes nothing."""

from __future__ import annotations

from worlds import World, audit_lines, hidden, sign_in

from iiif_server.runtime import observe

FORM = {"label": "Letters of the Lévy family", "summary": "Forty letters",
        "description": "Letters written between Mechelen and Brussels.\r\nIn French and Yiddish.",
        "dates": "1942-1944", "provenance": "Gift of the family, 1998",
        "rights": "https://rightsstatements.org/vocab/InC/1.0/", "required_statement": "Kazerne Dossin",
        "record": "KD/0012", "metadata": "Language: French\r\nLanguage: Yiddish\r\n"}


async def test_staff_describe_a_collection_and_everyone_reads_it(console_world: World) -> None:
    world = console_world
    client, csrf = await sign_in(world)
    page = await client.get("/staff/collections/letters")
    assert 'href="/staff/describe/letters"' in page.text
    form = await client.get("/staff/describe/letters")
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    assert hidden(form.text, "csrf") == csrf and 'name="label" value="letters"' in form.text
    saved = await client.post("/staff/describe/letters", data={"csrf": csrf, **FORM})
    assert (saved.status_code, saved.headers["location"]) == (303, "/staff/describe/letters?saved=9")
    coll = world.catalogue.collection("letters")
    assert (coll.label, coll.summary, coll.dates, coll.record) == ("Letters of the Lévy family", "Forty letters",
                                                                  "1942-1944", "KD/0012")
    assert coll.description == "Letters written between Mechelen and Brussels.\nIn French and Yiddish."
    assert coll.rights == "http://rightsstatements.org/vocab/InC/1.0/"
    assert coll.metadata_pairs == [["Language", "French"], ["Language", "Yiddish"]]
    again = await client.get("/staff/describe/letters?saved=9")
    assert "Saved." in again.text and "Language: French\nLanguage: Yiddish" in again.text
    # the same again: nothing changes
    same = await client.post("/staff/describe/letters", data={"csrf": csrf, **FORM})
    assert same.headers["location"] == "/staff/describe/letters?saved=0"
    observe.flush_logs()
    entries = [e for e in audit_lines(world) if e.get("action") == "describe"]
    assert [(e["target"], e["changed"]) for e in entries] == [
        ("letters", ["label", "summary", "description", "dates", "provenance", "rights", "required_statement",
                     "record", "metadata"]), ("letters", [])]
    # a visitor reads it at once, on the page and in the IIIF Collection
    visitor = world.client(world.app())
    public = (await visitor.get("/collections/letters")).text
    assert "Letters of the Lévy family" in public and "In French and Yiddish." in public
    iiif = (await visitor.get("/iiif/presentation/letters/collection")).json()
    assert iiif["label"] == {"en": ["Letters of the Lévy family"]} and iiif["summary"] == {"en": ["Forty letters"]}


async def test_a_bad_field_is_said_and_changes_nothing(console_world: World) -> None:
    world = console_world
    client, csrf = await sign_in(world)
    before = world.catalogue.revision("letters")
    r = await client.post("/staff/describe/letters", data={
        "csrf": csrf, **FORM, "rights": "https://example.org/our-licence", "dates": "1" * 201,
        "metadata": "no colon here"})
    assert r.status_code == 400
    for said in ("not a Creative Commons or RightsStatements.org URI", "Dates is longer than 200 characters",
                 "Metadata line 1 is not &#39;Name: value&#39;"):
        assert said in r.text, said
    assert 'value="https://example.org/our-licence"' in r.text  # what was typed stays in the form
    assert world.catalogue.revision("letters") == before and world.catalogue.collection("letters").summary is None
    assert (await client.get("/staff/describe/nowhere")).status_code == 404
    assert (await client.post("/staff/describe/nowhere", data={"csrf": csrf, **FORM})).status_code == 404
    # without a session or the form's token, refused
    stranger = world.client(base_url="https://testserver")
    assert (await stranger.get("/staff/describe/letters")).status_code == 303
    assert (await stranger.post("/staff/describe/letters", data={"csrf": csrf, **FORM})).status_code == 403
    assert (await client.post("/staff/describe/letters", data={"csrf": "forged", **FORM})).status_code == 403
    assert world.catalogue.collection("letters").summary is None
