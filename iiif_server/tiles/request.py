"""Parse and resolve IIIF Image API request parameters (3.0 and 2.1).

Parsing is pure: strings in, frozen values out, `RequestError` on anything
malformed. `resolve` then applies a parsed request to an image of known size
and the server's limits, giving the exact crop and output size, still without
touching a pixel, so hostile requests are refused before any decoding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from iiif_server.errors import RequestError

FORMATS = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "tif": "image/tiff",
    "gif": "image/gif",
    "jp2": "image/jp2",
    "pdf": "application/pdf",
}
QUALITIES = ("default", "color", "gray", "bitonal")

# ASCII digits only ("\d" would accept e.g. Arabic-Indic digits) and "\Z", not "$",
# which would also match before a trailing newline.
_NUM = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_INT = r"[0-9]+"
_REGION_PX = re.compile(rf"^({_INT}),({_INT}),({_INT}),({_INT})\Z")
_REGION_PCT = re.compile(rf"^pct:({_NUM}),({_NUM}),({_NUM}),({_NUM})\Z")
_SIZE_WH = re.compile(rf"^(!?)({_INT})?,({_INT})?\Z")
_SIZE_PCT = re.compile(rf"^pct:({_NUM})\Z")
_ROTATION = re.compile(rf"^(!?)({_NUM})\Z")
_MAX_DIGITS = 9  # no dimension above 999,999,999: keeps arithmetic small


@dataclass(frozen=True)
class Region:
    kind: str  # "full", "square", "px", "pct"
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass(frozen=True)
class Size:
    kind: str  # "max", "full" (2.1), "w", "h", "wh", "confined", "pct"
    w: int | None = None
    h: int | None = None
    pct: float | None = None
    upscale: bool = False  # the 3.0 "^" prefix


@dataclass(frozen=True)
class ImageRequest:
    version: int  # 2 or 3
    region: Region
    size: Size
    mirror: bool
    rotation: float
    quality: str
    format: str


@dataclass(frozen=True)
class Limits:
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None


@dataclass(frozen=True)
class Plan:
    """What to do to an image: crop in full-resolution pixels, then scale."""

    x: int
    y: int
    w: int
    h: int
    out_w: int
    out_h: int
    mirror: bool
    rotation: float
    quality: str
    format: str
    region_is_full: bool

    def canonical(self, version: int, full_w: int, full_h: int, limits: Limits) -> str:
        """The canonical URI path after the identifier (spec section 4.7 / 2.1 4.7)."""
        region = "full" if self.region_is_full else f"{self.x},{self.y},{self.w},{self.h}"
        if version == 3:
            mw, mh = max_size(self.w, self.h, limits, upscale=False)
            if (self.out_w, self.out_h) == (mw, mh):
                size = "max"
            else:
                up = "^" if self.out_w > self.w or self.out_h > self.h else ""
                size = f"{up}{self.out_w},{self.out_h}"
        else:
            if (self.out_w, self.out_h) == (self.w, self.h):
                size = "full"
            elif self.out_h == _proportional(self.out_w, self.w, self.h):
                size = f"{self.out_w},"
            else:
                size = f"{self.out_w},{self.out_h}"
        rotation = ("!" if self.mirror else "") + _format_number(self.rotation)
        return f"{region}/{size}/{rotation}/{self.quality}.{self.format}"


def _format_number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _check_digits(text: str) -> None:
    if len(text.split(".")[0]) > _MAX_DIGITS:
        raise RequestError(f"number too large: {text[:20]}")


def parse_region(text: str) -> Region:
    if text == "full":
        return Region("full")
    if text == "square":
        return Region("square")
    m = _REGION_PX.match(text) or _REGION_PCT.match(text)
    if not m:
        raise RequestError(f"invalid region: {text!r}")
    for part in m.groups():
        _check_digits(part)
    x, y, w, h = (float(g) for g in m.groups())
    kind = "pct" if text.startswith("pct:") else "px"
    if w <= 0 or h <= 0:
        raise RequestError(f"region has zero width or height: {text!r}")
    return Region(kind, x, y, w, h)


def parse_size(text: str, version: int) -> Size:
    upscale = False
    body = text
    if version == 3 and body.startswith("^"):
        upscale = True
        body = body[1:]
    if body == "max":
        return Size("max", upscale=upscale)
    if body == "full":
        if version == 2 and not upscale:
            return Size("full")
        raise RequestError("size 'full' was replaced by 'max' in Image API 3.0")
    m = _SIZE_PCT.match(body)
    if m:
        _check_digits(m.group(1))
        pct = float(m.group(1))
        if pct <= 0:
            raise RequestError(f"size percentage must be above 0: {text!r}")
        return Size("pct", pct=pct, upscale=upscale)
    m = _SIZE_WH.match(body)
    if not m:
        raise RequestError(f"invalid size: {text!r}")
    bang, ws, hs = m.groups()
    for part in (ws, hs):
        if part is not None:
            _check_digits(part)
    w = int(ws) if ws is not None else None
    h = int(hs) if hs is not None else None
    if (w is not None and w == 0) or (h is not None and h == 0):
        raise RequestError(f"size has zero width or height: {text!r}")
    if bang:
        if w is None or h is None:
            raise RequestError(f"'!w,h' needs both width and height: {text!r}")
        return Size("confined", w, h, upscale=upscale)
    if w is None and h is None:
        raise RequestError(f"invalid size: {text!r}")
    kind = "wh" if (w is not None and h is not None) else ("w" if w is not None else "h")
    return Size(kind, w, h, upscale=upscale)


def parse_rotation(text: str) -> tuple[bool, float]:
    m = _ROTATION.match(text)
    if not m:
        raise RequestError(f"invalid rotation: {text!r}")
    _check_digits(m.group(2))
    angle = float(m.group(2))
    if angle > 360:
        raise RequestError(f"rotation must be between 0 and 360: {text!r}")
    return bool(m.group(1)), angle % 360


def parse_quality_format(text: str) -> tuple[str, str]:
    quality, dot, fmt = text.rpartition(".")
    if not dot:
        raise RequestError(f"missing format in {text!r}")
    if quality not in QUALITIES:
        raise RequestError(f"invalid quality: {quality!r}")
    if fmt not in FORMATS:
        raise RequestError(f"unknown format: {fmt!r}")
    return quality, fmt


def parse(version: int, region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """Parse the four path parameters after the identifier."""
    quality, fmt = parse_quality_format(quality_format)
    mirror, angle = parse_rotation(rotation)
    return ImageRequest(
        version=version,
        region=parse_region(region),
        size=parse_size(size, version),
        mirror=mirror,
        rotation=angle,
        quality=quality,
        format=fmt,
    )


def _proportional(new: int, a: int, b: int) -> int:
    """b scaled by new/a, rounded, at least 1."""
    return max(1, round(b * new / a))


def max_size(w: int, h: int, limits: Limits, upscale: bool) -> tuple[int, int]:
    """The largest size the limits allow for a w x h region (3.0 'max'/'^max')."""
    scale = 1.0 if not upscale else math.inf
    bound = None  # the limit that binds; width/height use exact integer maths
    if limits.max_width and limits.max_width / w < scale:
        scale, bound = limits.max_width / w, "width"
    if limits.max_height and limits.max_height / h < scale:
        scale, bound = limits.max_height / h, "height"
    if limits.max_area and math.sqrt(limits.max_area / (w * h)) < scale:
        scale, bound = math.sqrt(limits.max_area / (w * h)), "area"
    if bound is None:
        return w, h
    if bound == "width":
        return limits.max_width, max(1, h * limits.max_width // w)
    if bound == "height":
        return max(1, w * limits.max_height // h), limits.max_height
    out_w, out_h = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
    return out_w, out_h


def _resolve_region(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    if region.kind == "full":
        return 0, 0, width, height
    if region.kind == "square":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side
    if region.kind == "pct":
        x = round(region.x * width / 100)
        y = round(region.y * height / 100)
        x2 = round((region.x + region.w) * width / 100)
        y2 = round((region.y + region.h) * height / 100)
    else:
        x, y = int(region.x), int(region.y)
        x2, y2 = x + int(region.w), y + int(region.h)
    if x >= width or y >= height:
        raise RequestError("region is outside the image")
    x2, y2 = min(x2, width), min(y2, height)
    if x2 <= x or y2 <= y:
        raise RequestError("region has zero width or height")
    return x, y, x2 - x, y2 - y


def _resolve_size(size: Size, w: int, h: int, version: int, limits: Limits) -> tuple[int, int]:
    if size.kind == "max":
        return max_size(w, h, limits, upscale=size.upscale)
    if size.kind == "full":  # 2.1: not scaled, but still subject to the limits below
        out_w, out_h = w, h
    elif size.kind == "pct":
        assert size.pct is not None
        if version == 3 and size.pct > 100 and not size.upscale:
            raise RequestError("sizes above 100% need the '^' prefix")
        out_w = math.floor(w * size.pct / 100)
        out_h = math.floor(h * size.pct / 100)
    elif size.kind == "w":
        assert size.w is not None
        out_w, out_h = size.w, _proportional(size.w, w, h)
    elif size.kind == "h":
        assert size.h is not None
        out_w, out_h = _proportional(size.h, h, w), size.h
    elif size.kind == "wh":
        assert size.w is not None and size.h is not None
        out_w, out_h = size.w, size.h
    else:  # confined: as large as possible within w x h, keeping the ratio
        assert size.w is not None and size.h is not None
        # A box larger than the region asks for upscaling: 3.0 wants '^' for that
        # (as the official validator, Cantaloupe and IIPImage read the spec).
        if size.w / w <= size.h / h:
            out_w, out_h = size.w, min(size.h, _proportional(size.w, w, h))
        else:
            out_w, out_h = min(size.w, _proportional(size.h, h, w)), size.h
        if version == 3 and not size.upscale and (out_w > w or out_h > h):
            raise RequestError("upscaling needs the '^' prefix in Image API 3.0")
        # "as large as possible but not larger than ... server-imposed limits" (3.0 4.2);
        # 2.1 leaves the exact fit to the server, so the same clamp applies there.
        if (
            (limits.max_width and out_w > limits.max_width)
            or (limits.max_height and out_h > limits.max_height)
            or (limits.max_area and out_w * out_h > limits.max_area)
        ):
            lim_w, lim_h = max_size(w, h, limits, upscale=True)
            out_w, out_h = min(out_w, lim_w), min(out_h, lim_h)
    if out_w <= 0 or out_h <= 0:
        raise RequestError("the requested size is zero pixels")
    if version == 3 and not size.upscale and (out_w > w or out_h > h):
        raise RequestError("upscaling needs the '^' prefix in Image API 3.0")
    if limits.max_width and out_w > limits.max_width:
        raise RequestError(f"width {out_w} is above maxWidth {limits.max_width}")
    if limits.max_height and out_h > limits.max_height:
        raise RequestError(f"height {out_h} is above maxHeight {limits.max_height}")
    if limits.max_area and out_w * out_h > limits.max_area:
        raise RequestError(f"area {out_w}x{out_h} is above maxArea {limits.max_area}")
    return out_w, out_h


def rotated_box(width: int, height: int, degrees: float) -> tuple[int, int]:
    """The size of the image a rotation by `degrees` makes of a width x height one (its bounding box)."""
    angle = math.radians(degrees)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    return math.ceil(width * cos + height * sin - 1e-9), math.ceil(width * sin + height * cos - 1e-9)


def _check_rotated(width: int, height: int, degrees: float, limits: Limits) -> None:
    """A rotation by other than a multiple of 90 degrees makes a larger image than the size asked for: it is held
    to the same limits (maxWidth, maxHeight, maxArea), or the size limits could be passed by turning."""
    rw, rh = rotated_box(width, height, degrees)
    if (limits.max_width and rw > limits.max_width) or (limits.max_height and rh > limits.max_height) or (
            limits.max_area and rw * rh > limits.max_area):
        raise RequestError(f"rotated by {_format_number(degrees)} degrees the image would be {rw}x{rh}, more than "
                           "this server's limits (maxWidth, maxHeight, maxArea in info.json)")


def resolve(req: ImageRequest, width: int, height: int, limits: Limits) -> Plan:
    """Apply a parsed request to a width x height image; raises RequestError."""
    x, y, w, h = _resolve_region(req.region, width, height)
    out_w, out_h = _resolve_size(req.size, w, h, req.version, limits)
    if req.rotation % 90:
        _check_rotated(out_w, out_h, req.rotation, limits)
    return Plan(
        x=x,
        y=y,
        w=w,
        h=h,
        out_w=out_w,
        out_h=out_h,
        mirror=req.mirror,
        rotation=req.rotation,
        quality=req.quality,
        format=req.format,
        region_is_full=(x, y, w, h) == (0, 0, width, height),
    )
