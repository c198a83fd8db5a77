"""A thumbnail stored in the access copy, so that a wall of thumbnails is read, not rendered.

`add_thumbnail` appends one page to a finished pyramidal TIFF: the image at the size a
`full/!200,200` request gives, encoded exactly as the general path encodes it, as one
JPEG strip (a complete JPEG stream). Marked as a reduced-resolution page and smaller
than the pyramid's last level, it is not taken for a pyramid level (sources only follow
halvings); `sources._open_tiff` lists it in `Source.stored` and the pipeline sends it as
stored for that one request, when the server encodes JPEG at the quality the page names in
its ImageDescription. Ingest calls it on the staged copy before the rename (or upload).
"""

from __future__ import annotations


def subsampling(grey: bool, quality: int) -> tuple[int, int]:
    """The chroma subsampling `encode` gives a JPEG at this quality, in the TIFF's terms."""
    return (1, 1) if grey or quality >= 90 else (2, 2)


# "2": scaled as `pipeline.scale_array` scales (a blur, then bilinear). A page of the first kind (libvips'
# Lanczos, "iiif-server thumbnail q=") is no longer what the server renders: it is left unread
DESCRIPTION = "iiif-server thumbnail 2 q="


def describe(quality: int) -> bytes:
    """The page's ImageDescription: a server configured for another JPEG quality renders instead."""
    return f"{DESCRIPTION}{quality}".encode() + b"\0"


def quality_of(description: str) -> int | None:
    """The JPEG quality a stored thumbnail was encoded at, from its ImageDescription; None for other pages."""
    if not description.startswith(DESCRIPTION) or not description[len(DESCRIPTION):].isdigit():
        return None
    return int(description[len(DESCRIPTION):])


