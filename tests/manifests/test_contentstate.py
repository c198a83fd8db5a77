"""IIIF Content State 1.0: encoded as the specification (and Universal Viewer) decode it, and read back."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import unquote

import pytest

from iiif_server.manifests import contentstate
from iiif_server.manifests.contentstate import Opened

MANIFEST = "https://archive.example/iiif/presentation/lists/list-20/manifest"
CANVAS = "https://archive.example/iiif/presentation/lists/list-20/canvas/p1"


def as_a_browser_decodes(value: str) -> str:
    """What UV's decodeContentState does: restore the padding, atob (bytes as Latin-1), decodeURIComponent."""
    padded = value + "=" * (-len(value) % 4)
    return unquote(base64.b64decode(padded.replace("-", "+").replace("_", "/")).decode("latin-1"))


def test_the_encoding_is_base64url_without_padding_of_the_uri_encoded_json() -> None:
    state = contentstate.annotation("https://archive.example/persons/1#line-7", MANIFEST, CANVAS,
                                    (200, 300, 420, 60), "Lévy, Abraham")
    value = contentstate.encode(state)
    assert "=" not in value and "+" not in value and "/" not in value
    assert json.loads(as_a_browser_decodes(value)) == state  # accents and all
    # the specification's own example: encodeURIComponent leaves ! ~ * ' ( ) alone
    assert as_a_browser_decodes(contentstate.encode("{\"a\":\"(é)!\"}")) == "{\"a\":\"(é)!\"}"
    assert base64.urlsafe_b64decode(contentstate.encode("{\"a\":\"(é)!\"}") + "==").decode() == \
        "%7B%22a%22%3A%22(%C3%A9)!%22%7D"


def test_a_line_opens_its_canvas_of_its_manifest_at_its_box() -> None:
    state = contentstate.annotation("x", MANIFEST, CANVAS, (200, 300, 420, 60))
    assert state["target"] == {"id": CANVAS + "#xywh=200,300,420,60", "type": "Canvas",
                               "partOf": [{"id": MANIFEST, "type": "Manifest"}]}
    assert state["motivation"] == ["contentState"] and state["type"] == "Annotation"
    opened = contentstate.decode(contentstate.encode(state))
    assert opened == Opened(MANIFEST, CANVAS, (200.0, 300.0, 420.0, 60.0))


@pytest.mark.parametrize(("value", "expected"), [
    (MANIFEST, Opened(MANIFEST)),
    (json.dumps({"id": CANVAS, "type": "Canvas", "partOf": [{"id": MANIFEST, "type": "Manifest"}]}),
     Opened(MANIFEST, CANVAS)),
    (json.dumps({"type": "Annotation", "motivation": ["contentState"], "target": {
        "type": "SpecificResource", "source": {"id": CANVAS, "type": "Canvas", "partOf": [
            {"id": MANIFEST, "type": "Manifest"}]},
        "selector": {"type": "FragmentSelector", "value": "xywh=1,2,3,4"}}}), Opened(MANIFEST, CANVAS, (1, 2, 3, 4))),
    (json.dumps({"type": "Annotation", "target": [{"id": MANIFEST, "type": "Manifest"}]}), Opened(MANIFEST)),
])
def test_the_forms_a_content_state_may_take_are_read(value: str, expected: Opened) -> None:
    assert contentstate.decode(value) == expected
    if not value.startswith("http"):
        assert contentstate.decode(contentstate.encode(value)) == expected


@pytest.mark.parametrize(("value", "why"), [
    ("", "empty"),
    ("!!!not-base64", "not a content-state-encoded"),
    (contentstate.encode("not json"), "not JSON"),
    (json.dumps({"id": CANVAS, "type": "Canvas"}), "without its manifest"),
    (json.dumps({"id": "javascript:alert(1)", "type": "Manifest"}), "not an http(s) URL"),
    (json.dumps({"id": CANVAS + "#xywh=a,b,c,d", "type": "Canvas", "partOf": [{"id": MANIFEST, "type": "Manifest"}]}),
     "is not xywh"),
    (json.dumps({"id": CANVAS + "#xywh=1,1,0,5", "type": "Canvas", "partOf": [{"id": MANIFEST, "type": "Manifest"}]}),
     "empty region"),
    (json.dumps({"id": "x", "type": "Range"}), "Range is not opened"),
    ("A" * 9000, "overlong"),
])
def test_a_content_state_that_opens_nothing_says_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        contentstate.decode(value)
