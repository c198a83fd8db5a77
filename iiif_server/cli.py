"""Command line: `iiif-server serve | ingest | collections | set-tier`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import config

OPTION_TYPES: dict[str, Any] = {
    "data_dir": click.Path(file_okay=False),
    "images": str,  # a folder or an s3:// URL
    "host": str,
    "port": int,
    "workers": click.IntRange(1, 64),
    "base_url": str,
    "trusted_proxies": str,
    "max_width": click.IntRange(1),
    "max_height": click.IntRange(1),
    "max_area": click.IntRange(1),
    "threads": click.IntRange(0, 256),
    "cache_mb": click.IntRange(0),
    "jpeg_quality": click.IntRange(1, 100),
    "max_age": click.IntRange(0),
    "demo": None,  # a --demo/--no-demo flag
    "database": str,
    "language": str,
    "attribution": str,
    "provider": str,
    "provider_homepage": str,
    "homepage": str,
    "tiers": str,
    "networks": str,
    "path_tiers": str,
    "degraded": str,
    "hidden_tiers": str,
    "secret_key": str,
    "secret_key_file": click.Path(dir_okay=False),
    "auth_heading": str,
    "auth_note": str,
    "s3_endpoint": str,
    "s3_region": str,
    "s3_access_key_id": str,
    "s3_secret_access_key": str,
    "s3_ttl": click.IntRange(0),
    "s3_cache_mb": click.IntRange(1),
}
STORAGE = ("data_dir", "images", "database", "s3_endpoint", "s3_region", "s3_access_key_id",
           "s3_secret_access_key")


def settings_options(names: tuple[str, ...] | None = None) -> Callable[[Any], Any]:
    """One option per setting, documented from config.HELP with its variable."""

    def decorate(fn: Any) -> Any:
        for name in reversed(names or tuple(OPTION_TYPES)):
            kind = OPTION_TYPES[name]
            flag = "--" + name.replace("_", "-")
            help_text = f"{config.HELP[name]} [env {config.ENV_PREFIX}{name.upper()}]"
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
    from .manifests.catalogue import open_catalogue as open_it

    catalogue = open_it(settings.database_url, settings.tiers)
    catalogue.upgrade()
    return catalogue


@click.group()
@click.version_option(package_name="iiif-server")
def main() -> None:
    """IIIF Image and Presentation server for archives."""


@main.command()
@settings_options()
def serve(config_file: str | None, **cli: Any) -> None:
    """Serve the image root and the catalogue over IIIF."""
    import subprocess

    import uvicorn

    settings = config.load(cli, config_file)
    os.environ.update(settings.to_env())
    # Migrations and the demo collection run once, before the workers, in a child process: the
    # supervising process then stays small instead of keeping libvips and the demo build resident.
    done = subprocess.run([sys.executable, "-c", "from iiif_server.app import prepare_from_env; prepare_from_env()"],
                          env=os.environ.copy())
    if done.returncode != 0:
        raise click.ClickException("preparing the catalogue and image root failed (see above)")
    click.echo(f"serving {settings.image_location} on http://{settings.host}:{settings.port}/ "
               f"with {settings.workers} worker(s)")
    uvicorn.run(
        "iiif_server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        proxy_headers=False,  # forwarded headers are read only from trusted proxies, by the app
        access_log=False,
        log_level="info",
    )


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--collection", "collection_id", required=True, help="collection id (letters, digits, . _ -)")
@click.option("--label", default=None, help="collection label")
@click.option("--tier", default=None, help="collection tier: public, reading-room or staff")
@click.option("--metadata", "metadata_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CSV, one row per document: id,label,date,tier,summary,rights,<metadata...>")
@click.option("--processes", type=click.IntRange(1, 256), default=None, help="worker processes (default: cores)")
@settings_options(STORAGE)
def ingest(src: Path, collection_id: str, label: str | None, tier: str | None, metadata_csv: Path | None,
           processes: int | None, config_file: str | None, **cli: Any) -> None:
    """Turn a folder of masters into access copies and catalogue entries."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .ingest import CsvError, Ingest

    settings = config.load(cli, config_file)
    console = Console(stderr=True)
    try:
        job = Ingest(open_catalogue(settings), settings.image_root, collection_id, label=label, tier=tier,
                     workers=processes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} images/s"), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("ingest", total=None, rate="-")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed:.1f}" if speed else "-")

        try:
            report = job.run(src, metadata_csv, progress)
        except CsvError as exc:
            for line in exc.errors:
                console.print(f"[red]metadata error[/red] {line}")
            console.print("nothing was ingested: fix the CSV and run again")
            sys.exit(2)
    for path, reason in report.failed:
        console.print(f"[red]failed[/red] {path}: {reason}")
    console.print(f"{report.converted} converted, {report.unchanged} unchanged, {len(report.failed)} failed")
    sys.exit(1 if report.failed else 0)


@main.command()
@settings_options(STORAGE)
def collections(config_file: str | None, **cli: Any) -> None:
    """List the collections in the catalogue."""
    from rich.console import Console
    from rich.table import Table

    catalogue = open_catalogue(config.load(cli, config_file))
    counts = catalogue.counts()
    table = Table("id", "label", "tier", "documents", "images")
    for coll in catalogue.collections():
        docs, imgs = counts.get(coll.id, (0, 0))
        table.add_row(coll.id, coll.label, coll.tier, str(docs), str(imgs))
    Console().print(table)


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
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    click.echo(f"{target}: {tier}")


@main.command()
@click.argument("target")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@settings_options(STORAGE)
def remove(target: str, yes: bool, config_file: str | None, **cli: Any) -> None:
    """Withdraw COLLECTION, COLLECTION/DOCUMENT or COLLECTION/DOCUMENT/PAGE: its catalogue rows and
    access copies go (masters are never touched), harvesters get Delete activities, and every replica
    stops serving it on its next request. Safe while serving."""
    from .withdraw import withdraw

    settings = config.load(cli, config_file)
    if not yes:
        click.confirm(f"withdraw {target} and delete its access copies?", abort=True)
    try:
        done = withdraw(open_catalogue(settings), settings.image_root, target)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    click.echo(f"withdrawn {done.target}: {done.documents} document(s), {done.pages} page(s)")


def token_store(settings: config.Settings) -> Any:
    from .auth.tokens import TokenStore, load_secret

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
