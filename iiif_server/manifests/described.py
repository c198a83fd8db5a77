"""The descriptive properties of Presentation documents (label, summary, metadata, rights, requiredStatement,
provider, homepage, seeAlso), as iiif-prezi3 models; and a collection's description as every page shows it
(`collection_pairs`), so that the HTML pages and the IIIF documents say the same."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from iiif_prezi3 import Homepage, KeyValueString, Provider

from iiif_server.db.models import Collection as CollectionRow
from iiif_server.db.models import Document as DocumentRow
from iiif_server.manifests.base import Institution, Urls, lang_map, nav_date

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"  # the profile of the Dublin Core records (seeAlso)


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def extent(coll: CollectionRow) -> str:
    return f"{counted(coll.document_count, 'document')}, {counted(coll.image_count, 'page')}"


def collection_pairs(coll: CollectionRow, inst: Institution, public: bool) -> list[tuple[str, str]]:
    """A collection's description as metadata pairs, in the order every page shows them: the full
    description, dates, extent, provenance, where it can be consulted, then the archive's own pairs."""
    pairs = [("Description", coll.description), ("Dates", coll.dates), ("Extent", extent(coll)),
             ("Provenance", coll.provenance), ("Access", inst.access(coll.tier, public))]
    own = [(str(pair[0]), str(pair[1])) for pair in coll.metadata_pairs or [] if len(pair) == 2]
    return [(k, v) for k, v in pairs if v] + own


def _pairs(pairs: list[tuple[str, str]], lang: str) -> list[KeyValueString]:
    return [KeyValueString(label=lang_map(k, lang), value=lang_map(v, lang)) for k, v in pairs]


def _common(urls: Urls, inst: Institution, label: str, statement: str | None, rights: str | None) -> dict[str, Any]:
    lang = inst.language
    fields: dict[str, Any] = {"label": lang_map(label, lang)}
    statement = statement or inst.attribution
    if statement:
        fields["requiredStatement"] = KeyValueString(label=lang_map("Attribution", lang),
                                                     value=lang_map(statement, lang))
    if rights:
        fields["rights"] = rights
    if inst.provider:
        agent: dict[str, Any] = {"id": inst.provider_homepage or f"{urls.base}/",
                                 "type": "Agent", "label": lang_map(inst.provider, lang)}
        if inst.provider_homepage:
            agent["homepage"] = [Homepage(id=inst.provider_homepage, type="Text",
                                          label=lang_map(inst.provider, lang), format="text/html")]
        fields["provider"] = [Provider(**agent)]
    return fields


def _homepage(url: str, label: str, lang: str) -> Homepage:
    return Homepage(id=url, type="Text", label=lang_map(label, lang), format="text/html")


def _see_also(url: str, label: str, lang: str) -> dict[str, Any]:
    return {"id": url, "type": "Dataset", "label": lang_map(label, lang), "format": "application/xml",
            "profile": OAI_DC}


def _template(inst: Institution, collection: str, document: str | None) -> str | None:
    if not inst.homepage:
        return None
    return inst.homepage.format(collection=quote(collection), document=quote(document or ""))


def collection_fields(urls: Urls, inst: Institution, coll: CollectionRow, public: bool) -> dict[str, Any]:
    """A collection's descriptive properties: its description for everyone (see `collection_pairs`), its
    page and its record in the archive's catalogue as homepages, its Dublin Core record as seeAlso."""
    lang, label = inst.language, coll.label or coll.id
    fields = _common(urls, inst, label, coll.required_statement, coll.rights)
    if coll.summary:
        fields["summary"] = lang_map(coll.summary, lang)
    fields["metadata"] = _pairs(collection_pairs(coll, inst, public), lang)
    if coll.nav_date:
        fields["navDate"] = nav_date(coll.nav_date)
    pages = [_homepage(urls.collection_page(coll.id), label, lang)]
    record = inst.record(coll.id, coll.record)
    if record:
        pages.append(_homepage(record, f"{label}: the record in the archive's catalogue", lang))
    template = _template(inst, coll.id, None)
    if template:
        pages.append(_homepage(template, label, lang))
    fields["homepage"] = pages
    fields["seeAlso"] = [_see_also(urls.dublin_core(coll.id), f"{label}: Dublin Core", lang)]
    return fields


def document_fields(urls: Urls, inst: Institution, coll: CollectionRow, doc: DocumentRow,
                    withheld: bool = False) -> dict[str, Any]:
    """A document's descriptive properties; rights and required statement fall back to the collection's.
    `withheld`: for a requester not cleared for it, nothing of its own description (label, summary,
    metadata, date, Dublin Core record): the manifest then only carries what the viewer needs to offer a
    sign-in, labelled by the identifier the requester already has in its URL."""
    lang = inst.language
    label = doc.ident if withheld else doc.label or doc.ident
    fields = _common(urls, inst, label, doc.required_statement or coll.required_statement, doc.rights or coll.rights)
    pages = [_homepage(urls.document_page(coll.id, doc.ident), label, lang)]
    template = _template(inst, coll.id, doc.ident)
    if template:
        pages.append(_homepage(template, label, lang))
    fields["homepage"] = pages
    if withheld:
        return fields
    if doc.summary:
        fields["summary"] = lang_map(doc.summary, lang)
    if doc.metadata_pairs:
        fields["metadata"] = _pairs([(str(k), str(v)) for k, v in doc.metadata_pairs], lang)
    if doc.nav_date:
        fields["navDate"] = nav_date(doc.nav_date)
    fields["seeAlso"] = [_see_also(urls.dublin_core(coll.id, doc.ident), f"{label}: Dublin Core", lang)]
    return fields
