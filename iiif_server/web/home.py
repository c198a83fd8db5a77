"""The `/` landing page and the viewer page behind it.

`/` shows the collections the requester is cleared to see (a visitor: the public ones; a reading-room
computer or a token holder: theirs too), each with a thumbnail of its first page, its label and size, a
link that opens it in the embedded viewer and links to its IIIF documents; a search box; and the images
outside the catalogue. What it lists depends on who asks, so it is never stored by shared caches.
Collections are few (hundreds) and are paged; the documents of a collection are never listed here.

The viewer page loads Mirador from `--viewer-url` (a public CDN by default): no viewer code is part of
this server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.manifests.presentation import CANVAS_LIMIT
from iiif_server.tiles.sources import SourceStore

LIMIT = 1000  # images listed
PAGE = 48  # collections per page
THUMB = "full/!240,240/0/default.jpg"
HEADERS = {"Cache-Control": "private, max-age=0", "Vary": "Authorization, Cookie"}
TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters["q"] = lambda value: quote(str(value), safe="")


@dataclass(frozen=True)
class Card:
    id: str
    label: str
    documents: int
    pages: int
    thumbnail: str | None  # an Image API URL of the first page, when the requester may see it
    manifest: bool  # small enough for one manifest of every page


def cleared(policy: Policy | None, access: Access | None, tier: str, collection: str | None) -> bool:
    return policy is None or access is None or policy.tiers.allows(access.clearance(policy.tiers, collection), tier)


def visible_parts(policy: Policy | None, access: Access | None, collections: list[Collection],
                  source: SourceStore) -> tuple[list[Collection], list[str]]:
    """Runs in a worker thread: the collections this requester is cleared for, and the loose images it may open."""
    shown = [c for c in collections if cleared(policy, access, c.tier, c.id)]
    images = []
    for ident in source.loose_images({c.id for c in collections}):
        if policy is None or access is None or policy.tiers.allows(access.clearance(policy.tiers, None),
                                                                     policy.tier_of(ident)):
            images.append(ident)
            if len(images) >= LIMIT:
                break
    return shown, images


def first_pages(catalogue: Catalogue, ids: list[str]) -> dict[str, str]:
    """Blocking: each collection's first page identifier, by two index look-ups per collection
    (its first document by position, that document's first page), in one statement."""
    if not ids:
        return {}
    first_doc = (select(Document.pk).where(Document.collection_id == Collection.id)
                 .order_by(Document.position).limit(1).correlate(Collection).scalar_subquery())
    first_image = (select(Image.pk).where(Image.document_pk == Document.pk)
                   .order_by(Image.position).limit(1).correlate(Document).scalar_subquery())
    stmt = (select(Collection.id, Document.ident, Image.ident)
            .join(Document, Document.pk == first_doc).join(Image, Image.pk == first_image)
            .where(Collection.id.in_(ids)))
    with catalogue.sessions() as session:
        return {cid: f"{cid}/{doc}/{page}" for cid, doc, page in session.execute(stmt).all()}


class Listing:
    """The collections and their first pages as of one catalogue version, which every change to the
    catalogue renews (`Catalogue.bump`): `/` needs them on every request, and they change far less.
    Holds at most every collection's row and first page identifier."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._version: int | None = None
        self._collections: list[Collection] = []
        self._firsts: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def collections(self, version: int | None) -> list[Collection]:
        """Blocking. `version`: the access snapshot's catalogue version (None: not known, read anew)."""
        with self._lock:
            if version is None or version != self._version:
                self._collections, self._firsts, self._version = list(self.catalogue.collections()), {}, version
            return self._collections

    def first_pages(self, ids: list[str]) -> dict[str, str]:
        """Blocking: as `first_pages`, read once per version."""
        with self._lock:
            missing = [i for i in ids if i not in self._firsts]
        if missing:
            found = first_pages(self.catalogue, missing)
            with self._lock:
                self._firsts.update({i: found.get(i) for i in missing})
        with self._lock:
            return {i: page for i in ids if (page := self._firsts.get(i)) is not None}


def cards(firsts: Callable[[list[str]], dict[str, str]], policy: Policy | None, access: Access | None,
          shown: list[Collection], after: str) -> tuple[list[Card], str | None]:
    """Blocking: one page of collections after the id `after`, with thumbnails; and the next page's key.
    `firsts`: each collection's first page identifier (`Listing.first_pages`)."""
    page = [c for c in shown if c.id > after][:PAGE + 1]
    more = page[PAGE - 1].id if len(page) > PAGE else None
    page = page[:PAGE]
    firsts = firsts([c.id for c in page])
    out = []
    for c in page:
        first = firsts.get(c.id)
        if first is not None and policy is not None and not cleared(policy, access, policy.tier_of(first), c.id):
            first = None  # a first page with a higher tier of its own: no thumbnail rather than a refusal
        thumb = f"/iiif/3/{quote(first, safe='')}/{THUMB}" if first else None
        out.append(Card(c.id, c.label or c.id, c.document_count, c.image_count, thumb, c.image_count <= CANVAS_LIMIT))
    return out, more


def render(cards: list[Card], images: list[str], after: str = "", more: str | None = None) -> str:
    return ENV.get_template("home.html").render(cards=cards, images=images, after=after, more=more)


def viewer_headers(viewer_url: str) -> dict[str, str]:
    """The viewer page: scripts from this server and the viewer's origin only; never framed elsewhere."""
    parts = urlsplit(viewer_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    return {**HEADERS, "Content-Security-Policy": f"script-src 'self' {origin}; object-src 'none'; base-uri 'none'; "
                                                  "frame-ancestors 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def render_viewer(collection: Collection, manifest: str | None, collection_url: str, viewer_url: str) -> str:
    return ENV.get_template("viewer.html").render(coll=collection, manifest=manifest, collection_url=collection_url,
                                                  viewer_url=viewer_url)


def first_document(catalogue: Catalogue, collection_id: str) -> str | None:
    with catalogue.sessions() as session:
        return session.scalar(select(Document.ident).where(Document.collection_id == collection_id)
                              .order_by(Document.position).limit(1))


VIEWER_SCRIPT = (TEMPLATES / "view.js").read_bytes()  # starts Mirador as the page says (no viewer code)

