"""One family of errors (iiif_server/errors.py), answered in one place, and one parser of targets."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

from iiif_server import config
from iiif_server.errors import BadTarget, IIIFServerError, NotFound, RequestError, Target, TooLarge
from iiif_server.web.app import create_app


@pytest.mark.parametrize(("error", "status"), [
    (NotFound("no document 'x' in 'letters'"), 404), (BadTarget("'a/b/c/d' is not collection[/document[/page]]"), 400),
    (RequestError("a bad size"), 400), (TooLarge("too large to decode", status=501), 501),
    (IIIFServerError("the catalogue is unreachable", status=503), 503),
])
async def test_an_error_a_route_lets_through_is_its_status_and_a_short_reason(tmp_path: Path, error: IIIFServerError,
                                                                             status: int) -> None:
    app = create_app(config.Settings(data_dir=tmp_path, images=tmp_path / "images", demo=False))

    async def failing(request: Request) -> None:
        raise error

    app.router.routes.append(Route("/failing", failing))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        r = await c.get("/failing")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == error.message + "\n"
    app.state.runtime.shutdown()
    app.state.catalogue.engine.dispose()


def test_a_target_is_a_collection_a_document_or_a_page() -> None:
    assert Target.parse("letters").level == "collection"
    page = Target.parse(" /letters/d1/p2/ ")
    assert (page.collection, page.document, page.page, page.text) == ("letters", "d1", "p2", "letters/d1/p2")
    assert page.parent == Target.parse("letters/d1")
    for bad in ("", "/", "a//b", "a/b/c/d"):
        with pytest.raises(BadTarget):
            Target.parse(bad)
    assert isinstance(NotFound("x"), LookupError) and isinstance(BadTarget("x"), ValueError)
