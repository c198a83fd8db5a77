"""What a person's page shows a requester, decided once for the HTML and the JSON-LD alike.

Each confirmed link is shown by what the requester may do with it: read it (its image, the page's name, the
viewer links), know it is in the reading room (its collection's label only: never its image, text or page
name), or nothing at all (a tier hidden from them). An answer that shows any restricted link, or a hidden
person to staff, depends on who asks and is private. The viewer links carry an IIIF Content State: the list
opens at the person's line, the portrait at its page.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from iiif_server.auth.policy import Access, Policy
from iiif_server.db.models import LINE, PORTRAIT, Person
from iiif_server.db.people import Linked
from iiif_server.manifests import contentstate
from iiif_server.manifests.presentation import Institution, Urls, name_label, thumbnail_size

LINE_MARGIN = 0.6  # of the line's height, shown above and below it in the picture of the line
PORTRAIT_SIDE = 600


@dataclass(frozen=True)
class Shown:
    """A link as this requester sees it."""

    link: Linked
    readable: bool  # False: only "consultable in the reading room"
    collection_label: str
    image: str | None = None  # the portrait, or the picture of the line (an Image API region)
    thumbnail: str | None = None
    manifest: str | None = None
    canvas: str | None = None
    content_state: str | None = None  # iiif-content value
    viewer: str | None = None  # our Mirador page at the region
    uv: str | None = None  # our Universal Viewer page at the region


@dataclass
class PersonView:
    person: Person
    url: str
    portraits: list[Shown] = field(default_factory=list)
    lines: list[Shown] = field(default_factory=list)
    mentions: list[Any] = field(default_factory=list)  # search.across.DocumentHits, public only
    private: bool = False  # the answer depends on who asks

    @property
    def name(self) -> str:
        return name_label(self.person.surname, self.person.given_names)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.person.given_names, self.person.surname) if p)


def size_for(width: int, height: int, side: int) -> str:
    """An Image API size no larger than `side`, never asking for an upscale (3.0 refuses those)."""
    return "max" if width <= side and height <= side else f"!{side},{side}"


def line_region(link: Linked) -> tuple[int, int, int, int]:
    """The line's box with a margin, inside the page."""
    x, y, w, h = link.box or (0, 0, link.width, link.height)
    pad_y, pad_x = int(h * LINE_MARGIN), int(h * LINE_MARGIN)
    x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
    x1, y1 = min(link.width, x + w + pad_x), min(link.height, y + h + pad_y)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def shown(urls: Urls, link: Linked, policy: Policy | None, access: Access | None,
          labels: dict[str, str]) -> Shown | None:
    """The link as the requester may see it; None when its tier is hidden from them."""
    label = labels.get(link.collection, link.collection)
    if policy is not None and access is not None:
        if not policy.visible(access, link.tier, link.collection):
            return None
        if not policy.tiers.allows(access.clearance(policy.tiers, link.collection), link.tier):
            return Shown(link, False, label)
    service = urls.image_service(link.collection, link.document, link.page)
    manifest = urls.manifest(link.collection, link.document)
    canvas = urls.canvas(link.collection, link.document, link.page)
    tw, th = thumbnail_size(link.width, link.height)
    thumb = f"{service}/full/{tw},{th}/0/default.jpg"
    if link.kind == LINE and link.box:
        x, y, w, h = line_region(link)
        image = f"{service}/{x},{y},{w},{h}/{size_for(w, h, 1200)}/0/default.jpg"
        ident = f"{urls.person(link.person_id)}#line-{link.id}"
        state = contentstate.encode(contentstate.annotation(ident, manifest, canvas, link.box))
    else:
        image = f"{service}/full/{size_for(link.width, link.height, PORTRAIT_SIDE)}/0/default.jpg"
        ident = f"{urls.person(link.person_id)}#portrait-{link.id}"
        state = contentstate.encode(contentstate.annotation(ident, manifest, canvas))
    return Shown(link, True, label, image, thumb, manifest, canvas, state,
                 f"{urls.base}/view?iiif-content={state}", f"{urls.base}/uv#?iiif-content={state}")


def restricted(policy: Policy | None, links: list[Linked]) -> bool:
    return policy is not None and any(policy.restricted(link.tier) or link.tier in policy.hidden for link in links)


def citation(view: PersonView, inst: Institution, today: dt.date) -> str:
    """A stable citation: the person, the publisher, the permanent URL and the day consulted."""
    person = view.person
    born = ", ".join(p for p in (f"born {person.birth_date}" if person.birth_date else "", person.birth_place or "")
                     if p)
    where = inst.provider or "IIIF server"
    return (f"{view.name}{f' ({born})' if born else ''}. {where}, person {person.id}. {view.url} "
            f"(consulted {today.isoformat()}).")


def json_ld(view: PersonView, urls: Urls) -> dict[str, Any]:
    """The person as schema.org `Person`, with the IIIF resources that show them."""
    person = view.person
    doc: dict[str, Any] = {
        "@context": {"@vocab": "https://schema.org/"}, "@type": "Person", "@id": view.url, "url": view.url,
        "identifier": person.id, "name": view.full_name, "familyName": person.surname,
    }
    if person.given_names:
        doc["givenName"] = person.given_names
    if person.birth_date:
        doc["birthDate"] = person.birth_date  # ISO 8601, as precise as known
    if person.birth_place:
        doc["birthPlace"] = {"@type": "Place", "name": person.birth_place}
    if person.nationality:
        doc["nationality"] = {"@type": "Country", "name": person.nationality}
    facts = [("transport", person.transport), ("number on the list", person.number)]
    extra = [{"@type": "PropertyValue", "name": n, "value": v} for n, v in facts if v]
    if extra:
        doc["additionalProperty"] = extra
    images = [{"@type": "ImageObject", "contentUrl": s.image, "thumbnailUrl": s.thumbnail,
               "isPartOf": {"@type": "CreativeWork", "url": s.manifest,
                            "encodingFormat": "application/ld+json"}}
              for s in view.portraits if s.readable]
    if images:
        doc["image"] = images
    works = []
    for s in view.lines + view.portraits:
        if not s.readable:
            works.append({"@type": "CreativeWork", "name": f"{s.collection_label} (in the reading room)"})
            continue
        work = {"@type": "CreativeWork", "name": f"{s.link.document_label}, {s.link.page_label}",
                "url": s.manifest, "encodingFormat": "application/ld+json",
                "potentialAction": {"@type": "ViewAction", "target": s.viewer}}
        if s.link.kind == LINE:
            work["associatedMedia"] = {"@type": "ImageObject", "contentUrl": s.image}
        works.append(work)
    works += [{"@type": "CreativeWork", "name": m.label, "url": urls.manifest(m.collection, m.document),
               "encodingFormat": "application/ld+json"} for m in view.mentions]
    if works:
        doc["subjectOf"] = works
    return doc


def script_json(doc: dict[str, Any]) -> str:
    """JSON inside a <script> element: no `</` can close it early."""
    return json.dumps(doc, ensure_ascii=False).replace("</", "<\\/")


def transport_url(base: str, transport: str) -> str:
    return f"{base}/transports/{quote(transport, safe='')}"


__all__ = ["PORTRAIT", "PersonView", "Shown", "citation", "json_ld", "line_region", "restricted", "script_json",
           "shown", "size_for", "transport_url"]
