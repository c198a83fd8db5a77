"""Command line: `iiif-server serve | ingest | text | persons | collections | set-tier | remove | token`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from iiif_server import config
from iiif_server.errors import BadTarget, Busy, NotFound
from iiif_server.ingest.report import render_report, write_report

STORAGE = ("data_dir", "images", "database", "s3_endpoint", "s3_region", "s3_access_key_id",
           "s3_secret_access_key")


def option_type(name: str) -> Any:
    """The click type of a setting's option, from its declaration (config.Settings); None for a flag pair."""
    f = config.FIELDS[name]
    kind, meta = str(f.type), f.metadata
    if kind == "bool":
        return None
    if kind == "int":
        if meta.get("minimum") is None and meta.get("maximum") is None:
            return int
        return click.IntRange(meta.get("minimum"), meta.get("maximum"))
    if meta.get("path") == "folder":
        return click.Path(file_okay=False)
    if meta.get("path") == "file":
        return click.Path(dir_okay=False)
    return str


def settings_options(names: tuple[str, ...] | None = None) -> Callable[[Any], Any]:
    """One option per setting, made from its declaration (config.Settings), documented with its variable."""

    def decorate(fn: Any) -> Any:
        for name in reversed(names or tuple(config.FIELDS)):
            kind = option_type(name)
            flag = config.option_name(name)
            help_text = f"{config.FIELDS[name].metadata['help']} [env {config.env_name(name)}]"
            if kind is None:
                fn = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)(fn)
            else:
                fn = click.option(flag, name, type=kind, default=None, help=help_text)(fn)
        return click.option(
            "--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
            help=f"TOML file with the same settings in lower case [env {config.ENV_PREFIX}CONFIG]",
        )(fn)

    return decorate


def open_catalogue(settings: config.Settings) -> Any:
    """The catalogue, migrated; imports only what the catalogue needs (commands start fast)."""
    from sqlalchemy.exc import DatabaseError

    from iiif_server.db.catalogue import open_catalogue as open_it

    catalogue = open_it(settings.database_url, settings.tiers)
    try:
        catalogue.upgrade()
    except DatabaseError as exc:
        raise click.ClickException(catalogue_problem(settings, exc)) from None
    return catalogue


def catalogue_problem(settings: config.Settings, exc: BaseException) -> str:
    """One line naming the catalogue and what to do, instead of a driver's traceback."""
    url = settings.database_url
    where = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.split("@")[-1]
    cause = str(getattr(exc, "orig", exc)).splitlines()[0] if str(getattr(exc, "orig", exc)) else type(exc).__name__
    return (f"the catalogue {where} cannot be read ({cause}): restore it from a backup, "
            "or point --database at a good one")


def prepare_checked() -> None:
    """`serve`'s preparation (migrations, demo) in a child process; a bad catalogue is one line."""
    from sqlalchemy.exc import DatabaseError

    from iiif_server.web.app import prepare

    settings = config.load({}, None)
    try:
        prepare(settings)
    except DatabaseError as exc:
        click.echo(f"Error: {catalogue_problem(settings, exc)}", err=True)
        sys.exit(1)


@click.group()
@click.version_option(package_name="iiif-server")
def main() -> None:
    """IIIF Image and Presentation server for archives."""


