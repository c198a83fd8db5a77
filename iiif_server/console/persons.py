"""The console's pages about people: the suggestions to review, a person with their links, hiding a person.

    GET  /staff/persons?q=                     find a person (hidden ones too)
    GET  /staff/persons/suggestions            suggestions best first (min score, kind), paged by key
    POST /staff/persons/suggestions/decide     accept or reject one
    POST /staff/persons/suggestions/accept     accept every suggestion scored at least a given score
    GET  /staff/persons/{id}                   a person, their links in every state, hide or show them
    POST /staff/persons/{id}/links/{link}      confirm or reject one of their links
    POST /staff/persons/{id}/hidden            hide from visitors (with a reason) or show again

Every decision is one audit line (who, what, the link's page and box, its score). Built on the console's gate
(sessions, CSRF, rendering, the audit log): these routes add nothing to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from iiif_server.console.gate import HEADERS
from iiif_server.console.roles import EDIT, READ
from iiif_server.console.session import StaffSession
from iiif_server.db.models import CONFIRMED, LINE, PORTRAIT, REJECTED, SUGGESTED
from iiif_server.db.people import Linked, People

if TYPE_CHECKING:
    from iiif_server.console.routes import Console
    from iiif_server.search.persons import Found

PAGE = 50  # suggestions a page
FOUND = 50  # people a staff search lists


def _score(text: str | None, default: float) -> float:
    try:
        value = float(text or "")
    except ValueError:
        return default
    return value if 0.0 <= value <= 1.0 else default


def _after(text: str | None) -> tuple[float, int] | None:
    """`score:id` of the last suggestion of the previous page."""
    score, _, lid = (text or "").partition(":")
    try:
        return float(score), int(lid)
    except ValueError:
        return None


def region_url(base: str, link: Linked) -> str:
    """The line (with some margin) or the whole portrait, small, for the reviewer's eye."""
    service = f"{base}/iiif/3/{quote(link.identifier, safe='')}"
    if link.box:
        x, y, w, h = link.box
        pad = h // 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        w0, h0 = min(link.width, x + w + pad) - x0, min(link.height, y + h + pad) - y0
        return f"{service}/{x0},{y0},{w0},{h0}/{'max' if w0 <= 800 else '800,'}/0/default.jpg"
    return f"{service}/full/!200,200/0/default.jpg" if max(link.width, link.height) > 200 else \
        f"{service}/full/max/0/default.jpg"


