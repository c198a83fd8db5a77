"""The ASGI application: routes and middleware around the Image API service."""

from __future__ import annotations

import html
from itertools import islice
from pathlib import Path
from urllib.parse import quote

import pyvips
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import config, demo
from .tiles.service import ImageService
from .tiles.sources import FileSystemSource

HOME_LIMIT = 1000
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Link, ETag, Content-Type"),
]
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Accept, If-None-Match",
    "Access-Control-Max-Age": "86400",
}


class CORSMiddleware:
    """`Access-Control-Allow-Origin: *` on every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers=PREFLIGHT_HEADERS)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + CORS_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)


def image_root(settings: config.Settings) -> Path:
    """The configured image root, or the demo set while that holds no image."""
    root = settings.image_root
    if settings.demo and not (root.is_dir() and FileSystemSource(root).has_images()):
        return demo.ensure(settings.data_dir / "demo")
    return root


def create_app(settings: config.Settings | None = None) -> Starlette:
    settings = settings or config.load()
    source = FileSystemSource(image_root(settings))
    service = ImageService(settings, source)
    pyvips.cache_set_max(0)  # our own caches decide what stays; libvips' cache would pin files

    async def image_api_3(request: Request) -> Response:
        return await service.handle(request, 3)

    async def image_api_2(request: Request) -> Response:
        return await service.handle(request, 2)

    async def home(request: Request) -> Response:
        ids = await service.run(lambda: list(islice(source.identifiers(), HOME_LIMIT)))
        rows = "\n".join(
            f'<li>{html.escape(i)}: <a href="/iiif/3/{quote(i, safe="")}/info.json">3.0 info.json</a>'
            f' · <a href="/iiif/2/{quote(i, safe="")}/info.json">2.1 info.json</a>'
            f' · <a href="/iiif/3/{quote(i, safe="")}/full/!400,400/0/default.jpg">view</a></li>'
            for i in ids
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>IIIF server</title>"
            f"<h1>IIIF image server</h1><p>{len(ids)} images</p><ul>{rows}</ul>"
        )
        return HTMLResponse(page)

    async def healthz(request: Request) -> Response:
        ok = await service.run(source.readable)
        return PlainTextResponse("ok\n" if ok else "image root unreadable\n", status_code=200 if ok else 503)

    routes = [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/iiif/3/{rest:path}", image_api_3, methods=["GET", "HEAD"]),
        Route("/iiif/2/{rest:path}", image_api_2, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(CORSMiddleware)
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the environment."""
    return create_app(config.load())
