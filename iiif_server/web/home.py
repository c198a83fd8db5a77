"""`/`, the overview of the image bank: every collection that is not in a hidden tier, described for everyone.

Each collection shows its label, short description, extent, dates, provenance and access: a public one opens
in the viewer (with a thumbnail of its first page, when that page is public too); a restricted one says where
it can be consulted (`--consult`, the partner institutions the network rules name) and shows nothing of what
it holds. Every requester gets the same page, so it is public and shared caches may keep it; what differs by
clearance is on the collection pages (web/pages.py). Collections are few (hundreds) and are paged by key;
the documents of a collection are never listed here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from iiif_server.auth.policy import Policy
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.manifests.base import Institution
from iiif_server.manifests.described import extent
from iiif_server.manifests.presentation import CANVAS_LIMIT
from iiif_server.tiles.sources import SourceStore

LIMIT = 1000  # images listed
PAGE = 48  # collections per page
THUMB = "full/!240,240/0/default.jpg"
PUBLIC = {"Cache-Control": "public, max-age=60"}  # the same for everybody
PRIVATE = {"Cache-Control": "private, max-age=0", "Vary": "Authorization, Cookie"}
HEADERS = PRIVATE
TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters["q"] = lambda value: quote(str(value), safe="")


@dataclass(frozen=True)
class Card:
    id: str
    label: str
    summary: str | None
    extent: str
    dates: str | None
    provenance: str | None
    public: bool  # opens in the viewer; else `access` says where it can be consulted
    access: str
    thumbnail: str | None  # an Image API URL of the first page, when that page is public
    manifest: bool  # small enough for one manifest of every page


def overview(policy: Policy, collections: list[Collection]) -> list[Collection]:
    """What the overview lists: every collection not in a hidden tier, whoever asks."""
    return [c for c in collections if c.tier not in policy.hidden]


def public_images(policy: Policy, collections: list[Collection], source: SourceStore) -> list[str]:
    """Runs in a worker thread: the images outside the catalogue that are public (first LIMIT)."""
    images = []
    for ident in source.loose_images({c.id for c in collections}):
        if not policy.restricted(policy.tier_of(ident)):
            images.append(ident)
            if len(images) >= LIMIT:
                break
    return images


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


def cards(firsts: Callable[[list[str]], dict[str, str]], policy: Policy, inst: Institution,
          shown: list[Collection], after: str) -> tuple[list[Card], str | None]:
    """Blocking: one page of collections after the id `after`, with thumbnails; and the next page's key.
    `firsts`: each collection's first page identifier (`Listing.first_pages`)."""
    page = [c for c in shown if c.id > after][:PAGE + 1]
    more = page[PAGE - 1].id if len(page) > PAGE else None
    page = page[:PAGE]
    public = {c.id for c in page if not policy.restricted(c.tier)}
    firsts = firsts(sorted(public))
    out = []
    for c in page:
        first = firsts.get(c.id)
        if first is not None and policy.restricted(policy.tier_of(first)):
            first = None  # a first page with a tier of its own: no thumbnail rather than a refusal
        thumb = f"/iiif/3/{quote(first, safe='')}/{THUMB}" if first else None
        out.append(Card(c.id, c.label or c.id, c.summary, extent(c), c.dates, c.provenance, c.id in public,
                        inst.access(c.tier, c.id in public), thumb, c.image_count <= CANVAS_LIMIT))
    return out, more


def render(cards: list[Card], images: list[str], base: str, after: str = "", more: str | None = None,
           title: str = "Collections", site: str = "Collections") -> str:
    canonical = f"{base}/" + (f"?after={quote(after, safe='')}" if after else "")
    description = f"{title}: what has been digitised, and where each collection can be consulted."
    return ENV.get_template("home.html").render(cards=cards, images=images, after=after, more=more, base=base,
                                                canonical=canonical, title=title, site=site, description=description)


def viewer_headers(viewer_url: str, public: bool = False) -> dict[str, str]:
    """The viewer page: scripts from this server and the viewer's origin only; never framed elsewhere."""
    parts = urlsplit(viewer_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    return {**(PUBLIC if public else PRIVATE),
            "Content-Security-Policy": f"script-src 'self' {origin}; object-src 'none'; base-uri 'none'; "
                                       "frame-ancestors 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


VIEWER_SCRIPT = (TEMPLATES / "view.js").read_bytes()  # starts Mirador as the page says (no viewer code)