@main.command()
@click.option("--create-images", is_flag=True, help="create the --images folder when it does not exist")
@settings_options()
def serve(create_images: bool, config_file: str | None, **cli: Any) -> None:
    """Serve the image root and the catalogue over IIIF."""
    import subprocess

    import uvicorn

    try:
        settings = config.load(cli, config_file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if settings.images is not None and not settings.images.is_dir():
        if not create_images:  # an unmounted share must not look like an empty, healthy archive
            raise click.ClickException(f"the image folder {settings.images} does not exist: mount it, "
                                       "or pass --create-images to start with an empty one")
        settings.images.mkdir(parents=True)
    os.environ.update(settings.to_env())
    # Migrations and the demo collection run once, before the workers, in a child process: the
    # supervising process then stays small instead of keeping libvips and the demo build resident.
    done = subprocess.run([sys.executable, "-c", "from iiif_server.cli import prepare_checked; prepare_checked()"],
                          env=os.environ.copy())
    if done.returncode != 0:
        sys.exit(1)  # the child said why
    click.echo(f"serving {settings.image_location} on http://{settings.host}:{settings.port}/ "
               f"with {settings.workers} worker(s)")
    from iiif_server.runtime.metrics import multiprocess_dir

    try:
        import httptools  # noqa: F401 - uvicorn[standard]'s fast parser, bounded by our subclass
        http = "iiif_server.web.limits:LimitedHttpToolsProtocol"
    except ImportError:
        http = "h11"
    # the workers' metric files go to a fresh folder, set before any worker imports prometheus_client
    with multiprocess_dir():
        uvicorn.run(
            "iiif_server.web.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            http=http,
            h11_max_incomplete_event_size=settings.max_head_bytes,  # the same head bound where h11 parses
            timeout_keep_alive=settings.keep_alive_timeout,
            proxy_headers=False,  # forwarded headers are read only from trusted proxies, by the app
            server_header=False,
            access_log=False,  # the app writes its own, structured (--access-log)
            log_level="info",
        )


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--collection", "collection_id", required=True, help="collection id (letters, digits, . _ -)")
@click.option("--label", default=None, help="collection label")
@click.option("--tier", default=None, help="collection tier: public, reading-room or staff")
@click.option("--metadata", "metadata_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CSV, one row per document: id,label,date,tier,summary,rights,<metadata...>")
@click.option("--workers", "--processes", "processes", type=click.IntRange(1, 256), default=None,
              help="worker processes converting masters, as serve's --workers (default: cores; --processes: the old "
                   "name)")
@click.option("--quality", type=click.IntRange(1, 100), default=None,
              help="JPEG quality of the access copies [default: 88, or 90 with --no-subsample; docs/guide/ingest.md]")
@click.option("--subsample/--no-subsample", default=True,
              help="4:2:0 chroma (default; quality below 90) or none (RGB JPEG, quality 90+, about 3x the bytes)")
@click.option("--metrics-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write progress as Prometheus metrics to this file (node_exporter's textfile collector)")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder for the full report (.txt and .json) [default: DATA_DIR/reports]")
@click.option("--withdraw-missing", is_flag=True,
              help="withdraw the pages whose masters are gone from their document's folder (default: keep them, "
                   "after the others, and report them)")
@click.option("--new-source", is_flag=True,
              help="a document ingested before from another folder takes this one as its source (default: refuse "
                   "it, so that two folders' pages never mix)")
@click.option("--join", is_flag=True,
              help="when another process (on this host or another) is ingesting this collection from the same "
                   "folder, help it: the processes share its documents (PostgreSQL; docs/guide/ingest.md)")
@click.option("--run-id", default=None, hidden=True, help="the row of a run the staff console started")
@settings_options(STORAGE)
def ingest(src: Path, collection_id: str, label: str | None, tier: str | None, metadata_csv: Path | None,
           processes: int | None, quality: int | None, subsample: bool, metrics_file: Path | None,
           report_dir: Path | None, withdraw_missing: bool, new_source: bool, join: bool, run_id: str | None,
           config_file: str | None, **cli: Any) -> None:
    """Turn a folder of masters into access copies and catalogue entries.

    Every file under SRC becomes a page or is reported with its reason. Ctrl-C or TERM stops
    scheduling, waits for the pages in flight, commits the documents that are complete and exits
    with 128 + the signal number; exit 1 when any master failed, 2 on a malformed CSV, 3 when the run
    stopped because every master would fail (no space left, the catalogue cannot be written). The staff
    console shows the run while it goes, and can stop it the same way. With --join, the same command
    started on several hosts shares one run of the collection: the first leads, the others help."""
    from iiif_server.ingest.tracking import RunTracker

    try:
        job, settings = ingest_job(src, collection_id, label, tier, processes, quality, subsample, withdraw_missing,
                                   new_source, config_file, cli)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if run_id is not None:
        tracker = RunTracker(job.catalogue, run_id, watch_parent=True)
    else:
        import getpass
        import socket

        from iiif_server.names import shown

        tracker = RunTracker.new(job.catalogue, collection_id, shown(src.resolve()),
                                 f"command line ({getpass.getuser()}@{socket.gethostname()})", tier,
                                 str(metadata_csv) if metadata_csv else None)
    job.run_id = tracker.id  # on PostgreSQL, processes started with --join may help this run
    tracker.start(job.stop)
    try:
        run_ingest(job, settings, src, collection_id, metadata_csv, metrics_file, report_dir, tracker, join)
    except BaseException as exc:
        if not tracker.ended.is_set():  # an exit said how it ended; anything else is a failure
            tracker.end("failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise


def ingest_job(src: Path, collection_id: str, label: str | None, tier: str | None, processes: int | None,
               quality: int | None, subsample: bool, withdraw_missing: bool, new_source: bool,
               config_file: str | None, cli: dict[str, Any]) -> tuple[Any, config.Settings]:
    from iiif_server.ingest.convert import ACCESS_QUALITY
    from iiif_server.ingest.run import Ingest

    settings = config.load(cli, config_file)
    target = None
    if settings.image_url:  # copies bound for object storage: staged in the data folder, then uploaded
        from iiif_server.storage import ObjectTarget

        target = ObjectTarget(settings.image_url, settings, settings.data_dir / "staging")
    root = target.staging if target is not None else settings.image_root
    job = Ingest(open_catalogue(settings), root, collection_id, label=label, tier=tier, workers=processes,
                 quality=quality or (ACCESS_QUALITY if subsample else 90), subsample=subsample, target=target,
                 thumbnail_quality=settings.jpeg_quality, withdraw_missing=withdraw_missing, new_source=new_source)
    return job, settings


def run_ingest(job: Any, settings: config.Settings, src: Path, collection_id: str, metadata_csv: Path | None,
               metrics_file: Path | None, report_dir: Path | None, tracker: Any, join: bool = False) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from iiif_server.ingest.metadata import CsvError

    console = Console(stderr=True, soft_wrap=True)  # a path is never split over two lines in a log
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} images/s"), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("ingest", total=None, rate="-")

        metrics = None
        if metrics_file is not None:
            from iiif_server.runtime.metrics import IngestProgress

            metrics = IngestProgress(metrics_file, collection_id)

        def progress(done: int, total: int, failed: int) -> None:
            tracker.progress(done, total, failed)
            if metrics is not None:
                metrics.update(done, total)
            bar.update(task, completed=done, total=total or None)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed:.1f}" if speed else "-")

        try:
            report = job.run(src, metadata_csv, progress, locked=lambda: tracker.locked(collection_id), join=join,
                             joined=tracker.helping)
        except CsvError as exc:
            for line in exc.errors:
                console.print(f"[red]metadata error[/red] {line}")
            console.print("nothing was ingested: fix the CSV and run again")
            tracker.end("failed", message="the metadata CSV: " + "; ".join(exc.errors[:5])[:1000])
            sys.exit(2)
        except Busy as exc:
            bar.update(task, visible=False)  # refused before it began: the one line says so, no empty bar
            tracker.end("refused", message=exc.message)
            hint = "" if join or job.catalogue.engine.dialect.name != "postgresql" else " (or add --join to help it)"
            raise click.ClickException(exc.message + hint) from None
    if metrics is not None:
        metrics.end(report.converted + report.unchanged + len(report.failed), len(report.failed))
    text, data = render_report(report, src, collection_id)
    for line in text.splitlines()[1:]:
        if line.startswith(("failed", "not done", "warning", "stopped", "missing")):
            click.echo(line, err=True)
    written = write_report(report_dir or settings.data_dir / "reports", collection_id, text, data)
    tracker.end("failed" if report.fatal else "stopped" if report.stopped else "finished",
                report=written.with_suffix(".json").name, message=report.fatal)
    others = f" ({report.by_others} by the processes that joined)" if report.by_others else ""
    stopped = f", {len(report.not_done)} not done (stopped)" if report.stopped else ""
    click.echo(f"{report.converted} converted{others}, {report.unchanged} unchanged, {len(report.failed)} failed, "
               f"{len(report.skipped)} skipped{stopped}; full report: {written}", err=True)
    if report.fatal:  # every master would have failed so (no space, the catalogue unwritable)
        sys.exit(3)
    if report.stopped:
        sys.exit(128 + report.stopped)
    sys.exit(1 if report.failed or any(what == "kept" for *_, what in report.missing) else 0)


