"""Catalogue: collections -> documents -> images, in SQL (SQLite or PostgreSQL).

Every change goes through `Catalogue` so that it bumps the revision of what
changed (the cache key of the Presentation documents, shared by all replicas
through the database) and records a Change Discovery activity.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from iiif_server.db import stamps
from iiif_server.db.descriptions import Descriptions
from iiif_server.db.ingest import IngestWrites
from iiif_server.db.models import (
    TIERS,
    UNPLACED,
    WHOLE_MANIFEST_PAGES,
    Activity,
    Collection,
    Document,
    Image,
    State,
    effective_tier,
    now,
)
from iiif_server.db.persons import PersonWrites
from iiif_server.db.withdrawals import Withdrawals
from iiif_server.errors import Busy, NotFound, Target

ACTIVITY_LOCK = 0x11F5AC7  # PostgreSQL advisory lock key: one recording transaction at a time
MIGRATION_LOCK = 0x11F5AC8  # and one migrating transaction at a time
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class DocumentEntry:
    """One document as a listing shows it: label, tier and its first page (None without pages)."""

    ident: str
    label: str
    tier: str | None
    position: int
    first: PageRow | None


@dataclass(frozen=True)
class PageRow:
    document: str
    ident: str
    label: str
    width: int
    height: int
    tier: str | None
    doc_tier: str | None = None


def tier_steps(old: str, new: str) -> list[tuple[str, str]]:
    """The activities (kind, tier) of a change of tier: into public an Add (the public stream's harvesters
    include it), out of it a Remove (they drop it) and an Update in the restricted stream; else an Update."""
    if old != new and new == "public":
        return [("Add", "public")]
    if old != new and old == "public":
        return [("Remove", "public"), ("Update", new)]
    return [("Update", new)]


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # PostgreSQL's JIT compiles a search's statement when its estimated cost is high (correlated look-ups of
    # words): seconds of compiling for milliseconds of work
    connect_args = {"options": "-c jit=off"} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers are not blocked by an ingest
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def newest_migration() -> str:
    """The head revision: migration files are named by their revision id (`0004_text.py` is `0004`)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def at_head(engine: Engine) -> bool:
    """Whether the schema is current, asked without loading Alembic (commands start faster)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_migration()
    except Exception:  # noqa: BLE001 - no table yet, or any driver error: let Alembic decide
        return False


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates it on an empty database)."""
    if at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # processes starting together on several hosts: one migrates,
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})  # the rest wait
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")  # at head already (another process did it): nothing to do


