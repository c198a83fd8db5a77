"""Image information documents (info.json) for Image API 3.0 and 2.1."""

from __future__ import annotations

import math
from typing import Any

from iiif_server.tiles.request import Limits, max_size
from iiif_server.tiles.sources import Source

CONTEXT = {3: "http://iiif.io/api/image/3/context.json", 2: "http://iiif.io/api/image/2/context.json"}
PROFILE_URI = {3: "http://iiif.io/api/image/3/level2.json", 2: "http://iiif.io/api/image/2/level2.json"}
# formats and qualities that level 2 already requires are not "extra"
LEVEL2_FORMATS = ("jpg", "png")
EXTRA_FEATURES_3 = [
    "canonicalLinkHeader",
    "mirroring",
    "profileLinkHeader",
    "rotationArbitrary",
    "sizeUpscaling",
]
SUPPORTS_2 = [
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationArbitrary",
    "rotationBy90s",
    "sizeAboveFull",
    "sizeByConfinedWh",
    "sizeByDistortedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
    "sizeByWh",
]


def sizes(source: Source, limits: Limits) -> list[dict[str, int]]:
    """One size per scale factor, smallest first, within the limits.

    A stored level is listed at its exact size (libvips rounds halvings down, the ceiling of
    width / factor can be a pixel more): asked for, it is read as stored, with no resampling,
    and a level inside one tile is cut from that tile alone. Factors beyond the stored levels
    take the ceiling, as viewers compute them. A stored thumbnail (tiles/thumbnail.py) is listed
    at its size too: it is sent as stored."""
    stored = {level.factor: (level.width, level.height) for level in source.levels}
    found = [stored.get(factor) or (math.ceil(source.width / factor), math.ceil(source.height / factor))
             for factor in source.scale_factors]
    found += [size for size in source.stored if size not in found]
    out = []
    for w, h in sorted(found):
        if max_size(w, h, limits, upscale=False) == (w, h):
            out.append({"width": w, "height": h})
    return out


def info_document(source: Source, service_id: str, version: int, limits: Limits, formats: list[str]) -> dict[str, Any]:
    tiles = [{"width": source.tile_width, "height": source.tile_height, "scaleFactors": source.scale_factors}]
    limit_fields = {
        k: v
        for k, v in (("maxWidth", limits.max_width), ("maxHeight", limits.max_height), ("maxArea", limits.max_area))
        if v
    }
    if version == 3:
        return {
            "@context": CONTEXT[3],
            "id": service_id,
            "type": "ImageService3",
            "protocol": "http://iiif.io/api/image",
            "profile": "level2",
            "width": source.width,
            "height": source.height,
            **limit_fields,
            "sizes": sizes(source, limits),
            "tiles": tiles,
            "preferredFormats": ["jpg"],
            "extraFormats": [f for f in formats if f not in LEVEL2_FORMATS],
            "extraQualities": ["bitonal"],
            "extraFeatures": EXTRA_FEATURES_3,
        }
    return {
        "@context": CONTEXT[2],
        "@id": service_id,
        "protocol": "http://iiif.io/api/image",
        "width": source.width,
        "height": source.height,
        "profile": [
            PROFILE_URI[2],
            {
                "formats": [f for f in formats if f not in LEVEL2_FORMATS],
                "qualities": ["default", "color", "gray", "bitonal"],
                "supports": SUPPORTS_2,
                **limit_fields,
            },
        ],
        "sizes": sizes(source, limits),
        "tiles": tiles,
    }
