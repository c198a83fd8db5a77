"""Cursors (`after`, `text_after`) are values this server gave or a 400 with a short message: never a 500, on
every endpoint that takes one, on SQLite and PostgreSQL (issue 17, finding 11)."""

from __future__ import annotations

import pytest

BAD = [str(2**63), str(2**31), "9" * 40, "-1", "abc", "1.2.3", "1:2", "0:x:1:2", "\x00", "1" * 5000, " 1", "1e3",
       "٣",  # an Arabic-Indic digit: isdigit() is true for it
       "0:1:\x00", "0:1:" + "é" * 300, "0:" + str(2**63) + ":transports"]

ENDPOINTS = [
    ("/iiif/search/2/transports/list/search", {"q": "levy"}, "after"),
    ("/iiif/search/1/transports/list/search", {"q": "levy"}, "after"),
    ("/iiif/search/collections", {"q": "levy"}, "after"),
    ("/iiif/search/collections/transports", {"q": "levy"}, "after"),
    ("/iiif/search", {"q": "levy", "format": "json"}, "after"),
    ("/iiif/search", {"q": "levy"}, "after"),
    ("/iiif/search", {"q": "levy"}, "text_after"),
]


@pytest.mark.parametrize("path, params, name", ENDPOINTS, ids=[f"{p}?{n}" for p, _, n in ENDPOINTS])
async def test_a_cursor_this_server_did_not_give_is_a_400(setup, path: str, params: dict[str, str],  # type: ignore[no-untyped-def]
                                                           name: str) -> None:
    client, _, _ = setup
    assert (await client.get(path, params=params)).status_code == 200
    for value in BAD:
        r = await client.get(path, params={**params, name: value})
        assert r.status_code == 400, (value[:20], r.status_code, r.text[:200])
        assert "Traceback" not in r.text and len(r.text) < 2000


async def test_the_home_page_cursor_takes_any_text(setup) -> None:  # type: ignore[no-untyped-def]
    """The home page's `after` is a collection's id: any text is a place in that order, NUL included (PostgreSQL
    refuses NUL in a string)."""
    client, _, _ = setup
    for value in ("\x00", "zzz", "transports", "é" * 300, str(2**63)):
        r = await client.get("/", params={"after": value})
        assert r.status_code == 200, (value[:10], r.status_code)


@pytest.mark.parametrize("path, params, name", ENDPOINTS[:5], ids=[p for p, _, _ in ENDPOINTS[:5]])
async def test_words_with_control_characters_are_no_500(setup, path: str, params: dict[str, str],  # type: ignore[no-untyped-def]
                                                        name: str) -> None:
    client, _, _ = setup
    for q in ("\x00", "levy\x00", "\x00" * 300, "lé\u200bvy", "\ud7ff"):
        r = await client.get(path, params={**params, "q": q})
        assert r.status_code in (200, 400), (q[:10], r.status_code)
