"""Viewer pages that open an IIIF Content State: a canvas of a manifest, zoomed to a region.

    GET /view?iiif-content=STATE    Mirador, its window set from the content state (manifest, canvas, the region
                                    as its viewport) with the canvas's annotations drawn and listed
    GET /uv#?iiif-content=STATE     Universal Viewer, which reads the content state itself; the page hands it the
                                    names on that canvas, which UV 4 does not read from a manifest

The content state is decoded here for Mirador (`manifests.contentstate`): a value that opens nothing is a 400
saying why. Both pages load their viewer from the configured URL; no viewer code is part of this server.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iiif_server.manifests import contentstate
from iiif_server.web.home import ENV, HEADERS, viewer_headers

TEMPLATES = Path(__file__).parent / "templates"
OPEN_SCRIPT = (TEMPLATES / "open.js").read_bytes()
UV_SCRIPT = (TEMPLATES / "uv.js").read_bytes()
SCRIPT_HEADERS = {"Cache-Control": "public, max-age=3600"}


class ViewerPages:
    def __init__(self, viewer_url: str, uv_url: str) -> None:
        self.viewer_url = viewer_url
        self.uv_url = uv_url.rstrip("/")

    def routes(self) -> list[Route]:
        return [
            Route("/view", self.mirador, methods=["GET", "HEAD"]),
            Route("/open.js", lambda r: Response(OPEN_SCRIPT, media_type="text/javascript", headers=SCRIPT_HEADERS),
                  methods=["GET", "HEAD"]),
            Route("/uv", self.uv, methods=["GET", "HEAD"]),
            Route("/uv.js", lambda r: Response(UV_SCRIPT, media_type="text/javascript", headers=SCRIPT_HEADERS),
                  methods=["GET", "HEAD"]),
        ]

    async def mirador(self, request: Request) -> Response:
        value = request.query_params.get("iiif-content", "")
        if not value:
            return PlainTextResponse("give a content state: /view?iiif-content=...\n", status_code=400, headers=HEADERS)
        try:
            opened = contentstate.decode(value)
        except ValueError as exc:
            return PlainTextResponse(f"not a content state this viewer can open: {exc}\n", status_code=400,
                                     headers=HEADERS)
        region = ",".join(f"{v:g}" for v in opened.region) if opened.region else ""
        body = ENV.get_template("open.html").render(opened=opened, region=region, viewer_url=self.viewer_url)
        return Response(body, media_type="text/html; charset=utf-8", headers=viewer_headers(self.viewer_url))

    async def uv(self, request: Request) -> Response:
        body = ENV.get_template("uv.html").render(uv_url=self.uv_url)
        return Response(body, media_type="text/html; charset=utf-8", headers=viewer_headers(self.uv_url + "/"))
