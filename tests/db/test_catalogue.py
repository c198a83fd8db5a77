"""The catalogue schema, its migrations, tiers and change bookkeeping, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from support import page_tier

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Base, Collection, Document, Image, effective_tier
from iiif_server.errors import BadTarget, NotFound


def add_collection(cat: Catalogue, cid: str = "family", tier: str = "public", docs: int = 2, pages: int = 2) -> None:
    with cat.session() as s:
        s.add(Collection(id=cid, label=cid.title(), tier=tier, metadata_pairs=[]))
        s.flush()
        for d in range(docs):
            doc = Document(collection_id=cid, ident=f"d{d}", label=f"Doc {d}", position=d, metadata_pairs=[])
            s.add(doc)
            s.flush()
            for p in range(pages):
                s.add(Image(document_pk=doc.pk, ident=f"p{p}", position=p, label=str(p + 1), width=100 + p,
                            height=200, checksum="0" * 64, source_path=f"/m/{d}/{p}.tif", source_size=1,
                            source_mtime=1.0))


def test_migrations_build_exactly_the_models_schema(catalogue: Catalogue) -> None:
    tables = set(inspect(catalogue.engine).get_table_names())
    assert {"collections", "documents", "images", "activities", "catalogue_state", "alembic_version"} <= tables
    with catalogue.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # only type-affinity noise is tolerated; no missing or extra tables, columns or constraints
    structural = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")
                  # SQLite's FTS5 trigram index of the search vocabulary and its shadow tables: not models
                  and not (d[0] == "remove_table" and d[1].name.startswith("text_vocab_trgm"))]
    assert structural == []


def test_upgrade_is_idempotent_and_keeps_the_data(catalogue: Catalogue) -> None:
    add_collection(catalogue)
    catalogue.upgrade()
    assert [c.id for c in catalogue.collections()] == ["family"]


def test_pages_come_in_document_then_page_order(catalogue: Catalogue) -> None:
    add_collection(catalogue, docs=2, pages=3)
    pages = catalogue.pages("family")
    assert [(p.document, p.ident) for p in pages] == [(f"d{d}", f"p{p}") for d in range(2) for p in range(3)]
    assert [p.ident for p in catalogue.pages("family", "d1")] == ["p0", "p1", "p2"]


def test_tier_is_inherited_from_document_then_collection(catalogue: Catalogue) -> None:
    add_collection(catalogue, tier="reading-room")
    assert page_tier(catalogue, "family/d0/p0") == "reading-room"
    catalogue.set_tier("family/d0", "public")
    assert page_tier(catalogue, "family/d0/p0") == "public"
    catalogue.set_tier("family/d0/p1", "staff")
    assert page_tier(catalogue, "family/d0/p1") == "staff"
    assert page_tier(catalogue, "family/d1/p0") == "reading-room"
    assert page_tier(catalogue, "family/nope/p0") == "reading-room"  # unknown under a collection: its tier
    assert effective_tier(None, None, "staff") == "staff"


def test_every_change_bumps_the_revision_and_the_version(catalogue: Catalogue) -> None:
    add_collection(catalogue)
    rev, version = catalogue.revision("family"), catalogue.version()
    catalogue.set_tier("family", "reading-room")
    assert catalogue.revision("family") == rev + 1
    assert catalogue.version() == version + 1
    # a second handle on the same database (another replica) sees the change at once
    other = Catalogue(catalogue.url)
    assert other.revision("family") == rev + 1
    other.engine.dispose()


def test_moving_out_of_public_shows_as_remove_and_back_as_add_in_the_public_stream(catalogue: Catalogue) -> None:
    """A change of tier is a change of permissions (Change Discovery 1.0, 2.1.4): neither Create nor Delete."""
    add_collection(catalogue)
    catalogue.set_tier("family/d0", "staff")
    _, public = catalogue.activities(1, 100, public_only=True)
    assert [(a.type, a.document_ident) for a in public] == [("Remove", "d0")]
    catalogue.set_tier("family/d0", "public")
    _, public = catalogue.activities(1, 100, public_only=True)
    assert [(a.type, a.document_ident) for a in public][-1] == ("Add", "d0")
    _, everything = catalogue.activities(1, 100, public_only=False)
    assert len(everything) > len(public)


def test_bad_tier_and_unknown_targets_are_refused(catalogue: Catalogue) -> None:
    add_collection(catalogue)
    with pytest.raises(ValueError, match="unknown tier"):
        catalogue.set_tier("family", "secret")
    for target in ("nope", "family/nope", "family/d0/nope"):
        with pytest.raises(NotFound):
            catalogue.set_tier(target, "staff")
    with pytest.raises(BadTarget):
        catalogue.set_tier("family/d0/p0/extra", "staff")
    with catalogue.sessions() as s:
        assert s.scalars(select(Activity)).all() == []


def test_deleting_a_collection_removes_its_documents_and_images(catalogue: Catalogue) -> None:
    add_collection(catalogue)
    with catalogue.session() as s:
        s.delete(s.get(Collection, "family"))
    with catalogue.sessions() as s:
        assert s.scalars(select(Document)).all() == []
        assert s.scalars(select(Image)).all() == []


def test_postgresql_sessions_run_without_jit(catalogue: Catalogue) -> None:
    """PostgreSQL's JIT spent seconds compiling a collection search's statement for milliseconds of work."""
    if catalogue.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with catalogue.engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
