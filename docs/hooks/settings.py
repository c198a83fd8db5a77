"""MkDocs hook: the settings reference, made from the one declaration of the settings.

`docs/reference/settings.md` holds the marker below; this hook replaces it with a table built from
`iiif_server.config.reference()`, so the page always lists what the code declares. The package is
imported from the checkout that holds mkdocs.yml. The build fails when it cannot be imported, or
when the page lost its marker.
"""

from __future__ import annotations

import html
import importlib
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- settings-table -->"
PAGE = "reference/settings.md"

_reference: list[dict[str, Any]] | None = None


def import_from_checkout(config: Any, module: str) -> Any:
    """`module`, imported from the checkout beside mkdocs.yml (before any installed copy)."""
    root = str(Path(config["config_file_path"]).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module)
    except Exception as exc:  # any failure to import is a failed build, never a page without the table
        raise PluginError(f"cannot import {module} to build the reference pages: {exc!r}") from exc


def on_config(config: Any) -> Any:
    global _reference
    _reference = import_from_checkout(config, "iiif_server.config").reference()
    if not _reference:
        raise PluginError("iiif_server.config.reference() returned no settings")
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} has no {MARKER} marker for the settings table")
    assert _reference is not None
    return markdown.replace(MARKER, table(_reference))


KINDS = {"int": "integer", "bool": "on/off", "str": "text", "str | None": "text"}


def kind(typ: str) -> str:
    if typ.startswith("tuple"):
        return "list"
    if "Path" in typ:
        return "path or s3:// URL" if "str" in typ else "path"
    return KINDS.get(typ, typ)


def default(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "–"
    return f"`{value}`"


def bounds(item: dict[str, Any]) -> str:
    low, high = item["minimum"], item["maximum"]
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return ""


# Options, variables, paths and URLs named in help texts are set as code.
CODE = re.compile(r"(--[a-z][a-z0-9-]*|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+(?:/[\w./-]+)?\b|\bs3://[\w/.-]+|https?://[\w./:-]+"
                  r"|\bpostgresql://[\w@/.:-]+|\b(?:X-Forwarded-(?:For|Proto|Host)|Cache-Control|Host)\b|/metrics\b)")


def cell(text: str) -> str:
    text = CODE.sub(lambda m: f"`{m.group(0)}`", html.escape(text, quote=False).replace("*", "\\*"))
    return text.replace("|", "&#124;").replace("\n", " ")


def table(reference: list[dict[str, Any]]) -> str:
    rows = ['<div class="settings-table" markdown>', "",
            "| option<br>TOML key | environment variable | default | what it does |",
            "|---|---|---|---|"]
    for item in reference:
        option = f'`{item["option"]}`'
        if item["type"] == "bool":
            option += f'<br>`--no-{item["option"][2:]}`'
        names = f'<span id="{item["name"]}"></span>{option}<br>`{item["toml"]}`'
        what = cell(item["help"])
        facts = ", ".join(x for x in (kind(item["type"]), bounds(item)) if x)
        what += f" *({facts})*"
        if item["secret"]:
            what += " **Secret: never logged or shown.**"
        rows.append(f"| {names} | `{item['env']}` | {default(item['default'])} | {what} |")
    return "\n".join(rows + ["", "</div>"]) + "\n"