@main.group()
def text() -> None:
    """Page text for IIIF Content Search."""


@text.command("import")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option("--collection", "collection_id", required=True, help="collection the pages belong to")
@settings_options(STORAGE)
def text_import(src: Path, collection_id: str, config_file: str | None, **cli: Any) -> None:
    """Load ALTO XML (SRC/<document>/<page>.xml) and CSV index entries (document,page,text[,x,y,w,h][,kind]).

    Each page's text from a source replaces what an earlier run loaded: re-runs are harmless.
    Every bad file or row is reported with its place; exit 1 when there was any."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from iiif_server.search.importer import import_text
    from iiif_server.search.store import TextStore

    settings = config.load(cli, config_file)
    console = Console(stderr=True, soft_wrap=True)
    store = TextStore(open_catalogue(settings))
    with Progress(TextColumn("text"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("text", total=None)
        report = import_text(store, src, collection_id,
                             lambda done, total: bar.update(task, completed=done, total=total))
    for line in report.errors:
        console.print(f"[red]error[/red] {line}", highlight=False)
    click.echo(f"{report.pages} pages, {report.entries} entries imported, {len(report.errors)} errors", err=True)
    sys.exit(1 if report.errors else 0)


@main.group()
def persons() -> None:
    """The people of the archive: their list, and links to their portraits and lines on the lists."""


@persons.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--remove-missing", is_flag=True,
              help="remove the people of the catalogue this file does not name (default: keep them, and say so)")
@settings_options(STORAGE)
def persons_import(csv_file: Path, remove_missing: bool, config_file: str | None, **cli: Any) -> None:
    """Load the list of deportees: id, surname, given names, birth date, birth place, nationality, transport,
    number, and optionally portrait, list page and line box (docs/guide/persons.md).

    Every row becomes a person or is reported with its line number and reason; a re-run replaces what the
    file gave before (its people and their links from the file). Exit 1 when any row or link was bad."""
    from iiif_server.ingest.persons import import_persons

    catalogue = open_catalogue(config.load(cli, config_file))
    report = import_persons(catalogue, csv_file, remove_missing)
    for line in report.errors:
        click.echo(f"{csv_file.name}:{line}", err=True)
    done = report.imported
    if done is not None:
        for line in done.warnings:
            click.echo(f"{csv_file.name}:{line}", err=True)
        if done.missing and not done.removed:
            shown = ", ".join(done.missing[:10]) + (" ..." if len(done.missing) > 10 else "")
            click.echo(f"{len(done.missing)} people of the catalogue are not in this file and were kept "
                       f"({shown}); --remove-missing removes them", err=True)
        click.echo(f"{report.rows} rows: {done.new} new, {done.updated} updated, {done.unchanged} unchanged, "
                   f"{len(report.errors)} refused; {done.links} links from the file"
                   + (f"; {done.removed} removed" if done.removed else ""), err=True)
    else:
        click.echo(f"{report.rows} rows: nothing imported, {len(report.errors)} refused", err=True)
    sys.exit(1 if report.errors or (done is not None and done.warnings) else 0)


@persons.command("suggest")
@click.option("--portraits", "portraits", multiple=True, metavar="COLLECTION",
              help="a collection of portraits: their labels and metadata name people (repeatable)")
@click.option("--lists", "lists", multiple=True, metavar="COLLECTION",
              help="a collection of transport lists with name entries (text import with boxes; repeatable)")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="processes that score the texts (each holds its own bounded memory of names)")
@settings_options(STORAGE)
def persons_suggest(portraits: tuple[str, ...], lists: tuple[str, ...], workers: int, config_file: str | None,
                    **cli: Any) -> None:
    """Propose links between people and the portraits and list lines that name them, scored on surname,
    given names and birth date, for staff to review in the console (/staff/persons/suggestions).

    Links already known (suggested, confirmed or rejected) are not proposed again."""
    import time

    from iiif_server.search.suggest import THRESHOLD, Suggester

    if not portraits and not lists:
        raise click.UsageError("name the collections to read: --portraits and/or --lists")
    catalogue = open_catalogue(config.load(cli, config_file))
    known = {c.id for c in catalogue.collections()}
    unknown = [c for c in (*portraits, *lists) if c not in known]
    if unknown:
        raise click.UsageError(f"no collection {', '.join(map(repr, unknown))} in the catalogue")
    started = time.monotonic()
    report = Suggester(catalogue, workers=workers).run(list(portraits), list(lists))
    click.echo(f"{report.examined} texts examined, {report.suggested} new suggestions ({report.above} scored "
               f"{THRESHOLD} or more), {report.skipped_known} lines already confirmed; "
               f"{time.monotonic() - started:.1f} s", err=True)


@main.group(invoke_without_command=True)
@settings_options(STORAGE)
@click.pass_context
def collections(ctx: click.Context, config_file: str | None, **cli: Any) -> None:
    """List the collections in the catalogue (`collections describe FILE.csv` describes them)."""
    ctx.obj = (config_file, cli)  # what a subcommand takes from options given before its name
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    catalogue = open_catalogue(config.load(cli, config_file))
    counts = catalogue.counts()
    table = Table("id", "label", "tier", "documents", "images")
    for coll in catalogue.collections():
        docs, imgs = counts.get(coll.id, (0, 0))
        table.add_row(coll.id, coll.label, coll.tier, str(docs), str(imgs))
    Console().print(table)


@collections.command("describe")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@settings_options(STORAGE)
@click.pass_context
def collections_describe(ctx: click.Context, csv_file: Path, config_file: str | None, **cli: Any) -> None:
    """Describe collections for everyone from a CSV, one row per collection: id, label, summary, description,
    dates, provenance, rights, required statement, record, and any other column as a metadata pair.

    A column the file has sets its field (an empty cell clears it); one it lacks is left as it is. Applying
    a file again changes nothing. Every row is reported as described, unchanged or refused with its line;
    a file with any refused row applies nothing (exit 2)."""
    from iiif_server.ingest.describe import read_descriptions

    first_config, first = ctx.obj or (None, {})
    settings = config.load({**first, **{k: v for k, v in cli.items() if v is not None}}, config_file or first_config)
    catalogue = open_catalogue(settings)
    rows, errors = read_descriptions(csv_file, [c.id for c in catalogue.collections()])
    for line in errors:
        click.echo(f"error {line}", err=True)
    if errors:
        click.echo(f"nothing was described: {len(errors)} row(s) refused, {len(rows)} good; fix the file and run "
                   "it again", err=True)
        sys.exit(2)
    try:
        done = catalogue.describe([row.description for row in rows])
    except NotFound as exc:  # removed while the file was read
        raise click.ClickException(exc.message) from None
    for row, result in zip(rows, done, strict=True):
        what = ("described: " + ", ".join(name.replace("_pairs", "").replace("_", " ") for name in result.changed)
                if result.changed else "unchanged")
        click.echo(f"{csv_file}:{row.line}: {result.collection} {what}")
    changed = sum(1 for r in done if r.changed)
    click.echo(f"{changed} described, {len(done) - changed} unchanged, 0 refused", err=True)


@main.command("set-tier")
@click.argument("target")
@click.argument("tier")
@settings_options(STORAGE)
def set_tier(target: str, tier: str, config_file: str | None, **cli: Any) -> None:
    """Set the tier of COLLECTION, COLLECTION/DOCUMENT or COLLECTION/DOCUMENT/PAGE."""
    catalogue = open_catalogue(config.load(cli, config_file))
    try:
        catalogue.set_tier(target, tier)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except (NotFound, BadTarget) as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{target}: {tier}")


@main.command()
@click.argument("target")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@settings_options(STORAGE)
def remove(target: str, yes: bool, config_file: str | None, **cli: Any) -> None:
    """Withdraw COLLECTION, COLLECTION/DOCUMENT or COLLECTION/DOCUMENT/PAGE: its catalogue rows and
    access copies go (masters are never touched), harvesters get Delete activities, and every replica
    stops serving it on its next request. Safe while serving."""
    from iiif_server.ingest.withdraw import ObjectCopies, withdraw

    settings = config.load(cli, config_file)
    if not yes:
        click.confirm(f"withdraw {target} and delete its access copies?", abort=True)
    if settings.image_url is not None:
        from iiif_server.storage import open_store

        copies: Any = ObjectCopies(open_store(settings.image_url, settings))
    else:
        copies = settings.image_root
    try:
        done = withdraw(open_catalogue(settings), copies, target)
    except (NotFound, BadTarget) as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"withdrawn {done.target}: {done.documents} document(s), {done.pages} page(s)")


def token_store(settings: config.Settings) -> Any:
    from iiif_server.auth.tokens import TokenStore
    from iiif_server.runtime.base import load_secret

    secret = load_secret(settings.secret_key, settings.secret_key_file, settings.data_dir)
    return TokenStore(open_catalogue(settings), secret)


@main.group()
def token() -> None:
    """Issue, list and revoke access tokens."""


@token.command("issue")
@click.option("--tier", required=True, help="tier the token clears, e.g. reading-room or staff")
@click.option("--holder", required=True, help="who holds it, e.g. 'Partner archive X'")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True)
@click.option("--collection", "collections", multiple=True, help="limit to this collection (repeatable)")
@settings_options(STORAGE + ("tiers", "secret_key", "secret_key_file"))
def token_issue(tier: str, holder: str, days: float, collections: tuple[str, ...], config_file: str | None,
                **cli: Any) -> None:
    """Print a new signed token (and its id, for revocation)."""
    settings = config.load(cli, config_file)
    if tier not in settings.tiers:
        raise click.UsageError(f"unknown tier {tier!r}; use one of {', '.join(settings.tiers)}")
    signed, row = token_store(settings).issue(tier, holder, days, collections)
    click.echo(f"id {row.id}, {tier}, expires {row.expires:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(signed)


@token.command("list")
@settings_options(STORAGE + ("secret_key", "secret_key_file"))
def token_list(config_file: str | None, **cli: Any) -> None:
    """List the tokens issued, with their state."""
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    table = Table("id", "holder", "tier", "collections", "expires", "state")
    now = dt.datetime.now(dt.UTC)
    for row in token_store(config.load(cli, config_file)).list():
        expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=dt.UTC)
        state = "revoked" if row.revoked else ("expired" if expires <= now else "valid")
        table.add_row(row.id, row.holder, row.tier, ", ".join(row.collections) or "all",
                      f"{expires:%Y-%m-%d %H:%M}", state)
    Console().print(table)


@token.command("revoke")
@click.argument("token_id")
@settings_options(STORAGE + ("secret_key", "secret_key_file"))
def token_revoke(token_id: str, config_file: str | None, **cli: Any) -> None:
    """Revoke a token by id; every replica refuses it from the next request on."""
    if not token_store(config.load(cli, config_file)).revoke(token_id):
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"revoked {token_id}")


if __name__ == "__main__":
    main()
