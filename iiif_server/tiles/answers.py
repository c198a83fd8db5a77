"""What the Image API answers with besides pixels: the cached response with its header values, ETags and
Link headers, refusals and errors, and the parsing of the request path's segments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from iiif_server.errors import IIIFServerError, RequestError
from iiif_server.tiles.info import PROFILE_URI
from iiif_server.tiles.request import Plan

if TYPE_CHECKING:
    pass


RESTRICTED_HEADERS = {"Cache-Control": "private, max-age=0", "Vary": "Accept, Authorization, Cookie"}


REFUSED_HEADERS = {"Cache-Control": "private, no-store", "Vary": "Accept, Authorization, Cookie"}


LD_JSON = 'application/ld+json;profile="{}"'


MAX_ERROR_TEXT = 200


class AccessRefused(RequestError):
    """401/403 for restricted material: the answer depends on the credentials, so never stored."""


def error_response(exc: IIIFServerError, private_404: bool = False) -> Response:
    """A short plain-text reason; messages may quote (long, hostile) request text.

    `private_404`: "not found" depends on clearance (hidden material answers it too), so never stored."""
    text = exc.message if len(exc.message) <= MAX_ERROR_TEXT else exc.message[: MAX_ERROR_TEXT - 3] + "..."
    headers = {"X-Content-Type-Options": "nosniff", **exc.headers}
    if isinstance(exc, AccessRefused) or (private_404 and exc.status == 404):
        headers.update(REFUSED_HEADERS)
    return PlainTextResponse(text + "\n", status_code=exc.status, headers=headers)


def wants_image(request: Request) -> bool:
    """A browser's image load (an <img>, a tile) rather than a script or a client asking for anything:
    browsers name image types before */* in Accept."""
    accept = request.headers.get("accept", "").lower()
    return accept.startswith("image/")


def within_degraded_limit(plan: Plan, full_w: int, full_h: int, limit: int) -> bool:
    """Whether a request shows no more detail than the whole image at `limit` px on its longer side.

    The scale counts, not the output size: a small output of a small region at full
    resolution is full-resolution detail, and tiles of those would rebuild the master.
    """
    scale = max(plan.out_w / plan.w, plan.out_h / plan.h)
    return max(full_w, full_h) * scale <= limit + 0.5  # half a pixel for the rounding of sizes


def decode_segment(segment: bytes) -> str:
    """One percent-encoded path segment as text; RequestError if it is not UTF-8."""
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError("the URL path is not valid percent-encoded UTF-8") from exc


def etag_matches(etag: str, if_none_match: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2) of an ETag with an If-None-Match list."""
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip() for t in if_none_match.split(","))
    return etag in (t[2:] if t.startswith("W/") else t for t in tags)


READY_OVERHEAD = 512  # bytes a cached response costs besides its body (header values, key, objects)


@dataclass(frozen=True, slots=True)
class Ready:
    """An image response as the cache keeps it: the body and its header values, computed once.

    The Link header is `link_head + base URL + link_tail`: the base URL depends on the request."""

    body: bytes
    media: bytes
    etag: str
    link_head: str
    link_tail: str
    length: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", str(len(self.body)).encode())

    def __len__(self) -> int:
        return len(self.body) + READY_OVERHEAD


def image_etag(stamp: tuple[int, int], canonical: str, media: str) -> str:
    """Names the content (the file's stamp and the canonical request): no hash of the body."""
    validator = f"{stamp[0]}:{stamp[1]}:{canonical}".encode()
    return '"' + hashlib.blake2b(media.encode() + b"\0" + validator, digest_size=12).hexdigest() + '"'


def profile_head(version: int) -> str:
    """The Link header up to the base URL: the profile, then the canonical link's opening."""
    return f'<{PROFILE_URI[version]}>;rel="profile", <'


def canonical_tail(version: int, identifier: str, canonical: str) -> str:
    return f"/iiif/{version}/{quote(identifier, safe='')}/{canonical}>;rel=\"canonical\""
