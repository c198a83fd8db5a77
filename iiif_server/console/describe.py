"""The console's form for describing a collection: what everyone reads on its public page and in its IIIF
Collection (label, summary, full description, dates, provenance, rights, required statement, the archive's
own reference, metadata pairs). The same checks as `iiif-server collections describe` (ingest/describe.py);
a change is audited with the fields it changed and announced to harvesters (db/descriptions.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from iiif_server.console.gate import HEADERS, StaffGate
from iiif_server.console.roles import EDIT
from iiif_server.console.session import StaffSession
from iiif_server.db.descriptions import Description
from iiif_server.errors import NotFound
from iiif_server.ingest.describe import check_field

FIELDS = ("label", "summary", "description", "dates", "provenance", "rights", "required_statement", "record")


def pairs_text(pairs: list[Any]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in pairs)


def read_pairs(text: str) -> list[list[str]]:
    """`Name: value`, one a line (ValueError naming a line without a name)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"metadata line {n} is not 'Name: value'")
        out.append([name.strip(), value.strip()])
    return out


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


class DescribeForm:
    def __init__(self, console: StaffGate) -> None:
        self.console = console

    def routes(self) -> list[Route]:
        return [Route("/staff/describe/{cid}", self.console.page(self.show, EDIT), methods=["GET"]),
                Route("/staff/describe/{cid}", self.console.form(self.apply, EDIT), methods=["POST"])]

    async def show(self, request: Request, session: StaffSession) -> Response:
        coll = await self.console.run(self.console.catalogue.collection, request.path_params["cid"])
        if coll is None:
            return self._missing(request, session)
        values = {name: getattr(coll, name) or "" for name in FIELDS}
        return self.console.render(request, session, "describe.html", coll=coll, values=values,
                                   pairs=pairs_text(coll.metadata_pairs or []), errors=[],
                                   saved=request.query_params.get("saved"))

    async def apply(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        cid = request.path_params["cid"]
        coll = await self.console.run(self.console.catalogue.collection, cid)
        if coll is None:
            return self._missing(request, session)
        values: dict[str, Any] = {}
        errors = []
        for name in FIELDS:
            try:
                values[name] = check_field(name, form.get(name, "").replace("\r\n", "\n"))
            except ValueError as exc:
                errors.append(sentence(str(exc)))
        try:
            values["metadata_pairs"] = read_pairs(form.get("metadata", ""))
        except ValueError as exc:
            errors.append(sentence(str(exc)))
        if errors:
            shown = {name: form.get(name, "") for name in FIELDS}
            return self.console.render(request, session, "describe.html", 400, coll=coll, values=shown,
                                       pairs=form.get("metadata", ""), errors=errors, saved=None)
        try:
            [done] = await self.console.run(self.console.catalogue.describe, [Description(cid, values)])
        except NotFound:
            return self._missing(request, session)
        changed = [name.replace("_pairs", "") for name in done.changed]
        self.console.audit(request, session, "describe", cid, changed=changed)
        return RedirectResponse(f"/staff/describe/{cid}?saved={len(changed)}", 303, headers=HEADERS)

    def _missing(self, request: Request, session: StaffSession) -> Response:
        return self.console.render(request, session, "message.html", 404, title="Not found",
                                   message=f"There is no collection {request.path_params['cid']}.")
