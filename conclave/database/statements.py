"""Statements the product runs on every write, run for less than Django's cursor costs."""

from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper


def fetch_one(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
    """The row `sql` returns (as an INSERT ... RETURNING of one row does), run on `db` in the
    caller's transaction if there is one; DatabaseError if it returns none.

    When nothing watches Django's cursor (no query log, as in DEBUG or a test counting
    queries, and no execute wrappers) the statement goes to the driver's connection
    directly: Django's cursor and its wrapper cost a third of an append's client CPU under
    load. Everything else is as through a cursor: a connection opened if needed, a broken
    atomic block refused, the driver's errors raised as Django's.
    """
    if db.queries_logged or db.execute_wrappers:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    else:
        db.ensure_connection()
        db.validate_thread_sharing()
        db.validate_no_broken_transaction()
        with db.wrap_database_errors, db.connection.cursor() as cursor:
            row = cursor.execute(sql, params).fetchone()
    if row is None:
        raise DatabaseError(f"No row returned by: {sql}")
    return row
