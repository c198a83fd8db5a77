"""Dublin Core records (the `oai_dc` format of OAI-PMH: simple Dublin Core's fifteen elements in the oai_dc
container) of documents and collections, linked by their Presentation documents' `seeAlso`, for aggregators
that read a record per object (Europeana, EHRI).

A document's record: its title, description, date, rights (the URI, and the required statement), the
publisher, its manifest's and its viewer page's URLs as identifiers, the collection it is part of as a
relation. A metadata pair named after a Dublin Core element (Creator, Subject, Language, Coverage ...)
fills that element; the others are descriptions, `name: value`. A collection's record holds its description
for everyone, as its page shows it.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from iiif_server.db.models import Collection as CollectionRow
from iiif_server.db.models import Document as DocumentRow
from iiif_server.manifests.base import Institution, Urls
from iiif_server.manifests.described import extent

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
# simple Dublin Core's elements, in the order the oai_dc schema lists them
ELEMENTS = ("title", "creator", "subject", "description", "publisher", "contributor", "date", "type", "format",
            "identifier", "source", "language", "relation", "coverage", "rights")
for _prefix, _uri in (("oai_dc", OAI_DC), ("dc", DC), ("xsi", XSI)):
    ET.register_namespace(_prefix, _uri)  # the prefixes harvesters' examples use (any would be as valid)


def _record(elements: list[tuple[str, str]]) -> bytes:
    """The oai_dc record of (element, value) pairs, elements in the schema's order, values as given."""
    root = ET.Element(f"{{{OAI_DC}}}dc", {f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION})
    order = {name: n for n, name in enumerate(ELEMENTS)}
    for name, value in sorted(elements, key=lambda e: order[e[0]]):  # stable: values keep their order
        if value and value.strip():
            ET.SubElement(root, f"{{{DC}}}{name}").text = value.strip()
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _pairs(pairs: list[list[str]] | None) -> list[tuple[str, str]]:
    """Metadata pairs: those named after an element fill it; the others are descriptions."""
    out = []
    for pair in pairs or []:
        if len(pair) != 2:
            continue
        name, value = str(pair[0]).strip(), str(pair[1])
        element = name.casefold()
        out.append((element, value) if element in ELEMENTS else ("description", f"{name}: {value}"))
    return out


def _rights(inst: Institution, rights: str | None, statement: str | None) -> list[tuple[str, str]]:
    return [("rights", rights or ""), ("rights", statement or inst.attribution or "")]


def document_record(urls: Urls, inst: Institution, coll: CollectionRow, doc: DocumentRow) -> bytes:
    elements = [("title", doc.label or doc.ident), ("description", doc.summary or ""),
                ("date", doc.nav_date.date().isoformat() if doc.nav_date else ""),
                ("publisher", inst.provider or ""), ("type", "Image"),
                ("identifier", urls.manifest(coll.id, doc.ident)),
                ("identifier", urls.document_page(coll.id, doc.ident)),
                ("relation", urls.collection(coll.id)), *_pairs(doc.metadata_pairs),
                *_rights(inst, doc.rights or coll.rights, doc.required_statement or coll.required_statement)]
    return _record(elements)


def collection_record(urls: Urls, inst: Institution, coll: CollectionRow, public: bool) -> bytes:
    record = inst.record(coll.id, coll.record)
    elements = [("title", coll.label or coll.id), ("description", coll.summary or ""),
                ("description", coll.description or ""), ("date", coll.dates or ""),
                ("description", f"Extent: {extent(coll)}"),
                ("description", f"Provenance: {coll.provenance}" if coll.provenance else ""),
                ("description", f"Access: {inst.access(coll.tier, public)}"),
                ("publisher", inst.provider or ""), ("type", "Collection"),
                ("identifier", urls.collection(coll.id)), ("identifier", urls.collection_page(coll.id)),
                ("identifier", record or ""), *_pairs(coll.metadata_pairs),
                *_rights(inst, coll.rights, coll.required_statement)]
    return _record(elements)
