"""The `/` page: the collections and loose images the requester may see, nothing more.

What it lists depends on who asks (hidden tiers appear only with clearance), so it is never
stored by shared caches.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from .auth.policy import Access, Policy
from .manifests.catalogue import Collection
from .manifests.presentation import CANVAS_LIMIT
from .tiles.sources import SourceStore

LIMIT = 1000  # images listed
HEADERS = {"Cache-Control": "private, max-age=0", "Vary": "Authorization, Cookie"}


def visible_parts(policy: Policy | None, access: Access | None, collections: list[Collection],
                  source: SourceStore) -> tuple[list[Collection], list[str]]:
    """Runs in a worker thread: the collections this requester may see, and the loose images it may open."""
    shown = [c for c in collections if policy is None or access is None or policy.visible(access, c.tier, c.id)]
    images = []
    for ident in source.loose_images({c.id for c in collections}):
        if policy is None or access is None or policy.tiers.allows(access.clearance(policy.tiers, None),
                                                                     policy.tier_of(ident)):
            images.append(ident)
            if len(images) >= LIMIT:
                break
    return shown, images


def render(collections: list[Collection], images: list[str]) -> str:
    coll_rows = []
    for c in collections:
        links = [f'<a href="/iiif/presentation/{quote(c.id)}/collection">collection</a>']
        if c.image_count <= CANVAS_LIMIT:
            links.append(f'<a href="/iiif/presentation/{quote(c.id)}/manifest">manifest</a>')
        coll_rows.append(f"<li>{html.escape(c.label or c.id)}: {' · '.join(links)}</li>")
    rows = "\n".join(
        f'<li>{html.escape(i)}: <a href="/iiif/3/{quote(i, safe="")}/info.json">3.0 info.json</a>'
        f' · <a href="/iiif/2/{quote(i, safe="")}/info.json">2.1 info.json</a>'
        f' · <a href="/iiif/3/{quote(i, safe="")}/full/400,/0/default.jpg">view</a></li>'
        for i in images
    )
    return (
        "<!doctype html><meta charset=utf-8><title>IIIF server</title><h1>IIIF server</h1>"
        f'<h2>Collections</h2><p><a href="/iiif/presentation/collections">all collections</a></p>'
        f"<ul>{''.join(coll_rows)}</ul><h2>Images</h2><p>{len(images)} images</p><ul>{rows}</ul>"
    )
