"""IIIF Content State API 1.0: a link that opens a viewer on a canvas of a manifest, at a region.

The content state is an Annotation (motivation `contentState`) whose target is the canvas, with the region
as its `#xywh=` fragment and the manifest as its `partOf`. In a URL (`iiif-content=`) it travels
content-state-encoded: the JSON percent-encoded as JavaScript's encodeURIComponent does, then base64url
without padding (so a client decodes it with atob and decodeURIComponent, as the specification shows).
`decode` reads that form, plain JSON, or a plain manifest URL, and gives what a viewer needs to open it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
MAX_LENGTH = 8192  # characters of an encoded content state this server reads
_XYWH = re.compile(r"^(?:pixel:)?(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$")
_URL = re.compile(r"^https?://[^\s\"'<>]+$")


@dataclass(frozen=True)
class Opened:
    """What a viewer opens: a manifest, perhaps at one of its canvases, perhaps zoomed to a region of it."""

    manifest: str
    canvas: str | None = None
    region: tuple[float, float, float, float] | None = None


def annotation(ident: str, manifest: str, canvas: str, box: tuple[int, int, int, int] | None = None,
               label: str | None = None) -> dict[str, Any]:
    """The content state of a canvas (at a region) of a manifest."""
    target = f"{canvas}#xywh={','.join(str(v) for v in box)}" if box else canvas
    state: dict[str, Any] = {"@context": CONTEXT, "id": ident, "type": "Annotation", "motivation": ["contentState"],
                             "target": {"id": target, "type": "Canvas",
                                        "partOf": [{"id": manifest, "type": "Manifest"}]}}
    if label:
        state["label"] = {"none": [label]}
    return state


def encode(state: dict[str, Any] | str) -> str:
    """Content-state-encoded: percent-encoded as encodeURIComponent does, base64url, no padding."""
    text = state if isinstance(state, str) else json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    uri = quote(text, safe="-_.!~*'()")
    return base64.urlsafe_b64encode(uri.encode("ascii")).decode("ascii").rstrip("=")


def _decoded(value: str) -> str:
    """The JSON (or URL) a content-state-encoded value holds; ValueError when it holds none."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return unquote(raw.decode("ascii"), errors="strict")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a content-state-encoded value") from exc


def decode(value: str) -> Opened:
    """What a content state opens; ValueError saying why when it opens nothing this server can show."""
    value = value.strip()
    if not value or len(value) > MAX_LENGTH:
        raise ValueError("an empty or overlong content state")
    text = value if value.startswith(("{", "[", "http://", "https://")) else _decoded(value)
    if _URL.match(text):
        return Opened(text)  # a plain URI: a manifest
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("the content state is not JSON") from exc
    if isinstance(state, list) and state:
        state = state[0]
    if not isinstance(state, dict):
        raise ValueError("the content state is not an annotation or a resource")
    target = state.get("target", state) if state.get("type") == "Annotation" else state
    if isinstance(target, list) and target:
        target = target[0]
    return _opened(target)


def _opened(target: Any) -> Opened:
    if isinstance(target, str):
        raise ValueError("a target without its manifest (partOf) cannot be opened")
    if not isinstance(target, dict):
        raise ValueError("the content state's target is not a resource")
    kind = target.get("type")
    if kind == "Manifest":
        return Opened(_url(target.get("id")))
    selector = None
    if kind == "SpecificResource":
        source, selector = target.get("source"), target.get("selector")
        if not isinstance(source, dict):
            raise ValueError("a SpecificResource without its source")
        target = source
        kind = source.get("type")
    if kind != "Canvas":
        raise ValueError(f"a content state of a {kind or 'resource without type'} is not opened here")
    ident = str(target.get("id") or "")
    canvas, _, fragment = ident.partition("#")
    manifest = next((p.get("id") for p in target.get("partOf") or [] if isinstance(p, dict)
                     and p.get("type") == "Manifest"), None)
    if manifest is None:
        raise ValueError("a canvas without its manifest (partOf) cannot be opened")
    if isinstance(selector, list):
        selector = selector[0] if selector else None
    if isinstance(selector, dict):
        if selector.get("type") == "FragmentSelector":
            fragment = str(selector.get("value") or "")
        elif selector.get("type") == "ImageApiSelector":
            fragment = f"xywh={selector.get('region', '')}"
    region = None
    if fragment:
        match = _XYWH.match(fragment.removeprefix("xywh="))
        if match is None:
            raise ValueError(f"the region {fragment[:40]!r} is not xywh=x,y,w,h")
        region = tuple(float(v) for v in match.groups())
        if region[2] <= 0 or region[3] <= 0:
            raise ValueError("an empty region")
    return Opened(_url(manifest), _url(canvas), region)  # type: ignore[arg-type]


def _url(value: Any) -> str:
    if not isinstance(value, str) or not _URL.match(value):
        raise ValueError("not an http(s) URL")
    return value
