"""The world of the Content Search tests (not a test module): a collection of transport lists whose pages
have ALTO and CSV text, at several tiers. The fixture `setup` (tests/search/conftest.py) makes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from iiif_server import config
from iiif_server.auth.tokens import TokenStore
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Document, Image
from iiif_server.search.importer import import_text
from iiif_server.search.store import TextStore
from iiif_server.web.app import create_app

SECRET = "s" * 40
LAYOUT = {  # document: (tier, {page: tier})
    "list": (None, {"p1": None, "p2": None, "p3": "reading-room"}),
    "rr": ("reading-room", {"p1": None, "p2": "public"}),
    "secret": ("staff", {"p1": None}),
    "open": (None, {"p1": None}),
}
ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
 <Description><MeasurementUnit>pixel</MeasurementUnit></Description>
 <Layout><Page WIDTH="{w}" HEIGHT="{h}" PHYSICAL_IMG_NR="1"><PrintSpace>
  <TextBlock><TextLine HPOS="100" VPOS="200" WIDTH="900" HEIGHT="40">
   <String CONTENT="{first}" HPOS="100" VPOS="200" WIDTH="120" HEIGHT="40"/><SP/>
   <String CONTENT="{name}" HPOS="240" VPOS="202" WIDTH="160" HEIGHT="38"/><SP/>
   <String CONTENT="Paris" HPOS="420" VPOS="200" WIDTH="100" HEIGHT="40"/>
  </TextLine></TextBlock>
 </PrintSpace></Page></Layout>
</alto>
"""


def write_alto(root: Path, document: str, page: str, name: str, first: str = "Szmul",
               size: tuple[int, int] = (2000, 1000)) -> None:
    path = root / document / f"{page}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ALTO.format(w=size[0], h=size[1], name=name, first=first), encoding="utf-8")


async def make_transports(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, TokenStore, Catalogue]]:
    """A public collection of transport lists with reading-room and staff parts, its text imported (ALTO
    and CSV); a client from outside every network, the token store and the catalogue."""
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", database=database_url, demo=False,
                               secret_key=SECRET, networks=("reading-room=10.9.0.0/16",))
    app = create_app(settings)
    cat = Catalogue(database_url)
    with cat.session() as s:
        s.add(Collection(id="transports", label="Transport lists", tier="public", metadata_pairs=[]))
        s.flush()
        for n, (did, (dtier, pages)) in enumerate(LAYOUT.items()):
            doc = Document(collection_id="transports", ident=did, label=did, position=n, tier=dtier,
                           metadata_pairs=[])
            s.add(doc)
            s.flush()
            for p, (pid, ptier) in enumerate(pages.items()):
                # pixels are half the ALTO page's size: boxes must be scaled
                s.add(Image(document_pk=doc.pk, ident=pid, position=p, label=pid, width=1000, height=500,
                            checksum="0" * 64, source_path="-", source_size=1, source_mtime=0, tier=ptier))
    src = tmp_path / "text"
    write_alto(src, "list", "p1", "Lévy")
    write_alto(src, "list", "p2", "Goldsztajn", first="Chaja")
    write_alto(src, "list", "p3", "Lévy", first="Rywka")  # a reading-room page of a public document
    write_alto(src, "rr", "p1", "Lévy", first="Abram")  # a reading-room document
    write_alto(src, "rr", "p2", "Lewin", first="Moszek")  # ... with one public page
    write_alto(src, "secret", "p1", "Lévy", first="Staff")
    write_alto(src, "open", "p1", "Mendelovitch")
    (src / "names.csv").write_text("document,page,text,x,y,w,h,kind\n"
                                   "list,p2,\"LÉVY, Szmul\",10,20,30,40,name\n"
                                   "list,p1,Mendelowicz Icek,,,,,name\n", encoding="utf-8")
    report = import_text(TextStore(cat), src, "transports")
    assert report.errors == [] and report.pages == 9
    store = TokenStore(cat, SECRET)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, store, cat
    cat.engine.dispose()


# -- the name lists of issue 20: entries, particles, spellings ---------------------------------------------------

NAMES_CSV = [  # (page, text): one row each, in this order (a phrase must never glue two rows)
    ("p1", "Nemes, Boruch"), ("p1", "Szwarc, Dawid"), ("p1", "Goldberg, Abram"), ("p1", "Abramowicz, Chaja"),
    ("p1", "De Wolf, Maurice"), ("p1", "Van Praag, Sara"), ("p1", "Van Dijk, Jozef"), ("p1", "Wijnberg, Mozes"),
    ("p1", "Krause, Ernst"), ("p2", "Goldsztajn, Icek"), ("p2", "Goldes, Perla"), ("p2", "Golds, Hersz"),
    ("p2", "Vanderberg, Leo"), ("p2", "Szwarc, Boruch"), ("p2", "Łódź, Chil"),
]
for _n in range(30):  # many other entries before Krause's typo would be found in page order
    NAMES_CSV.append(("p2", f"Kramer{'x' * (_n % 5)}, Keil{_n}"))

