"""Every console route, from the app's own routes, against every role: the answer each role must get (its
page or form's own answer where the role may use it, 403 where not), and nothing changed by a refused form.
A route without a row in the table below fails the test: a new route must say who may use it. Through the
ASGI app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support import page_tier
from worlds import World, audit_lines, console_routes, with_roles

from iiif_server.db import runs
from iiif_server.ingest.report import write_report

ALL = frozenset({"admin", "archivist", "reading-room", "auditor"})
READ = frozenset({"admin", "archivist", "reading-room"})
EDIT = frozenset({"admin", "archivist"})
ADMIN = frozenset({"admin"})
AUDIT = frozenset({"admin", "auditor"})

# (method, route): (the roles that may use it, their answer, the query or form sent); forms that would change
# something are sent with a target that changes nothing (an unknown one, or the tier it has)
TABLE: dict[tuple[str, str], tuple[frozenset[str], int, dict[str, str]]] = {
    ("GET", "/staff/console.js"): (ALL, 200, {}),
    ("GET", "/staff/"): (READ, 200, {}),
    ("GET", "/staff/collections/{cid}"): (READ, 200, {}),
    ("GET", "/staff/collections/{cid}/{doc}"): (READ, 200, {}),
    ("GET", "/staff/tier"): (EDIT, 200, {"target": "maps/d1", "tier": "reading-room"}),
    ("POST", "/staff/tier"): (EDIT, 303, {"target": "maps/d2", "tier": "reading-room"}),
    ("GET", "/staff/withdraw"): (EDIT, 200, {"target": "maps/d1/p1"}),
    ("POST", "/staff/withdraw"): (EDIT, 404, {"target": "maps/none", "reason": "asked"}),
    ("GET", "/staff/tokens"): (ADMIN, 200, {}),
    ("POST", "/staff/tokens"): (ADMIN, 400, {"tier": "staff", "holder": "", "days": "1"}),
    ("POST", "/staff/tokens/{tid}/revoke"): (ADMIN, 404, {}),
    ("GET", "/staff/networks"): (ADMIN, 200, {}),
    ("GET", "/staff/ingest"): (READ, 200, {}),
    ("GET", "/staff/ingest/new"): (EDIT, 200, {}),
    ("POST", "/staff/ingest/start"): (EDIT, 404, {"path": "nowhere", "collection": "maps", "tier": "public"}),
    ("GET", "/staff/ingest/runs/{rid}"): (READ, 200, {}),
    ("GET", "/staff/ingest/runs/{rid}/progress"): (READ, 200, {}),
    ("POST", "/staff/ingest/runs/{rid}/stop"): (EDIT, 303, {}),
    ("GET", "/staff/ingest/{name}"): (READ, 200, {}),
    ("GET", "/staff/describe/{cid}"): (EDIT, 200, {}),
    ("POST", "/staff/describe/{cid}"): (EDIT, 400, {"rights": "all rights reserved"}),  # refused: no URI
    ("GET", "/staff/persons"): (READ, 200, {"q": "Levy"}),
    ("GET", "/staff/persons/suggestions"): (READ, 200, {}),
    ("GET", "/staff/persons/{pid}"): (READ, 404, {}),  # no one is catalogued here
    ("POST", "/staff/persons/suggestions/decide"): (EDIT, 400, {"link": "999999", "decision": "accept"}),
    ("POST", "/staff/persons/suggestions/accept"): (EDIT, 303, {"min": "1"}),  # none waiting: accepts none
    ("POST", "/staff/persons/{pid}/links/{lid}"): (EDIT, 404, {"decision": "reject"}),
    ("POST", "/staff/persons/{pid}/hidden"): (EDIT, 404, {"hidden": "1", "reason": "asked"}),
    ("GET", "/staff/audit"): (AUDIT, 200, {}),
    ("GET", "/staff/audit.csv"): (AUDIT, 200, {}),
    ("POST", "/staff/logout"): (ALL, 303, {}),  # last: it ends the session
}
WAYS_IN = {("GET", "/staff"), ("GET", "/staff/login"), ("POST", "/staff/login"), ("GET", "/staff/oidc/login"),
           ("GET", "/staff/oidc/callback")}


@pytest.fixture
def world(console_world: World, tmp_path: Path) -> World:
    (tmp_path / "masters").mkdir()
    console_world.settings = dataclasses.replace(console_world.settings, masters_root=tmp_path / "masters")
    return console_world


def test_every_console_route_has_a_row() -> None:
    assert all(roles <= ALL for roles, _, _ in TABLE.values())


@pytest.mark.parametrize("role", sorted(ALL))
async def test_every_route_answers_each_role_as_the_table_says(world: World, role: str) -> None:
    routes = set(console_routes(world))
    assert routes - WAYS_IN == set(TABLE), "every console route needs a row in TABLE"
    reports = world.settings.data_dir / "reports"
    write_report(reports, "maps", "text", {"collection": "maps", "source": "/m", "converted": 1, "failures": []})
    report = next(reports.glob("ingest-*.json")).name
    rid = runs.create(world.catalogue, "maps", "/m", "Someone")
    runs.end(world.catalogue, rid, "finished")
    tokens_before = len(world.store.list())
    client, csrf = await with_roles(world, (role,))
    fill = {"{cid}": "maps", "{doc}": "d1", "{tid}": "unknown", "{rid}": rid, "{name}": report, "{pid}": "nobody",
            "{lid}": "999999"}
    for (method, route), (roles, status, data) in TABLE.items():
        path = route
        for key, value in fill.items():
            path = path.replace(key, value)
        if method == "GET":
            r = await client.get(path, params=data)
        else:
            r = await client.post(path, data={"csrf": csrf, **data})
        wanted = status if role in roles else 403
        assert r.status_code == wanted, (role, method, route, r.status_code, r.text[:300])
        assert r.headers["cache-control"] in ("no-store", "private, max-age=300"), (method, route)  # the script
        if role not in roles and method == "POST":
            assert audit_lines(world)[-1]["action"] == "role-refused", (method, route)
    # what the refused forms would have changed is as it was
    assert page_tier(world.catalogue, "maps/d1/p1") == "public"
    assert page_tier(world.catalogue, "maps/d2/p1") == "reading-room"
    assert len(world.store.list()) == tokens_before
    assert (world.settings.images / "maps" / "d1" / "p1.tif").exists()
    assert [r.id for r in runs.recent(world.catalogue, 10)] == [rid]


async def test_pages_offer_only_what_the_role_may_do(world: World) -> None:
    desk, _ = await with_roles(world, ("reading-room",))
    page = (await desk.get("/staff/collections/maps/d1")).text
    assert 'action="/staff/tier"' not in page and 'action="/staff/withdraw"' not in page
    assert 'href="/staff/tokens"' not in page and 'href="/staff/audit"' not in page
    assert 'href="/staff/ingest"' in page and "(reading-room)" in page
    archivist, _ = await with_roles(world, ("archivist",))
    page = (await archivist.get("/staff/collections/maps/d1")).text
    assert 'action="/staff/tier"' in page and 'href="/staff/tokens"' not in page
    assert 'href="/staff/ingest/new"' in (await archivist.get("/staff/ingest")).text
    assert 'action="/staff/persons/suggestions/accept"' in (await archivist.get("/staff/persons/suggestions")).text
    assert 'action="/staff/persons/suggestions/accept"' not in (await desk.get("/staff/persons/suggestions")).text
    auditor, _ = await with_roles(world, ("auditor",))
    page = (await auditor.get("/staff/audit")).text
    assert 'href="/staff/audit"' in page and 'href="/staff/"' not in page
