"""The catalogue's tables, every one of them, in one place: collections -> documents -> images, the Change
Discovery activities, the catalogue's counters, access tokens, the text and word tables of search, and the
people of the archive with their links to the pages that show them.

Reading and writing them is `Catalogue`'s business (catalogue.py); these are the shapes only, with the
small pure helpers their columns need (sort keys, the tier a row falls back to).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TIERS = ("public", "reading-room", "staff")


# byte order in both engines (PostgreSQL's default collation would ignore punctuation)
SORT_KEY_TYPE = String(400).with_variant(String(400, collation="C"), "postgresql")


_DIGITS = re.compile(r"\d+")


WHOLE_MANIFEST_PAGES = 5000  # a collection of up to this many pages also has one manifest of them all
UNPLACED = -1  # position of a document stored by an ingest that has not yet put it in order


def sort_key(name: str) -> str:
    """Natural order as one string: `p2` before `p10` (digit runs padded), case folded."""
    return _DIGITS.sub(lambda m: m.group().lstrip("0").rjust(20, "0"), name.casefold())[:400]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Described:
    """Descriptive fields shared by collections and documents."""

    label: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    metadata_pairs: Mapped[list[Any]] = mapped_column("metadata", JSON, default=list)
    rights: Mapped[str | None] = mapped_column(String(500), default=None)
    required_statement: Mapped[str | None] = mapped_column(Text, default=None)
    nav_date: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class Collection(Described, Base):
    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tier: Mapped[str] = mapped_column(String(50), default="public")
    revision: Mapped[int] = mapped_column(Integer, default=1)
    document_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # documents placed in the listing since the collection's last Update activity (ingest announces them at its end)
    unannounced: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the collection's public description (`summary` is the short one): see db/descriptions.py
    description: Mapped[str | None] = mapped_column(Text, default=None)
    dates: Mapped[str | None] = mapped_column(String(200), default=None)  # as the archive writes them: 1942-1944
    provenance: Mapped[str | None] = mapped_column(Text, default=None)  # donor, partner archive
    record: Mapped[str | None] = mapped_column(String(500), default=None)  # the archive's own reference
    documents: Mapped[list[Document]] = relationship(
        back_populates="collection", order_by="Document.position", cascade="all, delete-orphan"
    )


class Document(Described, Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "ident"),
        Index("ix_documents_position", "collection_id", "position"),
        Index("ix_documents_sort_key", "collection_id", "sort_key"),
        Index("ix_documents_tier_set", "collection_id", sqlite_where=text("tier IS NOT NULL"),
              postgresql_where=text("tier IS NOT NULL")),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    ident: Mapped[str] = mapped_column(String(200))
    sort_key: Mapped[str] = mapped_column(SORT_KEY_TYPE, default="", server_default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    tier: Mapped[str | None] = mapped_column(String(50), default=None)
    collection: Mapped[Collection] = relationship(back_populates="documents")
    images: Mapped[list[Image]] = relationship(
        back_populates="document", order_by="Image.position", cascade="all, delete-orphan"
    )


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("document_pk", "ident"),
        Index("ix_images_position", "document_pk", "position"),
        Index("ix_images_tier_set", "document_pk", sqlite_where=text("tier IS NOT NULL"),
              postgresql_where=text("tier IS NOT NULL")),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_pk: Mapped[int] = mapped_column(ForeignKey("documents.pk", ondelete="CASCADE"))
    ident: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(Text, default="")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    source_page: Mapped[int] = mapped_column(Integer, default=0)
    source_size: Mapped[int] = mapped_column(BigInteger)
    source_mtime: Mapped[float] = mapped_column(Float)
    tier: Mapped[str | None] = mapped_column(String(50), default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)
    document: Mapped[Document] = relationship(back_populates="images")


class Activity(Base):
    """One Change Discovery activity; `tier` is the object's tier when it happened."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_tier_id", "tier", "id"),
                      Index("ix_activities_object", "collection_id", "document_ident", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(20))  # Create, Update, Delete, Add, Remove
    object_type: Mapped[str] = mapped_column(String(20))  # Manifest, Collection
    collection_id: Mapped[str] = mapped_column(String(200))
    document_ident: Mapped[str | None] = mapped_column(String(200), default=None)
    tier: Mapped[str] = mapped_column(String(50))
    end_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)