LINES = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout><Page WIDTH="1000" HEIGHT="1000"><PrintSpace>
 <TextBlock>
  <TextLine><String CONTENT="Goldsztajn" HPOS="10" VPOS="100" WIDTH="200" HEIGHT="30"/><SP/>
   <String CONTENT="Chaja" HPOS="220" VPOS="100" WIDTH="100" HEIGHT="30"/><SP/>
   <String CONTENT="Paris" HPOS="330" VPOS="100" WIDTH="100" HEIGHT="30"/></TextLine>
  <TextLine><String CONTENT="Icek" HPOS="10" VPOS="200" WIDTH="80" HEIGHT="30"/><SP/>
   <String CONTENT="Abraham" HPOS="900" VPOS="200" WIDTH="90" HEIGHT="30"/></TextLine>
  <TextLine><String CONTENT="Levy" HPOS="10" VPOS="300" WIDTH="60" HEIGHT="30"/><SP/>
   <String CONTENT="Bruxelles" HPOS="80" VPOS="300" WIDTH="100" HEIGHT="30"/></TextLine>
 </TextBlock>
 <TextBlock>
  <TextLine><String CONTENT="Nemes" HPOS="10" VPOS="500" WIDTH="80" HEIGHT="30"/><SP/>
   <String CONTENT="Boruch" HPOS="900" VPOS="500" WIDTH="90" HEIGHT="30"/></TextLine>
 </TextBlock>
 <TextBlock>
  <TextLine><String CONTENT="Szwarc" HPOS="10" VPOS="600" WIDTH="80" HEIGHT="30"/><SP/>
   <String CONTENT="Dawid" HPOS="100" VPOS="600" WIDTH="90" HEIGHT="30"/></TextLine>
 </TextBlock>
</PrintSpace></Page></Layout></alto>
"""


def write_lists(root: Path) -> None:
    """A CSV name index of `index` (pages p1, p2) and an ALTO page `ocr/p1` (tests/search/search_world.py)."""
    import csv

    root.mkdir(parents=True, exist_ok=True)
    with (root / "names.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["document", "page", "text", "x", "y", "w", "h", "kind"])
        for n, (page, text) in enumerate(NAMES_CSV):
            writer.writerow(["index", page, text, 10, 10 + 20 * n, 300, 18, "name"])
    (root / "ocr").mkdir(exist_ok=True)
    (root / "ocr" / "p1.xml").write_text(LINES, encoding="utf-8")


async def make_lists(database_url: str, tmp_path: Path, extra: dict[str, tuple[str | None, str | None]] | None = None
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, TokenStore, Catalogue]]:
    """A public collection `lists` with the name index `index` (CSV) and an OCR page `ocr`; the client, token store
    and catalogue. `extra`: more documents {ident: (document tier, tier of its page p1)} with no text yet."""
    settings = config.Settings(data_dir=tmp_path, images=tmp_path / "images", database=database_url, demo=False,
                               secret_key=SECRET, networks=("reading-room=10.9.0.0/16",))
    app = create_app(settings)
    cat = Catalogue(database_url)
    docs = {"index": (None, {"p1": None, "p2": None}), "ocr": (None, {"p1": None})}
    for ident, (dtier, ptier) in (extra or {}).items():
        docs[ident] = (dtier, {"p1": ptier, "p2": None})
    with cat.session() as s:
        s.add(Collection(id="lists", label="Lists", tier="public", metadata_pairs=[]))
        s.flush()
        for n, (did, (dtier, pages)) in enumerate(docs.items()):
            doc = Document(collection_id="lists", ident=did, label=did, position=n, tier=dtier, metadata_pairs=[])
            s.add(doc)
            s.flush()
            for p, (pid, ptier) in enumerate(pages.items()):
                s.add(Image(document_pk=doc.pk, ident=pid, position=p, label=pid, width=1000, height=1000,
                            checksum="0" * 64, source_path="-", source_size=1, source_mtime=0, tier=ptier))
    src = tmp_path / "lists-text"
    write_lists(src)
    report = import_text(TextStore(cat), src, "lists")
    assert report.errors == [], report.errors
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, TokenStore(cat, SECRET), cat
    cat.engine.dispose()
