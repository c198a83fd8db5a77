"""MkDocs hook: the command-line reference, made from the commands themselves (iiif_server.cli).

`docs/reference/cli.md` holds the marker below; this hook replaces it with every command's usage,
help and own options. The options every command takes from the settings are not repeated: the page
names them and links to the settings reference. The build fails when the package cannot be imported.
"""

from __future__ import annotations

import html
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- commands -->"
PAGE = "reference/cli.md"

_text: str | None = None


def import_from_checkout(config: Any, module: str) -> Any:
    """`module`, imported from the checkout beside mkdocs.yml (before any installed copy)."""
    root = str(Path(config["config_file_path"]).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise PluginError(f"cannot import {module} to build the reference pages: {exc!r}") from exc


def on_config(config: Any) -> Any:
    global _text
    cli = import_from_checkout(config, "iiif_server.cli")
    settings = import_from_checkout(config, "iiif_server.config")
    import click  # installed with the package

    root = click.Context(cli.main, info_name="iiif-server")
    _text = "\n".join(render(cli.main, root, set(settings.FIELDS), click))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} has no {MARKER} marker for the commands")
    assert _text is not None
    return markdown.replace(MARKER, _text)


def escape(text: str) -> str:
    """Help text as literal text in Markdown: `<page>` stays visible, `|` does not end a cell."""
    return html.escape(text, quote=False).replace("|", "&#124;").replace("*", "\\*")


def render(group: Any, parent: Any, setting_names: set[str], click: Any) -> list[str]:
    out: list[str] = []
    for name, cmd in group.commands.items():
        ctx = click.Context(cmd, info_name=name, parent=parent)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:  # the group does something of its own too
                out += describe(cmd, ctx, setting_names, click)
            out += render(cmd, ctx, setting_names, click)
            continue
        out += describe(cmd, ctx, setting_names, click)
    return out


def describe(cmd: Any, ctx: Any, setting_names: set[str], click: Any) -> list[str]:
    """One command's heading, usage, help, own options and the settings it takes."""
    out: list[str] = []
    path = ctx.command_path
    out.append(f"## {path}\n")
    out.append(f"```text\n{cmd.get_usage(ctx).strip()}\n```\n")
    if cmd.help:
        out.append(escape(inspect.cleandoc(cmd.help)) + "\n")
    own, takes = [], []
    for param in cmd.params:
        if not isinstance(param, click.Option):
            continue
        if param.name in setting_names or param.name == "config_file":
            takes.append(param.name)
            continue
        record = param.get_help_record(ctx)
        if record:
            own.append(f"| `{record[0]}` | {escape(record[1]).replace(chr(10), ' ')} |")
    if own:
        out.append("| option | what it does |\n|---|---|")
        out += own
        out.append("")
    if takes:
        if set(takes) - {"config_file"} == setting_names:
            out.append("It takes every setting as an option: see [Settings](settings.md).\n")
        else:
            links = ", ".join(f"[`--{n.replace('_', '-')}`](settings.md#{n})" for n in takes
                              if n != "config_file")
            out.append(f"Settings it takes: {links} and `--config` (see [Settings](settings.md)).\n")
    return out