class State(Base):
    """Catalogue-wide counters; `version` changes with every catalogue change."""

    __tablename__ = "catalogue_state"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def effective_tier(*tiers: str | None) -> str:
    """The most specific tier that is set: image, else document, else collection."""
    for tier in tiers:
        if tier:
            return tier
    return "public"


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(String(50))
    collections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    issued: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    kind: Mapped[str] = mapped_column(String(20), default="token", server_default="token")  # or "session"


# SQLite makes only INTEGER PRIMARY KEY an alias of the rowid (autoincrement)
ENTRY_ID = BigInteger().with_variant(Integer(), "sqlite")


# byte order, so that a prefix is a range (PostgreSQL's default collation is not)
TERM_TYPE = String(200).with_variant(String(200, collation="C"), "postgresql")


class TextEntry(Base):
    __tablename__ = "text_entries"
    __table_args__ = (Index("ix_text_entries_document", "document_pk", "id"),
                      Index("ix_text_entries_page_pos", "image_pk", "pos"),
                      Index("ix_text_entries_document_source", "document_pk", "source"))
    # An entry is a CSV row, or an ALTO word. The words of one ALTO line are one `unit` (the id of its first
    # word; NULL: the entry is a unit of its own): a name's words are matched in any order within a unit, never
    # across two. `block` is the ALTO TextBlock the word stands in: a phrase may run on over a line break
    # within a block, never into the next block (two entries of a list are two blocks).

    id: Mapped[int] = mapped_column(ENTRY_ID, primary_key=True, autoincrement=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.pk", ondelete="CASCADE"))
    document_pk: Mapped[int] = mapped_column(ForeignKey("documents.pk", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(200))  # alto, csv:<name>: a re-import replaces its own source only
    kind: Mapped[str] = mapped_column(String(20))  # word, line, entry, or the CSV's kind
    text: Mapped[str] = mapped_column(Text)
    line: Mapped[str | None] = mapped_column(Text, default=None)  # the line a word stands in
    start: Mapped[int | None] = mapped_column(Integer, default=None)  # where the word starts in it
    pos: Mapped[int | None] = mapped_column(Integer, default=None)  # place among the page's entries of its source
    x: Mapped[int | None] = mapped_column(Integer, default=None)
    y: Mapped[int | None] = mapped_column(Integer, default=None)
    w: Mapped[int | None] = mapped_column(Integer, default=None)
    h: Mapped[int | None] = mapped_column(Integer, default=None)
    unit: Mapped[int | None] = mapped_column(ENTRY_ID, default=None)
    block: Mapped[int | None] = mapped_column(Integer, default=None)


class TextTerm(Base):
    __tablename__ = "text_terms"
    __table_args__ = (Index("ix_text_terms_document_norm", "document_pk", "norm", "entry_id"),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("text_entries.id", ondelete="CASCADE"), primary_key=True)
    ord: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_pk: Mapped[int] = mapped_column(Integer)
    norm: Mapped[str] = mapped_column(TERM_TYPE)


class TextVocab(Base):
    """Every distinct word once (never shrinks: a word no longer on any page finds nothing)."""

    __tablename__ = "text_vocab"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    norm: Mapped[str] = mapped_column(TERM_TYPE, unique=True)


class TextCode(Base):
    __tablename__ = "text_codes"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    norm: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)


class TextKey(Base):
    """Each word of the vocabulary (of 4 to 32 letters) under each of its deletions (the word with one letter left
    out): a word one letter off another shares a key with it, so typos are looked up by equality, at a cost that
    does not grow with the vocabulary."""

    __tablename__ = "text_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)
    norm: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)


class TextDocTerm(Base):
    """Which documents of a collection hold a word: the first step of a collection-wide search."""

    __tablename__ = "text_doc_terms"
    __table_args__ = (Index("ix_text_doc_terms_document", "document_pk", "norm"),)

    norm: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    document_pk: Mapped[int] = mapped_column(Integer, primary_key=True)


class LabelTerm(Base):
    __tablename__ = "text_label_terms"

    norm: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)
    document_pk: Mapped[int] = mapped_column(ForeignKey("documents.pk", ondelete="CASCADE"), primary_key=True,
                                             index=True)


