"""Statements the product runs on every write, run for less than Django's cursor costs."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper


def fetch_one(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
    """The row `sql` returns (as an INSERT ... RETURNING of one row does), run on `db` in the
    caller's transaction if there is one; DatabaseError if it returns none (see `fetch_all`).
    """
    row = _run(db, sql, params, lambda cursor: cursor.fetchone())
    if row is None:
        raise DatabaseError(f"No row returned by: {sql}")
    return row


def fetch_all(
    db: BaseDatabaseWrapper, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The rows `sql` returns, run on `db` in the caller's transaction if there is one.

    When nothing watches Django's cursor (no query log, as in DEBUG or a test counting
    queries, and no execute wrappers) the statement goes to the driver's connection
    directly: Django's cursor and its wrapper cost a third of an append's client CPU under
    load. Everything else is as through a cursor: a connection opened if needed, a broken
    atomic block refused, the driver's errors raised as Django's. The driver's cursor is
    the connection's kept one (conclave.database.base) when the backend keeps one.
    """
    return _run(db, sql, params, lambda cursor: cursor.fetchall() if cursor.description else [])


def _run(db: BaseDatabaseWrapper, sql: str, params: Any, read: Callable[[Any], Any]) -> Any:
    if db.queries_logged or db.execute_wrappers:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return read(cursor)
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        kept = getattr(db, "statement_cursor", None)  # (conclave.database's backend)
        if kept is not None:
            return read(kept().execute(sql, params))
        with db.connection.cursor() as cursor:
            return read(cursor.execute(sql, params))