class PersonReview:
    """`find`: the people a name finds, hidden ones too (the search's, handed in by the application);
    `threshold`: the score the suggestions offer to accept all above."""

    def __init__(self, console: Console, people: People, find: Callable[[str], list[Found]],
                 threshold: float) -> None:
        self.console = console
        self.people = people
        self.find_people = find
        self.threshold = threshold

    def routes(self) -> list[Route]:
        c = self.console
        return [
            Route("/staff/persons", c.page(self.find, READ), methods=["GET"]),
            Route("/staff/persons/suggestions", c.page(self.suggestions, READ), methods=["GET"]),
            Route("/staff/persons/suggestions/decide", c.form(self.decide, EDIT), methods=["POST"]),
            Route("/staff/persons/suggestions/accept", c.form(self.accept_above, EDIT), methods=["POST"]),
            Route("/staff/persons/{pid}", c.page(self.person, READ), methods=["GET"]),
            Route("/staff/persons/{pid}/links/{lid}", c.form(self.decide_one, EDIT), methods=["POST"]),
            Route("/staff/persons/{pid}/hidden", c.form(self.hide, EDIT), methods=["POST"]),
        ]

    def _message(self, request: Request, session: StaffSession, status: int, title: str, text: str,
                 back: str = "/staff/persons/suggestions") -> Response:
        return self.console.render(request, session, "message.html", status, title=title, message=text, back=back)

    # -- pages ----------------------------------------------------------------------------------------

    async def find(self, request: Request, session: StaffSession) -> Response:
        query = request.query_params.get("q", "")[:200]
        found = []
        if query.strip():
            found = (await self.console.run(self.find_people, query))[:FOUND]
        return self.console.render(request, session, "persons.html", q=query, found=found)

    async def suggestions(self, request: Request, session: StaffSession) -> Response:
        params = request.query_params
        minimum = _score(params.get("min"), 0.0)
        kind = params.get("kind") if params.get("kind") in (LINE, PORTRAIT) else None
        after = _after(params.get("after"))
        rows = await self.console.run(self.people.suggestions, minimum, kind, after, PAGE + 1)
        more = f"{rows[PAGE - 1][0].score}:{rows[PAGE - 1][0].id}" if len(rows) > PAGE else None
        base = self.console.base_url(request)
        shown = [{"link": link, "person": person, "image": region_url(base, link)} for link, person in rows[:PAGE]]
        return self.console.render(request, session, "suggestions.html", rows=shown, minimum=minimum, kind=kind,
                                   more=more, first=after is None, threshold=self.threshold,
                                   done=params.get("done"))

    async def person(self, request: Request, session: StaffSession) -> Response:
        pid = request.path_params["pid"]
        person = await self.console.run(self.people.person, pid)
        if person is None:
            return self._message(request, session, 404, "Not found", f"There is no person {pid}.", "/staff/persons")
        links = await self.console.run(self.people.links, pid, (CONFIRMED, SUGGESTED, REJECTED))
        base = self.console.base_url(request)
        return self.console.render(request, session, "person.html", person=person,
                                   links=[{"link": lk, "image": region_url(base, lk)} for lk in links],
                                   public=f"{base}/persons/{pid}", changed=request.query_params.get("changed"))

    # -- decisions --------------------------------------------------------------------------------------

    def _audit(self, request: Request, session: StaffSession, action: str, link: Linked, **extra: Any) -> None:
        self.console.audit(request, session, action, f"person/{link.person_id}", link=link.id, kind=link.kind,
                           page=link.identifier, box=",".join(map(str, link.box)) if link.box else None,
                           score=link.score, previous=link.state, **extra)

    async def _decide(self, request: Request, session: StaffSession, lid: int, decision: str) -> Linked | None:
        state = {"accept": CONFIRMED, "reject": REJECTED}.get(decision)
        link = await self.console.run(self.people.link, lid)
        if state is None or link is None:
            return None
        changed = await self.console.run(self.console.catalogue.decide, [lid], state, session.holder)
        if changed:
            self._audit(request, session, f"person-link-{decision}", link)
        return link

    async def decide(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        try:
            lid = int(form.get("link", ""))
        except ValueError:
            lid = -1
        link = await self._decide(request, session, lid, form.get("decision", ""))
        if link is None:
            return self._message(request, session, 400, "Not decided", "Choose a suggestion and accept or reject it.")
        back = form.get("back", "")
        return RedirectResponse(back if back.startswith("/staff/persons") else "/staff/persons/suggestions", 303,
                                headers=HEADERS)

    async def decide_one(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        pid, text = request.path_params["pid"], request.path_params["lid"]
        lid = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else -1
        link = await self.console.run(self.people.link, lid)
        if link is None or link.person_id != pid:
            return self._message(request, session, 404, "Not found", f"Person {pid} has no link {lid}.")
        await self._decide(request, session, lid, form.get("decision", ""))
        return RedirectResponse(f"/staff/persons/{pid}?changed=1", 303, headers=HEADERS)

    async def accept_above(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        minimum = _score(form.get("min"), -1.0)
        if minimum < 0.5:
            return self._message(request, session, 400, "Not accepted",
                                 "Give a score from 0.5 to 1: every suggestion scored at least that is accepted.")
        changed = await self.console.run(self.console.catalogue.decide_above, minimum, session.holder)
        self.console.audit(request, session, "person-links-accept-above", None, min_score=minimum,
                           count=len(changed), links=[lk.id for lk in changed][:1000])
        return RedirectResponse(f"/staff/persons/suggestions?done={len(changed)}", 303, headers=HEADERS)

    async def hide(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        pid = request.path_params["pid"]
        hidden = form.get("hidden") == "1"
        reason = form.get("reason", "").strip()[:2000]
        if hidden and not reason:
            return self._message(request, session, 400, "Not hidden", "Give the reason for hiding this person.",
                                 f"/staff/persons/{pid}")
        person = await self.console.run(self.console.catalogue.set_hidden, pid, hidden)
        if person is None:
            return self._message(request, session, 404, "Not found", f"There is no person {pid}.", "/staff/persons")
        self.console.audit(request, session, "person-hide" if hidden else "person-show", f"person/{pid}",
                           reason=reason or None)
        return RedirectResponse(f"/staff/persons/{pid}?changed=1", 303, headers=HEADERS)