class IngestRun(Base):
    """One ingest run, from the console or the command line: who started it, where it runs, how far it is, how
    it ended. The run writes its progress and a heartbeat every second; a run whose heartbeat stopped and whose
    collection's run lock is free died without finishing (interrupted)."""

    __tablename__ = "ingest_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(Text)
    tier: Mapped[str | None] = mapped_column(String(50), default=None)
    metadata_csv: Mapped[str | None] = mapped_column(Text, default=None)
    started_by: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    # starting, running, finished, stopped, failed, refused, interrupted
    state: Mapped[str] = mapped_column(String(20), index=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    converting_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ended: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    total: Mapped[int | None] = mapped_column(Integer, default=None)  # masters to convert, once scanned
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    stop_requested: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    stop_by: Mapped[str | None] = mapped_column(Text, default=None)
    report: Mapped[str | None] = mapped_column(String(300), default=None)  # the report's file name
    message: Mapped[str | None] = mapped_column(Text, default=None)  # why it was refused, failed or interrupted
    # what a process joining the run needs (PostgreSQL): its folder and options, set when its work is published
    shared: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class IngestWork(Base):
    """One document of a shared ingest run, to be claimed by one of the processes doing the run (ingest/share.py):
    todo, claimed (by a process, until its lease runs out) or done, with what its process did (outcome). Its
    done mark is written in the transaction that commits the document's pages: a document is committed once."""

    __tablename__ = "ingest_work"
    __table_args__ = (Index("ix_ingest_work_state", "run_id", "state", "seq"),)

    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("ingest_runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the source's order: claimed first to last
    document: Mapped[str] = mapped_column(String(200))  # its catalogue identifier
    name: Mapped[str] = mapped_column(Text)  # its name on disk (NFC)
    path: Mapped[str] = mapped_column(Text)  # its folder, or the single master of a one-page document
    masters: Mapped[int] = mapped_column(Integer)  # masters to convert, as planned
    state: Mapped[str] = mapped_column(String(8), default="todo")
    claimed_by: Mapped[str | None] = mapped_column(String(32), default=None)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


# -- people --------------------------------------------------------------------------------------------------

PORTRAIT, LINE = "portrait", "line"  # what a link points at: a portrait page, a line of a list page
SUGGESTED, CONFIRMED, REJECTED = "suggested", "confirmed", "rejected"
FROM_CSV, FROM_SUGGEST, FROM_STAFF = "csv", "suggest", "staff"


class Person(Base):
    """One person of the archive's list of deportees; names and places kept as the list spells them (NFC)."""

    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_transport", "transport", "number_key", "id"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    surname: Mapped[str] = mapped_column(Text)
    given_names: Mapped[str] = mapped_column(Text, default="")
    birth_date: Mapped[str | None] = mapped_column(String(10), default=None)  # YYYY, YYYY-MM or YYYY-MM-DD
    birth_year: Mapped[int | None] = mapped_column(Integer, default=None)
    birth_place: Mapped[str | None] = mapped_column(Text, default=None)
    nationality: Mapped[str | None] = mapped_column(Text, default=None)
    transport: Mapped[str | None] = mapped_column(String(50), default=None)
    number: Mapped[str | None] = mapped_column(String(20), default=None)  # on the transport list, as given
    number_key: Mapped[str] = mapped_column(SORT_KEY_TYPE, default="")  # natural order of `number`
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)  # by staff: answers 404 to visitors
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class PersonLink(Base):
    """A person shown on a page: their portrait (the whole page, or a box) or their line on a list (a box).
    Suggested by matching, confirmed by staff (or given by the persons CSV), or rejected (never proposed again)."""

    __tablename__ = "person_links"
    __table_args__ = (UniqueConstraint("person_id", "image_pk", "kind", "box"),
                      Index("ix_person_links_image", "image_pk", "state"),
                      Index("ix_person_links_review", "state", "score", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.pk", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # PORTRAIT or LINE
    box: Mapped[str] = mapped_column(String(60), default="")  # "x,y,w,h", "" for the whole page
    x: Mapped[int | None] = mapped_column(Integer, default=None)
    y: Mapped[int | None] = mapped_column(Integer, default=None)
    w: Mapped[int | None] = mapped_column(Integer, default=None)
    h: Mapped[int | None] = mapped_column(Integer, default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None)  # the name as the page writes it
    state: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(20))
    score: Mapped[float | None] = mapped_column(Float, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    decided_by: Mapped[str | None] = mapped_column(Text, default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)


class Transport(Base):
    """A transport of the lists, with its counts kept by every change of its people (never counted per request)."""

    __tablename__ = "transports"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    sort_key: Mapped[str] = mapped_column(SORT_KEY_TYPE, default="")
    date: Mapped[str | None] = mapped_column(String(10), default=None)
    destination: Mapped[str | None] = mapped_column(Text, default=None)
    people: Mapped[int] = mapped_column(Integer, default=0)  # not hidden
    portraits: Mapped[int] = mapped_column(Integer, default=0)  # of those, with a confirmed portrait
