"""Ingest from the console: pick a folder below the masters root, start the run as a supervised child process of
this server (`iiif-server ingest --run-id`), watch its progress live, stop it safely, find its report among the
runs. The run keeps its own row in the catalogue (db/runs.py), so every replica shows it and any replica can
stop it; one run per collection at a time on every host (the run lock). Mixed into `Console` (routes.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from iiif_server.console import masters
from iiif_server.console.gate import HEADERS, StaffGate
from iiif_server.console.session import StaffSession
from iiif_server.db import runs
from iiif_server.db.models import IngestRun, now
from iiif_server.ingest.scan import check_collection_id, safe_ident

log = logging.getLogger(__name__)
LOG_TAIL = 2000  # bytes of a failed run's output kept as its message


class IngestDesk(StaffGate):
    masters_root: Path | None
    reports: Path | None
    ingest_env: dict[str, str]
    ingest_workers: int
    children: dict[str, asyncio.Task[None]]

    def no_masters(self, request: Request, session: StaffSession) -> Response:
        return self.render(request, session, "message.html", 404, title="Not set up",
                           message="Ingest from the console needs a masters folder (the masters_root setting); "
                                   "until then, ingest with the iiif-server ingest command.", back="/staff/ingest")

    # -- the folder picker ----------------------------------------------------------------------------

    async def ingest_new(self, request: Request, session: StaffSession) -> Response:
        if self.masters_root is None:
            return self.no_masters(request, session)
        relative = request.query_params.get("path", "")
        try:
            folder = await self.run(masters.resolve, self.masters_root, relative)
        except masters.OutsideRoot as exc:
            return self.render(request, session, "message.html", 400, title="Refused", message=str(exc),
                               back="/staff/ingest/new")
        except FileNotFoundError:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message="There is no such folder among the masters.", back="/staff/ingest/new")
        after = request.query_params.get("after", "")[:300]
        here = masters.relative_to_root(self.masters_root, folder)
        listing = await self.run(masters.folders, folder, after)
        csvs = await self.run(masters.csv_files, folder, self.masters_root) if here else []
        crumbs = []
        parts = here.split("/") if here else []
        for n, name in enumerate(parts):
            crumbs.append({"name": name, "path": "/".join(parts[: n + 1])})
        existing = await self.run(self.catalogue.collection, safe_ident(parts[-1])) if parts else None
        return self.render(request, session, "ingest_new.html", here=here, crumbs=crumbs, listing=listing,
                           after=after, csvs=csvs, suggested=safe_ident(parts[-1]) if parts else "",
                           existing=existing)

    # -- starting, watching, stopping ------------------------------------------------------------------

    async def ingest_start(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        if self.masters_root is None or self.reports is None:
            return self.no_masters(request, session)
        problems: list[str] = []
        src = csv = None
        try:
            src = await self.run(masters.resolve, self.masters_root, form.get("path", ""))
            if src == Path(self.masters_root).resolve():
                problems.append("Choose a folder below the masters folder, not the whole of it.")
            if form.get("metadata"):
                csv = await self.run(masters.resolve, self.masters_root, form["metadata"], "csv")
        except masters.OutsideRoot as exc:
            return self.render(request, session, "message.html", 400, title="Refused", message=str(exc),
                               back="/staff/ingest/new")
        except FileNotFoundError:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message="There is no such folder or metadata file among the masters.",
                               back="/staff/ingest/new")
        collection = form.get("collection", "").strip()
        tier = form.get("tier", "").strip() or None
        label = form.get("label", "").strip()[:500] or None
        try:
            check_collection_id(collection)
        except ValueError as exc:
            problems.append(str(exc).capitalize() + ".")
        if tier is not None and tier not in self.policy.tiers.names:
            problems.append("Choose a known tier.")
        if not problems and tier is None and await self.run(self.catalogue.collection, collection) is None:
            problems.append(f"{collection} is a new collection: choose its tier.")
        if problems:
            return self.render(request, session, "message.html", 400, title="Not started", message=" ".join(problems),
                               back="/staff/ingest/new?path=" + quote(form.get("path", "")))
        busy = await self.run(runs.running_in, self.catalogue, collection)
        if busy is not None:
            return self.render(request, session, "message.html", 409, title="Busy",
                               message=f"An ingest of {collection} is running already (started by {busy.started_by}): "
                                       "let it finish, or stop it.", back=f"/staff/ingest/runs/{busy.id}")
        assert src is not None
        rid = await self.run(lambda: runs.create(self.catalogue, collection, str(src), session.holder, tier=tier,
                                                 metadata_csv=str(csv) if csv else None, subject=session.subject))
        await self.spawn(rid, src, collection, tier, label, csv)
        self.audit(request, session, "ingest-start", collection, run=rid, source=str(src), tier=tier,
                   metadata=str(csv) if csv else None)
        return RedirectResponse(f"/staff/ingest/runs/{rid}", 303, headers=HEADERS)

    async def spawn(self, rid: str, src: Path, collection: str, tier: str | None, label: str | None,
                    csv: Path | None) -> None:
        """The run as a child process in a session of its own (its workers die with it), supervised here."""
        assert self.reports is not None
        cmd = [sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", collection,
               "--workers", str(self.ingest_workers), "--run-id", rid]
        cmd += ["--tier", tier] if tier else []
        cmd += ["--label", label] if label else []
        cmd += ["--metadata", str(csv)] if csv else []
        self.reports.mkdir(parents=True, exist_ok=True)
        output = self.reports / f"run-{rid}.log"
        with open(output, "ab") as sink:
            proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.DEVNULL, stdout=sink,
                                                        stderr=subprocess.STDOUT, env=self.ingest_env,
                                                        start_new_session=True)
        self.children[rid] = asyncio.get_running_loop().create_task(self.supervise(rid, proc, output))

    async def supervise(self, rid: str, proc: asyncio.subprocess.Process, output: Path) -> None:
        """When the child ends without saying how (a crash, a kill), its row says so with its last words."""
        code = await proc.wait()
        self.children.pop(rid, None)
        row = await self.run(runs.get, self.catalogue, rid)
        if row is not None and row.state in runs.LIVE:
            tail = await self.run(_tail, output)
            await self.run(lambda: runs.end(self.catalogue, rid, "failed",
                                            message=f"the run ended with exit status {code}: {tail}"))

    async def run_page(self, request: Request, session: StaffSession) -> Response:
        row = await self.run(runs.get, self.catalogue, request.path_params["rid"][:64])
        if row is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message="There is no such ingest run.", back="/staff/ingest")
        return self.render(request, session, "ingest_run.html", run=row, progress=await self.progress_of(row),
                           source=self.shown_source(row.source))

    def shown_source(self, source: str) -> str:
        """A source below the masters folder by its path there (what the picker showed), else as it is."""
        if self.masters_root is not None:
            base = Path(self.masters_root).resolve()
            if Path(source).is_relative_to(base):
                return Path(source).relative_to(base).as_posix()
        return source

    async def run_progress(self, request: Request, session: StaffSession) -> Response:
        row = await self.run(runs.get, self.catalogue, request.path_params["rid"][:64])
        if row is None:
            return JSONResponse({"error": "no such run"}, 404, headers=HEADERS)
        return JSONResponse(await self.progress_of(row), headers=HEADERS)

    async def progress_of(self, row: IngestRun) -> dict[str, Any]:
        """What the run page shows, computed from the row (after sweeping it, if it went silent)."""
        if row.state in runs.LIVE and not runs.fresh(row):
            await self.run(runs.sweep, self.catalogue)
            row = await self.run(runs.get, self.catalogue, row.id) or row
        current = now()
        since = _aware(row.converting_since)
        rate = left = None
        if since is not None and row.done:
            elapsed = max((_aware(row.ended) or current) - since, dt.timedelta(seconds=1)).total_seconds()
            rate = row.done / elapsed
            if row.total is not None and row.state in runs.LIVE:
                left = round((row.total - row.done) / rate)
        return {"id": row.id, "state": row.state, "collection": row.collection_id, "done": row.done,
                "failed": row.failed, "total": row.total,
                "left": (row.total - row.done) if row.total is not None else None,
                "rate": round(rate, 2) if rate else None, "seconds_left": left,
                "silent": row.state in runs.LIVE and not runs.fresh(row),
                "stop_requested": row.stop_requested is not None, "stop_by": row.stop_by,
                "report": row.report, "message": row.message}

    async def run_stop(self, request: Request, session: StaffSession, form: dict[str, str]) -> Response:
        rid = request.path_params["rid"][:64]
        row = await self.run(runs.ask_stop, self.catalogue, rid, session.holder)
        if row is None:
            return self.render(request, session, "message.html", 404, title="Not found",
                               message="There is no such ingest run.", back="/staff/ingest")
        self.audit(request, session, "ingest-stop", row.collection_id, run=rid)
        return RedirectResponse(f"/staff/ingest/runs/{rid}", 303, headers=HEADERS)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL))
            return fh.read().decode("utf-8", "replace").strip().splitlines()[-1][:500] if size else "no output"
    except (OSError, IndexError):
        return "no output"