def open_catalogue(url: str, tiers: tuple[str, ...] = TIERS) -> Catalogue:
    """A catalogue at `url`; a SQLite file's folder is created."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Catalogue(url, tiers)


class Catalogue(IngestWrites, Withdrawals, PersonWrites, Descriptions):
    def __init__(self, url: str, tiers: tuple[str, ...] = TIERS) -> None:
        self.url = url
        self.tiers = tiers  # the configured tiers, lowest first
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        from iiif_server.db.labels import watch

        watch()
        stamps.watch(self.sessions)  # activities' end times, at the commit

    def upgrade(self) -> None:
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed at the end, rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    # -- change bookkeeping -------------------------------------------------

    def touch(self, session: Session, collection_id: str) -> None:
        """Mark a collection (and the catalogue) changed: new revision, new version."""
        session.execute(
            update(Collection).where(Collection.id == collection_id).values(revision=Collection.revision + 1)
        )
        self.bump(session)

    @staticmethod
    def bump(session: Session) -> None:
        """A new catalogue version: every replica's caches and access snapshot reload."""
        state = session.get(State, "version")
        if state is None:
            session.add(State(key="version", value=1))
        else:
            state.value = State.value + 1

    @staticmethod
    def lock_activities(session: Session) -> None:
        """Serialise the transactions that record activities, before their first id is drawn.

        Ids then become visible in the order they were drawn: once an id beyond a discovery
        page's range is committed, no lower id can still arrive, so the page is final. SQLite
        has a single writer already; PostgreSQL takes a transaction-scoped advisory lock.
        A transaction that writes rows before its first activity should call this first, so
        that it never holds a row another recorder waits for while it waits for the lock.
        """
        transaction = session.get_transaction()
        if session.info.get("activities_locked") is transaction:
            return
        if session.get_bind().dialect.name == "postgresql":
            with session.no_autoflush:  # rows written after the lock, never locked while waiting for it
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ACTIVITY_LOCK})
        session.info["activities_locked"] = transaction
        stamps.mark(session)

    @contextmanager
    def run_lock(self, collection_id: str) -> Iterator[None]:
        """One ingest of a collection at a time, on every host that shares this catalogue: PostgreSQL's session
        advisory lock, held on a connection of its own for the run (released if the process dies, or its host
        stops answering; so never through a pooler in transaction mode, which would hand it on); on SQLite
        (one host), a lock file beside the database. A second run is refused at once (Busy), never queued."""
        key = int.from_bytes(hashlib.blake2b(f"ingest:{collection_id}".encode(), digest_size=8).digest(), "big",
                             signed=True)
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                # a host that vanishes (power, network) closes no connection: the server probes this idle one,
                # and frees the lock within about a minute instead of the system's two hours
                for name, value in (("idle", 30), ("interval", 10), ("count", 3)):
                    conn.execute(text(f"SET tcp_keepalives_{name} = {value}"))
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                conn.commit()  # the lock is the session's: idle for the run, not idle in a transaction (which
                if not got:  # a server's idle_in_transaction_session_timeout would end, and the lock with it)
                    raise Busy(f"another ingest of collection {collection_id!r} is running: let it finish, or stop it")
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
            return
        database = self.engine.url.database
        base = Path(database) if database and database != ":memory:" else Path(tempfile.gettempdir()) / "catalogue"
        with open(base.with_name(f"{base.name}.run-{key & 0xFFFFFFFFFFFF:012x}.lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise Busy(f"another ingest of collection {collection_id!r} is running: let it finish, or stop it"
                           ) from None
            yield

    def record(self, session: Session, kind: str, object_type: str, collection_id: str,
               document: str | None, tier: str) -> None:
        self.lock_activities(session)
        session.add(Activity(type=kind, object_type=object_type, collection_id=collection_id,
                             document_ident=document, tier=tier, end_time=now()))
        if tier == "public":
            self.count_public(session, 1)

    @staticmethod
    def count_public(session: Session, n: int) -> None:
        """Keep Change Discovery's totalItems: never counted per request."""
        if n:
            session.execute(update(State).where(State.key == "public_activities").values(value=State.value + n))

    @staticmethod
    def count_items(session: Session, collection_id: str, documents: int, images: int) -> None:
        """Keep a collection's document and image counts with every change of its contents."""
        if documents or images:
            session.execute(update(Collection).where(Collection.id == collection_id).values(
                document_count=Collection.document_count + documents, image_count=Collection.image_count + images))

    @staticmethod
    def whole_pages(session: Session, collection_id: str) -> int:
        """The collection's pages now (its kept count, after this transaction's changes so far)."""
        session.flush()
        return session.scalar(select(Collection.image_count).where(Collection.id == collection_id)) or 0

    def record_whole(self, session: Session, collection_id: str, tier: str, before: int, after: int,
                     changed: bool = True) -> None:
        """The whole-collection manifest exists while the collection has pages and no more than
        WHOLE_MANIFEST_PAGES (else it answers 404): announce its coming (Create), its going (Delete) and a change
        of what it shows (Update), and nothing while it does not exist."""
        existed, exists = 0 < before <= WHOLE_MANIFEST_PAGES, 0 < after <= WHOLE_MANIFEST_PAGES
        if exists and not existed:
            self.record(session, "Create", "Manifest", collection_id, None, tier)
        elif existed and not exists:
            self.record(session, "Delete", "Manifest", collection_id, None, tier)
        elif exists and changed:
            self.record(session, "Update", "Manifest", collection_id, None, tier)

    def record_tier_change(self, session: Session, object_type: str, collection_id: str,
                           document: str | None, old: str, new: str) -> None:
        """A move into public is an Add to the public stream, a move out of it a Remove: a change of permissions,
        neither a creation nor a deletion (Change Discovery 1.0, 2.1.4). See `tier_steps`."""
        for kind, tier in tier_steps(old, new):
            self.record(session, kind, object_type, collection_id, document, tier)

    def change_collection_tier(self, session: Session, coll: Collection, tier: str) -> None:
        """Set a collection's tier, recording it for the collection, its manifest and every
        document that inherits the tier (those with a tier of their own keep it).

        The documents' activities are written by INSERT ... SELECT, in document order, with
        the same rule as `record_tier_change`: no document is loaded, whatever the collection's size.
        """
        old = coll.tier
        coll.tier = tier
        self.record_tier_change(session, "Collection", coll.id, None, old, tier)
        if 0 < self.whole_pages(session, coll.id) <= WHOLE_MANIFEST_PAGES:  # its whole manifest, where there is one
            self.record_tier_change(session, "Manifest", coll.id, None, old, tier)
        session.flush()
        steps = tier_steps(old, tier)  # per document, in the order record_tier_change writes them
        inserted = self._insert_document_activities(session, coll.id, steps)
        public_steps = sum(1 for _, t in steps if t == "public")
        self.count_public(session, inserted // len(steps) * public_steps)

    @staticmethod
    def _insert_document_activities(session: Session, collection_id: str, steps: list[tuple[str, str]]) -> int:
        """One activity per step for every document of the collection that inherits its tier."""
        params: dict[str, Any] = {"cid": collection_id, "at": now()}
        rows = []
        for n, (kind, tier) in enumerate(steps):
            rows.append(f"SELECT {n} AS step, :kind{n} AS kind, :tier{n} AS tier")
            params[f"kind{n}"], params[f"tier{n}"] = kind, tier
        statement = text(
            "INSERT INTO activities (type, object_type, collection_id, document_ident, tier, end_time) "
            "SELECT s.kind, 'Manifest', d.collection_id, d.ident, s.tier, :at "
            f"FROM documents d CROSS JOIN ({' UNION ALL '.join(rows)}) s "
            "WHERE d.collection_id = :cid AND d.tier IS NULL "
            "ORDER BY d.position, d.pk, s.step"
        )
        return session.execute(statement, params).rowcount or 0

    # -- reads ----------------------------------------------------------------

    def version(self) -> int:
        with self.sessions() as session:
            state = session.get(State, "version")
            return state.value if state else 0

    def revision(self, collection_id: str) -> int | None:
        with self.sessions() as session:
            return session.scalar(select(Collection.revision).where(Collection.id == collection_id))

    def collections(self) -> Sequence[Collection]:
        with self.sessions() as session:
            return session.scalars(select(Collection).order_by(Collection.id)).all()

    def counts(self) -> dict[str, tuple[int, int]]:
        """Documents and images per collection, from the kept counts (no join of images)."""
        with self.sessions() as session:
            rows = session.execute(select(Collection.id, Collection.document_count, Collection.image_count)).all()
        return {cid: (docs, imgs) for cid, docs, imgs in rows}

    def collection(self, collection_id: str) -> Collection | None:
        with self.sessions() as session:
            return session.get(Collection, collection_id)

    def document(self, collection_id: str, ident: str) -> Document | None:
        with self.sessions() as session:
            return session.scalar(
                select(Document).where(Document.collection_id == collection_id, Document.ident == ident)
            )

    def pages(self, collection_id: str, document: str | None = None) -> list[PageRow]:
        """Every page of one document (or of a small collection: see presentation.CANVAS_LIMIT) in reading order."""
        query = (
            select(Document.ident, Image.ident, Image.label, Image.width, Image.height, Image.tier, Document.tier)
            .join(Image, Image.document_pk == Document.pk)
            .where(Document.collection_id == collection_id)
            .order_by(Document.position, Document.ident, Image.position)
        )
        if document is not None:
            query = query.where(Document.ident == document)
        with self.sessions() as session:
            return [PageRow(*row) for row in session.execute(query).all()]

    def place_documents(self, session: Session, collection_id: str, only: int | None = None) -> int:
        """Put unplaced documents (or only the one with primary key `only`) in natural order among the others;
        returns how many.

        Positions stay dense 0..n-1 in sort-key order. A document after every other (the usual
        case: new material has later names) costs an index look-up; one in between shifts the
        documents after it by one set-based UPDATE. Never reads the whole collection."""
        # a write first: concurrent ingests into one collection take turns here (row lock / SQLite's writer lock)
        session.execute(update(Collection).where(Collection.id == collection_id).values(revision=Collection.revision))
        unplaced = select(Document).where(Document.collection_id == collection_id, Document.position == UNPLACED)
        if only is not None:
            unplaced = unplaced.where(Document.pk == only)
        new = session.scalars(unplaced.order_by(Document.sort_key)).all()
        if not new:
            return 0
        placed = (Document.collection_id == collection_id, Document.position >= 0)
        last_key, last = session.execute(select(func.max(Document.sort_key), func.max(Document.position))
                                          .where(*placed)).one()
        nxt = -1 if last is None else last
        for doc in new:
            if last_key is None or doc.sort_key > last_key:
                nxt += 1
                doc.position, last_key = nxt, doc.sort_key
            else:
                place = session.scalar(select(func.count()).where(*placed, Document.sort_key <= doc.sort_key)) or 0
                session.execute(update(Document).where(*placed, Document.position >= place)
                                .values(position=Document.position + 1).execution_options(synchronize_session=False))
                doc.position = place
                nxt += 1
            session.flush()
        return len(new)

    def existing_documents(self, collection_id: str, idents: Sequence[str]) -> set[str]:
        """Which of these documents the collection holds (asked for by name, never listed whole)."""
        found: set[str] = set()
        with self.sessions() as session:
            for n in range(0, len(idents), 500):
                found.update(session.scalars(select(Document.ident).where(
                    Document.collection_id == collection_id, Document.ident.in_(idents[n : n + 500]))))
        return found

    def last_position(self, collection_id: str) -> int | None:
        """The highest document position of a collection (an index look-up), None when empty."""
        with self.sessions() as session:
            return session.scalar(select(func.max(Document.position)).where(Document.collection_id == collection_id))

    def entries(self, collection_id: str, first: int, stop: int) -> list[DocumentEntry]:
        """Documents at positions [first, stop) in order, each with its first page: one row per document."""
        first_page = (
            select(Image.pk).where(Image.document_pk == Document.pk)
            .order_by(Image.position).limit(1).correlate(Document).scalar_subquery()
        )
        query = (
            select(Document.ident, Document.label, Document.tier, Document.position,
                   Image.ident, Image.label, Image.width, Image.height, Image.tier)
            .join(Image, Image.pk == first_page, isouter=True)
            .where(Document.collection_id == collection_id, Document.position >= first, Document.position < stop)
            .order_by(Document.position, Document.ident)
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        return [
            DocumentEntry(ident, label, tier, position,
                          PageRow(ident, page, page_label, w, h, page_tier, tier) if page is not None else None)
            for ident, label, tier, position, page, page_label, w, h, page_tier in rows
        ]

    def at_positions(self, collection_id: str, positions: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Label and tier of the documents at some positions (the bounds of a large collection's parts)."""
        found: dict[int, tuple[str, str | None]] = {}
        with self.sessions() as session:
            for n in range(0, len(positions), 500):
                rows = session.execute(
                    select(Document.position, Document.label, Document.ident, Document.tier)
                    .where(Document.collection_id == collection_id, Document.position.in_(positions[n : n + 500]))
                ).all()
                found.update({pos: (label or ident, tier) for pos, label, ident, tier in rows})
        return found

    def overrides_by_part(self, collection_id: str, part_size: int) -> dict[int, dict[str, int]]:
        """How many documents of each part (positions // part_size) have a tier of their own, by tier: read from
        the few documents that set one (an index holds them), never the whole collection."""
        with self.sessions() as session:
            rows = session.execute(
                select(Document.position, Document.tier)
                .where(Document.collection_id == collection_id, Document.tier.is_not(None), Document.position >= 0)
            ).all()
        counts: dict[int, dict[str, int]] = {}
        for position, tier in rows:
            by_tier = counts.setdefault(position // part_size, {})
            by_tier[tier] = by_tier.get(tier, 0) + 1
        return counts

    def activity_bounds(self) -> tuple[int, int]:
        """The number of public activities (kept) and the highest activity id (read off the key)."""
        with self.sessions() as session:
            total = session.scalar(select(State.value).where(State.key == "public_activities")) or 0
            top = session.scalar(select(func.max(Activity.id))) or 0
        return total, top

    def activities(self, first: int, last: int, public_only: bool = True) -> tuple[int, Sequence[Any]]:
        """The highest activity id, then the activities with ids in [first, last], oldest first (plain rows with
        the Activity's column names: a thousand of them are a page, and ORM objects cost the page a garbage
        collection's pause).

        The highest id is read first: when it lies beyond `last`, every activity of the range
        was committed before (see `lock_activities`), so the rows read after it are all of them.
        """
        with self.sessions() as session:
            top = session.scalar(select(func.max(Activity.id))) or 0
            if first > top:  # beyond the end (and perhaps beyond the id type's range)
                return top, []
            query = select(Activity.id, Activity.type, Activity.object_type, Activity.collection_id,
                           Activity.document_ident, Activity.tier, Activity.end_time).where(
                Activity.id >= first, Activity.id <= last)
            if public_only:
                query = query.where(Activity.tier == "public")
            rows = session.execute(query.order_by(Activity.id)).all()
        return top, rows

    # -- writes ----------------------------------------------------------------

    def set_tier(self, target: str, tier: str) -> str:
        """Set the tier of `collection`, `collection/document` or `collection/document/page` (NotFound when there
        is no such thing, BadTarget when it is not of that form)."""
        if tier not in self.tiers:
            raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(self.tiers)}")
        found = Target.parse(target)
        with self.session() as session:
            self.lock_activities(session)
            coll = session.get(Collection, found.collection)
            if coll is None:
                raise NotFound(f"no collection {found.collection!r}")
            if found.document is None:
                self.change_collection_tier(session, coll, tier)
            else:
                doc = session.scalar(
                    select(Document).where(Document.collection_id == coll.id, Document.ident == found.document)
                )
                if doc is None:
                    raise NotFound(f"no document {found.document!r} in {coll.id!r}")
                if found.page is None:
                    old = effective_tier(doc.tier, coll.tier)
                    doc.tier = tier
                    self.record_tier_change(session, "Manifest", coll.id, doc.ident, old, tier)
                else:
                    img = session.scalar(select(Image).where(Image.document_pk == doc.pk, Image.ident == found.page))
                    if img is None:
                        raise NotFound(f"no page {found.page!r} in {coll.id}/{doc.ident}")
                    img.tier = tier
                    self.record(session, "Update", "Manifest", coll.id, doc.ident,
                                effective_tier(doc.tier, coll.tier))
                pages = self.whole_pages(session, coll.id)
                self.record_whole(session, coll.id, coll.tier, pages, pages)  # it shows (or hides) them too
            self.touch(session, coll.id)
        return tier
