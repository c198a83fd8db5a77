"""IIIF Presentation 3.0 documents built from the catalogue with iiif-prezi3 models.

The descriptive part of each document (label, metadata, rights, provider ...)
is an iiif-prezi3 model, validated on construction. Canvases are the bulk of a
large manifest and all share one shape, so they are written as plain dicts of
exactly the shape iiif-prezi3 serialises (`canvas_model` builds the same canvas
through the models; the tests hold the two equal). That keeps a 10,000-page
manifest well under a second instead of the ~3 s full model validation costs.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    Collection,
    Manifest,
    ServiceV3,
)

from iiif_server.db.catalogue import DocumentEntry, PageRow
from iiif_server.db.models import WHOLE_MANIFEST_PAGES
from iiif_server.db.models import Collection as CollectionRow
from iiif_server.db.models import Document as DocumentRow
from iiif_server.manifests.base import Institution, Urls, lang_map, nav_date
from iiif_server.manifests.described import collection_fields, document_fields

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
THUMBNAIL_MAX = 256
CANVAS_LIMIT = WHOLE_MANIFEST_PAGES  # pages of a whole-collection manifest (about 1 KB of JSON each); above, none


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """A power-of-two reduction no larger than THUMBNAIL_MAX (listed in info.json sizes)."""
    factor = 1
    while max(width, height) / factor > THUMBNAIL_MAX:
        factor *= 2
    return math.ceil(width / factor), math.ceil(height / factor)


ServicesFor = Callable[[PageRow], list[dict[str, Any]] | None]
ThumbFor = Callable[[PageRow], dict[str, Any] | None]
NamesFor = Callable[[PageRow], list[dict[str, Any]] | None]  # a canvas's `annotations`, or None


def degraded_thumbnail(urls: Urls, collection: str, page: PageRow, limit: int) -> dict[str, Any]:
    """The largest thumbnail a tier's degraded access serves without credentials."""
    side = min(limit, THUMBNAIL_MAX)
    scale = min(side / page.width, side / page.height, 1.0)
    tw, th = max(1, round(page.width * scale)), max(1, round(page.height * scale))
    service = urls.image_service(collection, page.document, page.ident)
    return {"id": f"{service}/full/{tw},{th}/0/default.jpg", "type": "Image", "format": "image/jpeg",
            "width": tw, "height": th}


def canvas_dict(urls: Urls, collection: str, page: PageRow, language: str,
                auth: list[dict[str, Any]] | None = None, thumb: dict[str, Any] | None = None,
                annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One canvas in the exact shape iiif-prezi3 serialises (see `canvas_model`).

    `auth`: the IIIF auth services of a restricted page, nested in its image service; `thumb`: the
    thumbnail a viewer can show in place of the page's own (a restricted page's degraded or placeholder);
    `annotations`: its AnnotationPages beside the image (the names on a list page).
    """
    service = urls.image_service(collection, page.document, page.ident)
    image_service: dict[str, Any] = {"id": service, "type": "ImageService3", "profile": "level2"}
    if auth:
        image_service["service"] = auth
    canvas_id = urls.canvas(collection, page.document, page.ident)
    tw, th = thumbnail_size(page.width, page.height)
    return {
        "id": canvas_id,
        "type": "Canvas",
        "label": {language: [page.label]},
        "height": page.height,
        "width": page.width,
        "thumbnail": [thumb or {
            "id": f"{service}/full/{tw},{th}/0/default.jpg",
            "type": "Image",
            "height": th,
            "width": tw,
            "format": "image/jpeg",
        }],
        "items": [
            {
                "id": f"{canvas_id}/page",
                "type": "AnnotationPage",
                "items": [
                    {
                        "id": f"{canvas_id}/annotation",
                        "type": "Annotation",
                        "motivation": "painting",
                        "body": {
                            "id": f"{service}/full/max/0/default.jpg",
                            "type": "Image",
                            "height": page.height,
                            "width": page.width,
                            "service": [image_service],
                            "format": "image/jpeg",
                        },
                        "target": canvas_id,
                    }
                ],
            }
        ],
        **({"annotations": annotations} if annotations else {}),
    }


def name_label(surname: str, given_names: str) -> str:
    """A person's name as a list writes it: `Lévy, Abraham`."""
    return f"{surname}, {given_names}" if given_names else surname


