"""A neutral public image that stands for a restricted page's thumbnail (a padlock on grey).

Viewers show a canvas's thumbnail without credentials; a restricted page's own
thumbnail would be a broken image to them, before sign-in and after.
"""

from __future__ import annotations

from functools import lru_cache

import pyvips
from starlette.requests import Request
from starlette.responses import Response

PATH = "/iiif/placeholder.png"
SIZE = 256
MAX_SIDE = 1024  # the largest refused image drawn as a placeholder (a thumbnail or a viewer's overview)
BACKGROUND = 232  # light grey
INK = 150  # darker grey


@lru_cache(maxsize=1)
def png() -> bytes:
    """Drawn once per process."""
    image = pyvips.Image.black(SIZE, SIZE).new_from_image(BACKGROUND).cast("uchar")
    cx, cy = SIZE // 2, SIZE // 2
    image = image.draw_circle(INK, cx, cy - 12, 34, fill=True)  # the shackle ...
    image = image.draw_circle(BACKGROUND, cx, cy - 12, 22, fill=True)  # ... as a ring
    image = image.draw_rect(INK, cx - 48, cy - 6, 96, 72, fill=True)  # the body
    image = image.draw_circle(BACKGROUND, cx, cy + 22, 9, fill=True)  # the keyhole
    image = image.draw_rect(BACKGROUND, cx - 3, cy + 22, 6, 22, fill=True)
    data: bytes = image.pngsave_buffer(compression=9)
    return data


def sized(width: int, height: int) -> bytes:
    """The placeholder at width x height: grey, the padlock centred and scaled to fit (a thumbnail of a
    restricted page keeps the page's shape)."""
    side = max(1, min(width, height))
    lock = pyvips.Image.new_from_buffer(png(), "")
    if side != SIZE:
        lock = lock.resize(side / SIZE)
    canvas = pyvips.Image.black(width, height).new_from_image(BACKGROUND).cast("uchar")
    canvas = canvas.insert(lock, (width - lock.width) // 2, (height - lock.height) // 2)
    data: bytes = canvas.pngsave_buffer(compression=6)
    return data


def url(base: str) -> str:
    return base + PATH


def thumbnail(base: str) -> dict[str, object]:
    return {"id": url(base), "type": "Image", "format": "image/png", "width": SIZE, "height": SIZE}


async def serve(request: Request) -> Response:
    """The same for everybody: public and long-lived."""
    body = png()
    if request.method == "HEAD":
        return Response(b"", media_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400", "Content-Length": str(len(body))})
    return Response(body, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})

