"""The catalogue's words: documents' labels, summaries and metadata values, for `/iiif/search?q=`.

text_label_terms holds each document's normalised words once. It is kept by an ORM hook on
Document (insert, or a change of label, summary or metadata), so every process that writes the
catalogue through its models (ingest, console) keeps it current; a document's removal cascades.
Collections are a few hundred: they are matched in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper

from iiif_server.db.bulk import insert_ignore
from iiif_server.db.models import Document, LabelTerm
from iiif_server.words import terms


def described_words(label: str | None, summary: str | None, metadata: Any) -> set[str]:
    """The distinct words of a label, a summary and metadata values ([[name, value], ...])."""
    parts = [label or "", summary or ""]
    if isinstance(metadata, list):
        parts += [str(pair[1]) for pair in metadata if isinstance(pair, list | tuple) and len(pair) == 2]
    return {t for part in parts for t in terms(part)}


def index_documents(conn: Connection, rows: Iterable[tuple[int, str | None, str | None, Any]]) -> None:
    """(Re)index documents given as (pk, label, summary, metadata)."""
    batch = list(rows)
    pks = [pk for pk, *_ in batch]
    for i in range(0, len(pks), 500):
        conn.execute(delete(LabelTerm).where(LabelTerm.document_pk.in_(pks[i:i + 500])))
    insert_ignore(conn, LabelTerm, [{"norm": w, "document_pk": pk} for pk, label, summary, metadata in batch
                                    for w in sorted(described_words(label, summary, metadata))])


def reindex_all(conn: Connection, chunk: int = 2000) -> int:
    """Every document, in key order and bounded chunks (the migration's backfill)."""
    last, done = 0, 0
    while True:
        rows: Sequence[Any] = conn.execute(
            select(Document.pk, Document.label, Document.summary, Document.metadata_pairs)
            .where(Document.pk > last).order_by(Document.pk).limit(chunk)).all()
        if not rows:
            return done
        index_documents(conn, [tuple(r) for r in rows])
        last, done = rows[-1][0], done + len(rows)


def _changed(target: Document) -> bool:
    state = inspect(target)
    return any(state.attrs[name].history.has_changes() for name in ("label", "summary", "metadata_pairs"))


def _after_insert(_mapper: Mapper[Any], conn: Connection, target: Document) -> None:
    index_documents(conn, [(target.pk, target.label, target.summary, target.metadata_pairs)])


def _after_update(_mapper: Mapper[Any], conn: Connection, target: Document) -> None:
    if _changed(target):
        index_documents(conn, [(target.pk, target.label, target.summary, target.metadata_pairs)])


def watch() -> None:
    """Keep text_label_terms with the documents (once per process)."""
    if not event.contains(Document, "after_insert", _after_insert):
        event.listen(Document, "after_insert", _after_insert)
        event.listen(Document, "after_update", _after_update)


__all__ = ["LabelTerm", "described_words", "index_documents", "reindex_all", "watch"]