def names_page(urls: Urls, collection: str, page: PageRow, names: list[tuple[str, int, str, tuple[int, ...]]],
               context: bool = False) -> dict[str, Any]:
    """The names on a list page as an AnnotationPage: one annotation a line (motivation `identifying`), whose
    target is the line's box and whose body is the person's page, named (and, for viewers that show an
    annotation's text, the name as a link to that page). `names`: (person id, link id, name, box)."""
    canvas_id = urls.canvas(collection, page.document, page.ident)
    items = []
    for person_id, link_id, name, (x, y, w, h) in names:
        person = urls.person(person_id)
        link = f'<a href="{html.escape(person, quote=True)}">{html.escape(name)}</a>'
        items.append({
            "id": f"{canvas_id}/names/{link_id}", "type": "Annotation", "motivation": "identifying",
            "body": [{"type": "TextualBody", "value": link, "format": "text/html", "purpose": "identifying"},
                     {"id": person, "type": "Text", "format": "text/html", "label": {"none": [name]}}],
            "target": f"{canvas_id}#xywh={x},{y},{w},{h}"})
    doc: dict[str, Any] = {"@context": CONTEXT} if context else {}
    doc.update({"id": urls.names(collection, page.document, page.ident), "type": "AnnotationPage", "items": items})
    return doc


def canvas_model(urls: Urls, collection: str, page: PageRow, language: str,
                 thumb: dict[str, Any] | None = None) -> Canvas:
    """The same canvas as `canvas_dict`, through validated iiif-prezi3 models."""
    service = urls.image_service(collection, page.document, page.ident)
    canvas_id = urls.canvas(collection, page.document, page.ident)
    tw, th = thumbnail_size(page.width, page.height)
    body = AnnotationBody(
        id=f"{service}/full/max/0/default.jpg", type="Image", format="image/jpeg",
        width=page.width, height=page.height,
        service=[ServiceV3(id=service, type="ImageService3", profile="level2")],
    )
    annotation = Annotation(id=f"{canvas_id}/annotation", motivation="painting", body=body, target=canvas_id)
    own = AnnotationBody(id=f"{service}/full/{tw},{th}/0/default.jpg", type="Image", format="image/jpeg",
                         width=tw, height=th)
    return Canvas(
        id=canvas_id, label=lang_map(page.label, language), width=page.width, height=page.height,
        thumbnail=[AnnotationBody(**thumb) if thumb else own],
        items=[AnnotationPage(id=f"{canvas_id}/page", items=[annotation])],
    )


def _dump(model: Manifest | Collection) -> dict[str, Any]:
    return json.loads(model.jsonld())


def manifest(urls: Urls, inst: Institution, coll: CollectionRow, pages: list[PageRow],
             document: DocumentRow | None = None, documents: list[DocumentEntry] | None = None,
             services_for: ServicesFor | None = None, thumb_for: ThumbFor | None = None,
             services: list[dict[str, Any]] | None = None, names_for: NamesFor | None = None,
             withheld: bool = False, public: bool = True) -> bytes:
    """A document's manifest, or (document None) the whole collection's with one Range per document;
    `services`: the manifest's own (e.g. Content Search); `names_for`: a canvas's name annotations; `withheld`:
    the document's own description is not for this requester (see described.document_fields); `public`:
    whether the collection's tier is."""
    if document is not None:
        ident, part_of = urls.manifest(coll.id, document.ident), urls.collection(coll.id)
        described = document_fields(urls, inst, coll, document, withheld)
    else:
        ident, part_of = urls.collection_manifest(coll.id), urls.top()
        described = collection_fields(urls, inst, coll, public)
    model = Manifest(id=ident, partOf=[{"id": part_of, "type": "Collection"}], **described)
    doc = _dump(model)
    if services:
        doc["service"] = services
    lang = inst.language
    doc["items"] = [canvas_dict(urls, coll.id, page, lang, services_for(page) if services_for else None,
                                thumb_for(page) if thumb_for else None, names_for(page) if names_for else None)
                    for page in pages]
    if document is None and documents:
        by_doc: dict[str, list[dict[str, str]]] = {}
        for page in pages:
            by_doc.setdefault(page.document, []).append(
                {"id": urls.canvas(coll.id, page.document, page.ident), "type": "Canvas"})
        doc["structures"] = [
            {"id": urls.range(coll.id, d.ident), "type": "Range", "label": lang_map(d.label or d.ident, lang),
             "items": by_doc[d.ident]}
            for d in documents if d.ident in by_doc
        ]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def thumbnail(urls: Urls, collection: str, page: PageRow) -> dict[str, Any]:
    tw, th = thumbnail_size(page.width, page.height)
    service = urls.image_service(collection, page.document, page.ident)
    return {"id": f"{service}/full/{tw},{th}/0/default.jpg", "type": "Image", "format": "image/jpeg",
            "width": tw, "height": th}


