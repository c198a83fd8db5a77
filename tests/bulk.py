"""A catalogue of a given size in the shape ingest writes, by bulk SQL, for tests at scale."""

from __future__ import annotations

from sqlalchemy import insert

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Collection, Image, now, sort_key
from iiif_server.db.models import Document as DocumentRow


def fill(catalogue: Catalogue, cid: str, documents: int, pages: int, tier: str = "public",
         staff_every: int = 0) -> None:
    """A collection in the shape ingest writes, by bulk SQL; every `staff_every`-th document is staff-only."""
    stamp = now()
    described = {"summary": None, "metadata_pairs": [], "rights": None, "required_statement": None,
                 "nav_date": None, "created": stamp, "updated": stamp}
    with catalogue.engine.begin() as conn:
        conn.execute(insert(Collection.__table__), [{
            "id": cid, "label": f"Collection {cid}", "tier": tier, "revision": 1, "document_count": documents,
            "image_count": documents * pages, **described}])
        docs = []
        for d in range(documents):
            ident = f"doc{d}"
            staff = staff_every and d % staff_every == staff_every - 1
            docs.append({"collection_id": cid, "ident": ident, "sort_key": sort_key(ident), "position": d,
                         "label": f"Dossier {d}", "tier": "staff" if staff else None, **described})
        conn.execute(insert(DocumentRow.__table__), docs)
        pks = dict(conn.exec_driver_sql(
            "SELECT ident, pk FROM documents WHERE collection_id = %s" % ("?" if conn.dialect.name == "sqlite"
                                                                         else "%(c)s"),
            (cid,) if conn.dialect.name == "sqlite" else {"c": cid}).all())
        images = [{"document_pk": pks[f"doc{d}"], "ident": f"p{p}", "position": p, "label": str(p + 1),
                   "width": 2000 + d % 7, "height": 3000, "checksum": "0" * 64, "source_path": f"/m/{d}/{p}.tif",
                   "source_page": 0, "source_size": 1, "source_mtime": 0.0, "tier": None,
                   "created": stamp, "updated": stamp}
                  for d in range(documents) for p in range(pages)]
        for n in range(0, len(images), 20_000):
            conn.execute(insert(Image.__table__), images[n : n + 20_000])
