"""Names on the lists are annotations: a list canvas with confirmed lines carries an AnnotationPage of them, and a
decision that changes it changes the manifest (its ETag) and is announced to harvesters."""

from __future__ import annotations

from typing import Any

import jsonschema
from persons_world import READING_ROOM, STAFF_NET, People
from sqlalchemy import func, select
from support import presentation_schema

from iiif_server.db.models import LINE, Activity, Image, PersonLink
from iiif_server.db.persons import Suggestion

MANIFEST = "/iiif/presentation/lists/list-20/manifest"
CANVAS = "http://testserver/iiif/presentation/lists/list-20/canvas/"


def names_on(manifest: dict[str, Any], page: str) -> list[dict[str, Any]]:
    canvas = next(c for c in manifest["items"] if c["id"] == CANVAS + page)
    return [a for p in canvas.get("annotations", []) for a in p["items"]]


def image_pk(people: People, page: str) -> int:
    with people.catalogue.sessions() as session:
        return session.scalars(select(Image.pk).where(Image.ident == page).join(Image.document)
                               .where(Image.document.has(ident="list-20"))).one()


def updates(people: People) -> int:
    with people.catalogue.sessions() as session:
        return session.scalar(select(func.count()).select_from(Activity).where(
            Activity.type == "Update", Activity.document_ident == "list-20")) or 0


async def test_a_list_canvas_carries_its_confirmed_names_as_identifying_annotations(people_world: People) -> None:
    r = await people_world.client().get(MANIFEST)
    assert r.status_code == 200
    manifest = r.json()
    jsonschema.validate(manifest, presentation_schema())
    [levy] = names_on(manifest, "p1")  # Goldsztain and Cohen are not confirmed: not public
    assert levy["motivation"] == "identifying"
    assert levy["target"] == CANVAS + "p1#xywh=200,300,420,60"
    person = next(b for b in levy["body"] if b.get("type") == "Text")
    assert person == {"id": "http://testserver/persons/1", "type": "Text", "format": "text/html",
                      "label": {"none": ["Lévy, Abraham"]}}
    text = next(b for b in levy["body"] if b.get("type") == "TextualBody")
    assert text["value"] == '<a href="http://testserver/persons/1">Lévy, Abraham</a>'
    assert [a["body"][1]["label"]["none"][0] for a in names_on(manifest, "p2")] == ["Lewin, Moszek"]
    # the page's names are served alone too, and valid alone
    page = manifest["items"][0]["annotations"][0]
    alone = await people_world.client().get(page["id"].removeprefix("http://testserver"))
    assert alone.status_code == 200
    jsonschema.validate(alone.json(), presentation_schema())
    assert alone.json()["items"] == page["items"]
    assert (await people_world.client().get("/iiif/presentation/lists/list-20/canvas/p9/names")).status_code == 404


async def test_a_restricted_lists_names_go_only_to_those_cleared_for_it(people_world: People) -> None:
    # p3 of the public list is a reading-room page; Kahn's line is on it
    outside = (await people_world.client().get(MANIFEST)).json()
    assert names_on(outside, "p3") == []
    inside = (await people_world.client(peer=READING_ROOM).get(MANIFEST)).json()
    assert [a["body"][1]["label"]["none"][0] for a in names_on(inside, "p3")] == ["Kahn, Ruth"]
    names = "/iiif/presentation/lists/list-20/canvas/p3/names"
    assert (await people_world.client().get(names)).status_code == 404
    assert (await people_world.client(peer=READING_ROOM).get(names)).status_code == 200


async def test_accepting_and_rejecting_a_line_changes_the_manifest_and_is_announced(people_world: People) -> None:
    catalogue = people_world.catalogue
    client = people_world.client()
    before = await client.get(MANIFEST)
    announced = updates(people_world)
    added = catalogue.add_suggestions([Suggestion("2", image_pk(people_world, "p1"), LINE, (200, 420, 480, 60),
                                                  "Goldsztain Chaja", 0.9, "surname Daitch–Mokotoff")])
    assert len(added) == 1
    unchanged = await client.get(MANIFEST)
    assert unchanged.headers["etag"] == before.headers["etag"], "a suggestion is not public"
    with catalogue.sessions() as session:
        lid = session.scalars(select(PersonLink.id).where(PersonLink.person_id == "2")).one()
    catalogue.decide([lid], "confirmed", "a test")
    after = await client.get(MANIFEST)
    assert after.headers["etag"] != before.headers["etag"]
    assert [a["target"] for a in names_on(after.json(), "p1")] == [CANVAS + "p1#xywh=200,300,420,60",
                                                                   CANVAS + "p1#xywh=200,420,480,60"]
    assert updates(people_world) == announced + 1
    jsonschema.validate(after.json(), presentation_schema())
    catalogue.decide([lid], "rejected", "a test")
    rejected = await client.get(MANIFEST)
    assert rejected.headers["etag"] == before.headers["etag"] and rejected.content == before.content
    assert updates(people_world) == announced + 2
    # a rejected suggestion is never proposed again
    assert catalogue.add_suggestions([Suggestion("2", image_pk(people_world, "p1"), LINE, (200, 420, 480, 60),
                                                 "Goldsztain Chaja", 0.9, "again")]) == []


async def test_hiding_a_person_takes_their_name_off_the_list(people_world: People) -> None:
    client = people_world.client()
    people_world.catalogue.set_hidden("3", True)
    manifest = (await client.get(MANIFEST)).json()
    assert names_on(manifest, "p2") == []
    assert "Lewin" not in (await client.get(MANIFEST)).text
    staff = (await people_world.client(peer=STAFF_NET).get(MANIFEST)).json()
    assert names_on(staff, "p2") == []  # the list's names are the public's: a hidden person is off it for all
    people_world.catalogue.set_hidden("3", False)
    assert [a["body"][1]["label"]["none"][0] for a in names_on((await client.get(MANIFEST)).json(), "p2")] == [
        "Lewin, Moszek"]
