"""What every published document starts from: who publishes (`Institution`), where things are (`Urls`), and
the two value shapes IIIF uses everywhere (language maps, UTC times)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import quote as _quote

_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")  # what quote() leaves as it is (with its default safe "/")


def quote(text: str, safe: str = "/") -> str:
    """urllib's quote, with the common case (nothing to escape) answered by one regular expression: a
    discovery page or a part builds thousands of URLs."""
    if safe == "/" and _PLAIN.fullmatch(text):
        return text
    return _quote(text, safe=safe)


OPEN = "Open to everyone online."
DEFAULT_CONSULT = "in the reading room, or with an access token from the archive"


@dataclass(frozen=True)
class Institution:
    """Who publishes: the configured provider, attribution and language; and what the public face says of
    access: where each restricted tier can be consulted (`consult`, the sentence per tier, partners named)."""

    language: str = "en"
    attribution: str | None = None
    provider: str | None = None
    provider_homepage: str | None = None
    homepage: str | None = None  # template with {collection} and {document}
    record_url: str | None = None  # template of the archive's catalogue record, with {record} or {collection}
    consult: dict[str, str] = field(default_factory=dict)  # tier -> "in the reading room of ..."
    partners: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tier -> the institutions where it can be

    def access(self, tier: str, public: bool) -> str:
        """Where a collection of `tier` can be consulted, in one or two sentences (the same on every page)."""
        if public:
            return OPEN
        text = f"Can be consulted {self.consult.get(tier) or DEFAULT_CONSULT}."
        partners = self.partners.get(tier, ())
        if partners:
            text += f" Partner institutions: {', '.join(partners)}."
        return text

    def record(self, collection: str, record: str | None) -> str | None:
        """The URL of the collection's record in the archive's own catalogue, when there is a template."""
        if not self.record_url:
            return None
        return self.record_url.format(record=quote(record or collection, safe=""), collection=quote(collection))


@dataclass(frozen=True)
class Urls:
    base: str

    def image_service(self, collection: str, document: str, page: str) -> str:
        return f"{self.base}/iiif/3/{quote(f'{collection}/{document}/{page}', safe='')}"

    def top(self) -> str:
        return f"{self.base}/iiif/presentation/collections"

    def collection(self, collection: str) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/collection"

    def part(self, collection: str, number: int) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/collection/{number}"

    def collection_manifest(self, collection: str) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/manifest"

    def manifest(self, collection: str, document: str) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/{quote(document)}/manifest"

    def dublin_core(self, collection: str, document: str | None = None) -> str:
        """The Dublin Core record (oai_dc) of a document, or of a collection."""
        inner = f"{quote(collection)}/{quote(document)}" if document is not None else quote(collection)
        return f"{self.base}/iiif/presentation/{inner}/dc.xml"

    def search(self, collection: str | None) -> str:
        """The service searching the text of a collection's documents (None: of every collection)."""
        return f"{self.base}/iiif/search/collections" + (f"/{quote(collection)}" if collection else "")

    def canvas(self, collection: str, document: str, page: str) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/{quote(document)}/canvas/{quote(page)}"

    def range(self, collection: str, document: str) -> str:
        return f"{self.base}/iiif/presentation/{quote(collection)}/range/{quote(document)}"

    def names(self, collection: str, document: str, page: str) -> str:
        """The AnnotationPage of the names on a list page (served alone too)."""
        return f"{self.canvas(collection, document, page)}/names"

    def person(self, person_id: str) -> str:
        return f"{self.base}/persons/{quote(person_id, safe='')}"

    # the pages for people (web/home.py)

    def collection_page(self, collection: str) -> str:
        return f"{self.base}/collections/{quote(collection, safe='')}"

    def document_page(self, collection: str, document: str) -> str:
        """The document in the viewer."""
        return f"{self.base}/view/{quote(collection, safe='')}/{quote(document, safe='')}"


def lang_map(text: str, language: str) -> dict[str, list[str]]:
    return {language: [text]}


def nav_date(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
