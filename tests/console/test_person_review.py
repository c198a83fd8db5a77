"""Staff review the suggested links in the console: accept, reject, accept all above a score, hide a person;
each decision audited, and the public pages change with it."""

from __future__ import annotations

import re

from persons_world import People, audit_lines, staff_client

from iiif_server.search.suggest import Suggester


def rows(page: str) -> dict[int, str]:
    """Suggestion id -> the text of its row."""
    return {int(m.group(1)): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(2)))
            for m in re.finditer(r'<tr id="suggestion-(\d+)">(.*?)</tr>', page, re.S)}


async def test_staff_accept_and_reject_suggestions_and_the_person_page_follows(people_world: People) -> None:
    report = Suggester(people_world.catalogue).run(["portraits"], ["lists"])
    assert report.suggested >= 3
    staff, csrf = await staff_client(people_world)
    page = await staff.get("/staff/persons/suggestions")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    listed = rows(page.text)
    line = next(i for i, t in listed.items() if "Goldsztajn, Chaja" in t and "list-20/p1" in t)
    # the reason names the tier as Content Search does (search.names), and the word as written on the list
    assert "surname sounds alike (Goldsztain = Goldsztajn)" in listed[line]
    assert "Goldsztain Chaja" in listed[line]
    portrait = next(i for i, t in listed.items() if "Goldsztajn, Chaja" in t and "portraits/goldsztajn-chaja" in t)
    visitor = people_world.client()
    assert "list-20%2Fp1/164,384" not in (await visitor.get("/persons/2")).text  # nothing public yet

    r = await staff.post("/staff/persons/suggestions/decide", data={"csrf": csrf, "link": str(line),
                                                                      "decision": "accept"})
    assert r.status_code == 303
    public = (await visitor.get("/persons/2")).text
    assert "http://testserver/iiif/3/lists%2Flist-20%2Fp1/164,384,552,132/max/0/default.jpg" in public
    assert "Open in the viewer at this line" in public
    r = await staff.post("/staff/persons/suggestions/decide", data={"csrf": csrf, "link": str(portrait),
                                                                      "decision": "reject"})
    assert r.status_code == 303
    assert "goldsztajn-chaja" not in (await visitor.get("/persons/2")).text
    left = rows((await staff.get("/staff/persons/suggestions")).text)
    assert line not in left and portrait not in left
    decisions = [e for e in audit_lines(people_world) if e.get("action", "").startswith("person-link")]
    assert [(e["action"], e["link"], e["target"], e["page"]) for e in decisions] == [
        ("person-link-accept", line, "person/2", "lists/list-20/p1"),
        ("person-link-reject", portrait, "person/2", "portraits/goldsztajn-chaja/p1")]
    assert decisions[0]["box"] == "200,420,480,60" and decisions[0]["holder"] == "people tests"
    # the decision can be undone from the person's own page
    person = await staff.get("/staff/persons/2")
    assert f'id="link-{line}"' in person.text and "confirmed" in person.text
    r = await staff.post(f"/staff/persons/2/links/{line}", data={"csrf": csrf, "decision": "reject"})
    assert r.status_code == 303
    assert "list-20%2Fp1/164,384" not in (await visitor.get("/persons/2")).text


async def test_accept_all_above_a_score_and_never_without_the_form_token(people_world: People) -> None:
    Suggester(people_world.catalogue).run(["portraits"], ["lists"])
    staff, csrf = await staff_client(people_world)
    listed = rows((await staff.get("/staff/persons/suggestions")).text)
    scores = {i: float(t.split()[0]) for i, t in listed.items()}
    assert (await staff.post("/staff/persons/suggestions/accept", data={"min": "0.8"})).status_code == 403
    assert rows((await staff.get("/staff/persons/suggestions")).text) == listed
    assert (await staff.post("/staff/persons/suggestions/accept",
                             data={"csrf": csrf, "min": "0.2"})).status_code == 400  # too low to be a choice
    r = await staff.post("/staff/persons/suggestions/accept", data={"csrf": csrf, "min": "0.8"})
    above = {i for i, s in scores.items() if s >= 0.8}
    assert r.status_code == 303 and r.headers["location"] == f"/staff/persons/suggestions?done={len(above)}"
    assert set(rows((await staff.get("/staff/persons/suggestions")).text)) == set(listed) - above
    [entry] = [e for e in audit_lines(people_world) if e.get("action") == "person-links-accept-above"]
    assert entry["count"] == len(above) and set(entry["links"]) == above and entry["min_score"] == 0.8


async def test_staff_hide_a_person_with_a_reason_and_show_them_again(people_world: People) -> None:
    staff, csrf = await staff_client(people_world)
    visitor = people_world.client()
    r = await staff.post("/staff/persons/1/hidden", data={"csrf": csrf, "hidden": "1"})
    assert r.status_code == 400 and (await visitor.get("/persons/1")).status_code == 200  # a reason is needed
    r = await staff.post("/staff/persons/1/hidden", data={"csrf": csrf, "hidden": "1", "reason": "the family asked"})
    assert r.status_code == 303
    assert (await visitor.get("/persons/1")).status_code == 404
    found = await staff.get("/staff/persons", params={"q": "levy"})
    assert "hidden" in found.text and "/staff/persons/1" in found.text  # staff still find them
    r = await staff.post("/staff/persons/1/hidden", data={"csrf": csrf, "hidden": "0"})
    assert r.status_code == 303 and (await visitor.get("/persons/1")).status_code == 200
    actions = [(e["action"], e.get("reason")) for e in audit_lines(people_world) if e.get("target") == "person/1"]
    assert actions == [("person-hide", "the family asked"), ("person-show", None)]
