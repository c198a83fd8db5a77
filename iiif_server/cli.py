"""Command line: `iiif-server serve` and friends."""

from __future__ import annotations

import os
from typing import Any

import click

from . import config


def _setting_options(fn: Any) -> Any:
    """One option per setting, documented from config.HELP with its variable."""
    specs = [
        ("--data-dir", "data_dir", click.Path(file_okay=False)),
        ("--images", "images", click.Path(file_okay=False)),
        ("--host", "host", str),
        ("--port", "port", int),
        ("--workers", "workers", click.IntRange(1, 64)),
        ("--base-url", "base_url", str),
        ("--trusted-proxies", "trusted_proxies", str),
        ("--max-width", "max_width", click.IntRange(1)),
        ("--max-height", "max_height", click.IntRange(1)),
        ("--max-area", "max_area", click.IntRange(1)),
        ("--threads", "threads", click.IntRange(0, 256)),
        ("--cache-mb", "cache_mb", click.IntRange(0)),
        ("--jpeg-quality", "jpeg_quality", click.IntRange(1, 100)),
        ("--demo/--no-demo", "demo", None),
    ]
    for flag, name, kind in reversed(specs):
        env = config.ENV_PREFIX + name.upper()
        help_text = f"{config.HELP[name]} [env {env}]"
        if kind is None:
            fn = click.option(flag, name, default=None, help=help_text)(fn)
        else:
            fn = click.option(flag, name, type=kind, default=None, help=help_text)(fn)
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, exists=True), default=None,
        help=f"TOML file with the same settings in lower case [env {config.ENV_PREFIX}CONFIG]",
    )(fn)


@click.group()
@click.version_option(package_name="iiif-server")
def main() -> None:
    """IIIF Image API 3.0/2.1 server for archives."""


@main.command()
@_setting_options
def serve(config_file: str | None, **cli: Any) -> None:
    """Serve the image root over the IIIF Image API."""
    import uvicorn

    from .app import image_root

    settings = config.load(cli, config_file)
    root = image_root(settings)  # generates the demo set once, before workers start
    click.echo(f"serving {root} on http://{settings.host}:{settings.port}/ with {settings.workers} worker(s)")
    os.environ.update(settings.to_env())
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


if __name__ == "__main__":
    main()