def manifest_ref(urls: Urls, collection: str, entry: DocumentEntry, language: str,
                 thumb_for: ThumbFor | None = None) -> dict[str, Any]:
    """A document's entry in a Collection, shaped as iiif-prezi3 serialises it (see `manifest_ref_model`)."""
    ref: dict[str, Any] = {"id": urls.manifest(collection, entry.ident), "type": "Manifest",
                           "label": lang_map(entry.label or entry.ident, language)}
    if entry.first is not None:
        ref["thumbnail"] = [(thumb_for(entry.first) if thumb_for else None) or thumbnail(urls, collection, entry.first)]
    return ref


def manifest_ref_model(urls: Urls, collection: str, entry: DocumentEntry, language: str) -> dict[str, Any]:
    """The same entry through a validated iiif-prezi3 Collection (for the tests)."""
    model = Collection(id=urls.collection(collection), label=lang_map(collection, language), items=[
        {"id": urls.manifest(collection, entry.ident), "type": "Manifest",
         "label": lang_map(entry.label or entry.ident, language),
         **({"thumbnail": [thumbnail(urls, collection, entry.first)]} if entry.first else {})}])
    item: dict[str, Any] = _dump(model)["items"][0]
    return item


def _collection(ident: str, part_of: str, described: dict[str, Any], items: list[dict[str, Any]],
                search: str | None = None) -> bytes:
    """The descriptive part through the models; items, of a shape fixed above, as plain dicts.
    `search`: the Content Search 2.0 service over the collection's documents."""
    model = Collection(id=ident, partOf=[{"id": part_of, "type": "Collection"}], items=[], **described)
    doc = _dump(model)
    if search:
        doc["service"] = [{"id": search, "type": "SearchService2"}]
    doc["items"] = items
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def collection(urls: Urls, inst: Institution, coll: CollectionRow, entries: list[DocumentEntry],
               thumb_for: ThumbFor | None = None, public: bool = True) -> bytes:
    """A Collection of the collection's document manifests (a collection small enough to list whole)."""
    items = [manifest_ref(urls, coll.id, e, inst.language, thumb_for) for e in entries]
    return _collection(urls.collection(coll.id), urls.top(), collection_fields(urls, inst, coll, public), items,
                       urls.search(coll.id))


@dataclass(frozen=True)
class Part:
    """One sub-collection of a large collection: documents at positions [first, stop)."""

    number: int  # 1-based, as in its URL
    first: int
    stop: int
    first_label: str | None = None
    last_label: str | None = None


def part_label(part: Part) -> str:
    span = f"{part.first + 1}–{part.stop}"
    if part.first_label and part.last_label:
        return f"{span}: {part.first_label} … {part.last_label}"
    return span


def collection_of_parts(urls: Urls, inst: Institution, coll: CollectionRow, parts: list[Part],
                        public: bool = True) -> bytes:
    """A large collection as a Collection of sub-Collections of documents, in the collection's order."""
    items = [{"id": urls.part(coll.id, p.number), "type": "Collection",
              "label": lang_map(part_label(p), inst.language)} for p in parts]
    return _collection(urls.collection(coll.id), urls.top(), collection_fields(urls, inst, coll, public), items,
                       urls.search(coll.id))


def collection_part(urls: Urls, inst: Institution, coll: CollectionRow, part: Part,
                    entries: list[DocumentEntry], thumb_for: ThumbFor | None = None) -> bytes:
    """One sub-collection: its documents' manifests, part of the collection."""
    label = coll.label or coll.id
    described = {"label": lang_map(f"{label} ({part_label(part)})", inst.language)}
    items = [manifest_ref(urls, coll.id, e, inst.language, thumb_for) for e in entries]
    return _collection(urls.part(coll.id, part.number), urls.collection(coll.id), described, items)


def top_collection(urls: Urls, inst: Institution, collections: list[CollectionRow]) -> bytes:
    """The Collection listing every collection."""
    items = [{"id": urls.collection(c.id), "type": "Collection", "label": lang_map(c.label or c.id, inst.language)}
             for c in collections]
    label = lang_map(f"Collections of {inst.provider}" if inst.provider else "Collections", inst.language)
    model = Collection(id=urls.top(), label=label, items=items)
    doc = _dump(model)
    doc["service"] = [{"id": urls.search(None), "type": "SearchService2"}]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


__all__ = ["CANVAS_LIMIT", "CONTEXT", "Institution", "Part", "Urls", "canvas_dict", "canvas_model", "collection",
           "collection_of_parts", "collection_part", "degraded_thumbnail", "lang_map", "manifest", "manifest_ref",
           "manifest_ref_model", "nav_date", "thumbnail", "top_collection"]
