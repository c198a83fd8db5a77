"""Bulk writes that both engines take fast: many rows in one statement, duplicates ignored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy.engine import Connection

from iiif_server.db.models import Base

IN_LIST = 500  # values in one IN list: well under every backend's bound on bound parameters


def chunks(values: Sequence[object], size: int = IN_LIST) -> Iterator[Sequence[object]]:
    """`values` in slices of at most `size`, in order (one statement each)."""
    for n in range(0, len(values), size):
        yield values[n : n + size]


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[object, ...]],
                ignore: bool = False) -> None:
    """Many rows at driver speed: PostgreSQL's COPY (into a temporary table first when existing keys are
    to be left alone), SQLite's executemany of one prepared INSERT."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        target = table
        if ignore:
            target = f"_new_{table}"
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if ignore:
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {target} ON CONFLICT DO NOTHING")
            cursor.execute(f"DELETE FROM {target}")
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT {'OR IGNORE ' if ignore else ''}INTO {table} ({names}) VALUES ({marks})", list(rows))


def insert_ignore(conn: Connection, table: type[Base], rows: Sequence[dict[str, object]]) -> None:
    """Insert rows, leaving alone those whose key is already there (another import's words)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    conn.execute(dialect_insert(table).on_conflict_do_nothing(), list(rows))
