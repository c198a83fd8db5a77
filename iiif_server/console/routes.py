"""The console's pages and forms. Every route but the sign-in answers only a staff session holding one of the
roles the route declares (roles.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from iiif_server.auth.policy import Policy
from iiif_server.console import audit, queries, tail
from iiif_server.console.desk import IngestDesk
from iiif_server.console.gate import HEADERS
from iiif_server.console.oidc import OpenIDSignIn
from iiif_server.console.roles import ACCESS, ANY, AUDIT, EDIT, READ
from iiif_server.console.session import Sessions, StaffSession
from iiif_server.console.signin import SignIn
from iiif_server.db import runs as run_rows
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import effective_tier
from iiif_server.errors import BadTarget, NotFound, Target
from iiif_server.ingest import runs as ingest_runs
from iiif_server.ingest.withdraw import ObjectCopies, withdraw
from iiif_server.runtime import observe
from iiif_server.runtime.addresses import IPNetwork

TEMPLATES = Path(__file__).parent / "templates"
PAGE = 50  # documents per page of a collection
THUMBS = 60  # pages per page of a document
RUNS = 50  # ingest runs per page
RUNS_SHOWN = 10  # the latest runs, live or not, above them
FAILURES = 100  # failures per page of one run
ENTRIES = 100  # audit entries per page


class Console(SignIn, IngestDesk):
    def __init__(self, catalogue: Catalogue, policy: Policy, secret: str, audit_log: observe.JsonLines,
                 base_url: Callable[[Request], str], run: Callable[..., Awaitable[Any]],
                 copies: Path | ObjectCopies, proxies: list[IPNetwork], idle: int | None = None,
                 reports: Path | None = None, openid: OpenIDSignIn | None = None, token_sign_in: bool = True,
                 masters_root: Path | None = None, ingest_env: dict[str, str] | None = None,
                 ingest_workers: int = 1) -> None:
        self.openid = openid
        self.token_sign_in = token_sign_in
        self.masters_root = masters_root  # where ingests started here may read from (None: nowhere)
        self.ingest_env = ingest_env or {}
        self.ingest_workers = ingest_workers
        self.children = {}
        self.catalogue = catalogue
        self.policy = policy
        self.sessions = Sessions(secret) if idle is None else Sessions(secret, idle)
        self.audit_log = audit_log
        self.base_url = base_url
        self.run = run
        self.copies = copies  # the image root, or the bucket's copies: what a withdrawal deletes
        self.proxies = proxies
        self.reports = reports  # where ingest writes its reports (DATA_DIR/reports)
        target = audit_log.target
        self.audit_path = Path(target) if target not in ("-", "off") else None  # None: nothing to show
        self.staff_tier = policy.tiers.names[-1]
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["q"] = lambda value: quote(str(value), safe="")
        self.env.filters["when"] = _when
        self.env.filters["counted"] = counted

    def routes(self) -> list[Route]:
        page, form = self.page, self.form
        return [
            Route("/staff", lambda request: RedirectResponse("/staff/", 308), methods=["GET"]),
            Route("/staff/login", self.login, methods=["GET", "POST"]),
            Route("/staff/oidc/login", self.oidc_login, methods=["GET"]),
            Route("/staff/oidc/callback", self.oidc_callback, methods=["GET"]),
            Route("/staff/logout", form(self.logout, ANY), methods=["POST"]),
            Route("/staff/console.js", page(self.script, ANY), methods=["GET"]),
            Route("/staff/", page(self.overview, READ), methods=["GET"]),
            Route("/staff/collections/{cid}", page(self.collection, READ), methods=["GET"]),
            Route("/staff/collections/{cid}/{doc}", page(self.document, READ), methods=["GET"]),
            Route("/staff/tier", page(self.confirm_tier, EDIT), methods=["GET"]),
            Route("/staff/tier", form(self.change_tier, EDIT), methods=["POST"]),
            Route("/staff/withdraw", page(self.confirm_withdraw, EDIT), methods=["GET"]),
            Route("/staff/withdraw", form(self.withdraw, EDIT), methods=["POST"]),
            Route("/staff/tokens", page(self.tokens, ACCESS), methods=["GET"]),
            Route("/staff/tokens", form(self.issue, ACCESS), methods=["POST"]),
            Route("/staff/tokens/{tid}/revoke", form(self.revoke, ACCESS), methods=["POST"]),
            Route("/staff/networks", page(self.networks, ACCESS), methods=["GET"]),
            Route("/staff/ingest", page(self.runs, READ), methods=["GET"]),
            Route("/staff/ingest/new", page(self.ingest_new, EDIT), methods=["GET"]),
            Route("/staff/ingest/start", form(self.ingest_start, EDIT), methods=["POST"]),
            Route("/staff/ingest/runs/{rid}", page(self.run_page, READ), methods=["GET"]),
            Route("/staff/ingest/runs/{rid}/progress", page(self.run_progress, READ), methods=["GET"]),
            Route("/staff/ingest/runs/{rid}/stop", form(self.run_stop, EDIT), methods=["POST"]),
            Route("/staff/ingest/{name}", page(self.run_report, READ), methods=["GET"]),
            Route("/staff/audit", page(self.audit_view, AUDIT), methods=["GET"]),
            Route("/staff/audit.csv", page(self.audit_csv, AUDIT), methods=["GET"]),
        ]

    # -- collections and documents ---------------------------------------------------------------

    async def overview(self, request: Request, session: StaffSession) -> Response:
        query = request.query_params.get("q", "")[:200]
        after = request.query_params.get("after", "")[:200]
        rows = await self.run(queries.collections, self.catalogue, query, after, PAGE + 1)
        more = rows[PAGE - 1].id if len(rows) > PAGE else None
        return self.render(request, session, "overview.html", rows=rows[:PAGE], q=query, after=after, more=more)

    async def collection(self, request: Request, session: StaffSession) -> Response:
        cid = request.path_params["cid"]
        coll = await self.run(self.catalogue.collection, cid)
        if coll is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no collection {cid}.")
        prefix = request.query_params.get("find", "")[:200]
        first = _int(request.query_params.get("from"), 0)
        last = await self.run(self.catalogue.last_position, cid)
        if prefix:
            docs = await self.run(queries.find_documents, self.catalogue, cid, prefix, PAGE)
        else:
            docs = await self.run(queries.documents, self.catalogue, cid, first, PAGE)
        pager = {"first": first, "prev": max(0, first - PAGE) if first > 0 else None,
                 "next": first + PAGE if last is not None and first + PAGE <= last else None,
                 "last_page": (last // PAGE) * PAGE if last is not None else None}
        return self.render(request, session, "collection.html", coll=coll, docs=docs, pager=pager, find=prefix,
                           last=last, changed=request.query_params.get("changed"))

    async def document(self, request: Request, session: StaffSession) -> Response:
        cid, ident = request.path_params["cid"], request.path_params["doc"]
        coll = await self.run(self.catalogue.collection, cid)
        doc = await self.run(self.catalogue.document, cid, ident) if coll is not None else None
        if coll is None or doc is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no document {cid}/{ident}.")
        first = _int(request.query_params.get("from"), 0)
        rows = await self.run(queries.pages, self.catalogue, doc.pk, first, THUMBS + 1)
        base = self.base_url(request)
        thumbs = [{"row": row, "tier": effective_tier(row.tier, doc.tier, coll.tier),
                   "src": f"{base}/iiif/3/{quote(f'{cid}/{ident}/{row.ident}', safe='')}/full/!200,200/0/default.jpg"}
                  for row in rows[:THUMBS]]
        more = rows[THUMBS].position if len(rows) > THUMBS else None
        manifest = f"{base}/iiif/presentation/{quote(cid, safe='')}/{quote(ident, safe='')}/manifest"
        return self.render(request, session, "document.html", coll=coll, doc=doc, thumbs=thumbs, more=more,
                           manifest=manifest, doc_tier=effective_tier(doc.tier, coll.tier),
                           changed=request.query_params.get("changed"))

    # -- tiers -----------------------------------------------------------------------------------------

    def describe(self, target: Target, tier: str) -> dict[str, Any] | None:
        """Blocking: what a tier change would do: the tier now, pages affected, who sees them after."""
        coll = self.catalogue.collection(target.parts[0])
        if coll is None:
            return None
        out: dict[str, Any] = {"target": target, "tier": tier, "keeps": []}
        if target.level == "collection":
            docs, doc_pages, own_pages = queries.own_tiers(self.catalogue, coll.id)
            out.update(current=coll.tier, pages=coll.image_count - doc_pages - own_pages, documents=coll.document_count)
            if docs:
                out["keeps"].append(f"{keeping(docs, 'document')} ({counted(doc_pages, 'page')} in all)")
            if own_pages:
                out["keeps"].append(keeping(own_pages, "page"))
            return out
        doc = self.catalogue.document(coll.id, target.parts[1])
        if doc is None:
            return None
        if target.level == "document":
            total, own = queries.page_count(self.catalogue, doc.pk)
            out.update(current=effective_tier(doc.tier, coll.tier), pages=total - own, documents=1)
            if own:
                out["keeps"].append(keeping(own, "page"))
            return out
        row = queries.page(self.catalogue, doc.pk, target.parts[2])
        if row is None:
            return None
        out.update(current=effective_tier(row.tier, doc.tier, coll.tier), pages=1, documents=0)
        return out

    def audience(self, tier: str) -> list[str]:
        """Who is cleared for `tier`, in words."""
        tiers = self.policy.tiers
        if tier == tiers.public:
            return ["everyone, without signing in"]
        above = [t for t in tiers.names if tiers.allows(t, tier)]
        who = [f"holders of tokens of tier {', '.join(above)}"]
        for net_tier, networks in self.policy.networks.rules.items():
            if tiers.allows(net_tier, tier):
                who.append(f"visitors from the {net_tier} network ({', '.join(str(n) for n in networks)})")
        if tier in self.policy.hidden:
            who.append("to everyone else its manifests are hidden, not merely refused")
        return who

    async def confirm_tier(self, request: Request, session: StaffSession) -> Response:
        target = _target(request.query_params.get("target", ""))
        tier = request.query_params.get("tier", "")
        if target is None or tier not in self.policy.tiers.names:
            return self.render(request, session, "message.html", 400, title="Unknown",
                               message="Choose a collection, document or page and a known tier.")
        change = await self.run(self.describe, target, tier)
        if change is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no {target.text}.")
        return self.render(request, session, "confirm_tier.html", change=change, audience=self.audience(tier))

    async def change_tier(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        target = _target(form.get("target", ""))
        tier = form.get("tier", "")
        if target is None or tier not in self.policy.tiers.names:
            return self.render(request, session, "message.html", 400, title="Unknown",
                               message="Choose a collection, document or page and a known tier.")
        before = await self.run(self.describe, target, tier)
        try:
            await self.run(self.catalogue.set_tier, target.text, tier)
        except NotFound:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no {target.text}.")
        self.audit(request, session, "set-tier", target.text, tier=tier,
                   previous=before["current"] if before else None, pages=before["pages"] if before else None)
        return RedirectResponse(_view_of(target) + "?changed=1", 303, headers=HEADERS)

    # -- access -----------------------------------------------------------------------------------------

    async def tokens(self, request: Request, session: StaffSession) -> Response:
        await self.run(self.policy.tokens.usage.flush)  # this process's uses; other replicas' within a minute
        rows = await self.run(queries.tokens, self.catalogue)
        current = dt.datetime.now(dt.UTC)
        listed = [{"row": row, "state": _state(row, current)} for row in rows]
        colls = await self.run(queries.collections, self.catalogue, "", "", 500)
        return self.render(request, session, "tokens.html", tokens=listed, collections=colls)

    async def issue(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        tier = form.get("tier", "")
        holder = form.get("holder", "").strip()[:200]
        days = _float(form.get("days"), 0)
        wanted = [c.strip() for c in form.get("collections", "").replace("\n", ",").split(",") if c.strip()]
        problems = []
        if tier not in self.policy.tiers.names or tier == self.policy.tiers.public:
            problems.append("Choose a restricted tier.")
        if not holder:
            problems.append("Name the holder.")
        if not 0 < days <= 3660:
            problems.append("The token must expire within ten years.")
        known = {c.id for c in await self.run(queries.collections, self.catalogue, "", "", 1000)}
        unknown = [c for c in wanted if c not in known]
        if unknown:
            problems.append("Unknown collections: " + ", ".join(unknown))
        if problems:
            return self.render(request, session, "message.html", 400, title="Not issued", message=" ".join(problems))
        token, row = await self.run(self.policy.tokens.issue, tier, holder, days, wanted)
        self.audit(request, session, "token-issue", row.id, tier=tier, token_holder=holder, collections=wanted,
                   expires=row.expires.isoformat())
        login = f"{self.base_url(request)}/iiif/auth/login"
        return self.render(request, session, "token_issued.html", token=token, row=row, login=login)

    async def revoke(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        tid = request.path_params["tid"]
        row = await self.run(queries.token, self.catalogue, tid)
        if row is None or not await self.run(self.policy.tokens.revoke, tid):
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no token {tid}.")
        self.audit(request, session, "token-revoke", tid, token_holder=row.holder, collections=row.collections)
        return RedirectResponse("/staff/tokens", 303, headers=HEADERS)

    async def networks(self, request: Request, session: StaffSession) -> Response:
        tiers = self.policy.tiers
        rules = [{"tier": tier, "networks": [str(n) for n in nets],
                  "names": {str(n): name for n, name in self.policy.networks.names.items()},
                  "clears": [t for t in tiers.names if tiers.allows(tier, t)]}
                 for tier, nets in self.policy.networks.rules.items()]
        return self.render(request, session, "networks.html", rules=rules)

    async def script(self, request: Request, session: StaffSession) -> Response:
        return Response((TEMPLATES / "console.js").read_bytes(), media_type="text/javascript",
                        headers={**HEADERS, "Cache-Control": "private, max-age=300"})

    # -- withdrawals ----------------------------------------------------------------------------------

    async def confirm_withdraw(self, request: Request, session: StaffSession) -> Response:
        target = _target(request.query_params.get("target", ""))
        if target is None:
            return self.render(request, session, "message.html", 400, title="Unknown",
                               message="Choose a collection, document or page.")
        change = await self.run(self.describe, target, self.policy.tiers.public)
        if change is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no {target.text}.")
        return self.render(request, session, "withdraw.html", change=change)

    async def withdraw(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        target = _target(form.get("target", ""))
        reason = form.get("reason", "").strip()[:2000]
        if target is None or not reason:
            return self.render(request, session, "message.html", 400, title="Not withdrawn",
                               message="Name what to withdraw and give a reason.")
        try:
            done = await self.run(withdraw, self.catalogue, self.copies, target.text)
        except NotFound:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no {target.text}.")
        self.audit(request, session, "withdraw", done.target, reason=reason, documents=done.documents,
                   pages=done.pages)
        parent = target.parent
        back = _view_of(parent) if parent else "/staff/"
        return self.render(request, session, "message.html", title="Withdrawn",
                           message=f"{done.target} is withdrawn ({counted(done.documents, 'document')}, "
                                   f"{counted(done.pages, 'page')}).",
                           back=back)

    # -- ingest runs ----------------------------------------------------------------------------------

    def read_runs(self, before: int | None) -> tuple[list[dict[str, Any]], int | None]:
        """Blocking: a page of run summaries, newest first, and the cursor of the next (older) page."""
        if self.reports is None:
            return [], None
        index = ingest_runs.ensure_index(self.reports)
        out: list[dict[str, Any]] = []
        for start, line in tail.backwards(index, before):
            entry = tail.parse(line)
            if entry is None:
                continue
            if len(out) == RUNS:
                return out, start + len(line) + 1
            out.append(entry)
        return out, None

    async def runs(self, request: Request, session: StaffSession) -> Response:
        before = request.query_params.get("before")
        rows, older = await self.run(self.read_runs, _int(before, 0) if before else None)
        latest = []
        if before is None:
            await self.run(run_rows.sweep, self.catalogue)
            latest = await self.run(run_rows.recent, self.catalogue, RUNS_SHOWN)
        return self.render(request, session, "runs.html", rows=rows, older=older, first=before is None,
                           where=self.reports, latest=latest, masters=self.masters_root is not None)

    async def run_report(self, request: Request, session: StaffSession) -> Response:
        name = request.path_params["name"]
        data = await self.run(ingest_runs.report, self.reports, name) if self.reports is not None else None
        if data is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message=f"There is no ingest report {name}.", back="/staff/ingest")
        first = _int(request.query_params.get("from"), 0)
        failures = data.get("failures") if isinstance(data.get("failures"), list) else []
        shown = failures[first:first + FAILURES]
        return self.render(request, session, "run.html", report=name, data=data, failures=shown, first=first,
                           total=len(failures), more=first + FAILURES if first + FAILURES < len(failures) else None,
                           page=FAILURES)

    # -- the audit log --------------------------------------------------------------------------------

    async def audit_view(self, request: Request, session: StaffSession) -> Response:
        flt = audit.Filter.parse(request.query_params)
        before = request.query_params.get("before")
        result = None
        if self.audit_path is not None:
            result = await self.run(audit.page, self.audit_path, flt, _int(before, 0) if before else None, ENTRIES)
        return self.render(request, session, "audit.html", flt=flt, result=result, query=flt.query(),
                           first=before is None, logged=self.audit_path is not None)

    async def audit_csv(self, request: Request, session: StaffSession) -> Response:
        if self.audit_path is None:
            return self.render(request, session, "message.html", 404, title="No audit log",
                               message="The audit log is not written to a file here.")
        flt = audit.Filter.parse(request.query_params)
        self.audit(request, session, "audit-export", None, **flt.query())
        name = "audit" + "".join(f"-{v}" for v in (flt.since_text, flt.until and flt.until.isoformat()) if v)
        return StreamingResponse(audit.csv_lines(self.audit_path, flt), media_type="text/csv; charset=utf-8",
                                 headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}.csv"'})


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def keeping(n: int, noun: str) -> str:
    return f"1 {noun} keeps a tier of its own" if n == 1 else f"{n} {noun}s keep a tier of their own"


def _target(text: str) -> Target | None:
    try:
        return Target.parse(text)
    except BadTarget:
        return None


def _view_of(target: Target) -> str:
    parts = [quote(p, safe="") for p in target.parts]
    if len(parts) == 1:
        return f"/staff/collections/{parts[0]}"
    return f"/staff/collections/{parts[0]}/{parts[1]}"


def _state(row: Any, current: dt.datetime) -> str:
    if row.revoked is not None:
        return "revoked"
    expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=dt.UTC)
    return "expired" if expires <= current else "active"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _int(text: str | None, default: int) -> int:
    try:
        return max(0, min(int(text or ""), 2**31 - 1))
    except ValueError:
        return default


def _float(text: str | None, default: float) -> float:
    try:
        return float(text or "")
    except ValueError:
        return default


__all__ = ["Console"]
