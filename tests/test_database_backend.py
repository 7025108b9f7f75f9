"""The PostgreSQL backend's health check (conclave.database): no round trip for a healthy
connection, a reconnection for one the server ended; and `fetch_one`, the write path's
statements run past Django's cursor yet with its transactions and errors."""

import time

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from conclave.database.statements import fetch_one

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_connection():
    """A connection of its own (the test's transaction keeps the default one)."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _traced(wrapper, path, action) -> str:
    """What the client sent and received on the connection during `action` (libpq's trace)."""
    with open(path, "w") as trace:
        wrapper.connection.pgconn.trace(trace.fileno())
        try:
            action()
        finally:
            wrapper.connection.pgconn.untrace()
    return path.read_text()


def test_health_check__healthy_connection__usable_without_a_round_trip(own_connection, tmp_path):
    usable: list[bool] = []

    checked = _traced(
        own_connection, tmp_path / "check", lambda: usable.append(own_connection.is_usable())
    )
    queried = _traced(
        own_connection, tmp_path / "query", lambda: own_connection.connection.execute("SELECT 1")
    )

    assert usable == [True]
    assert checked == ""
    assert "SELECT 1" in queried  # the trace does see what is sent


def test_health_check__connection_ended_by_the_server__unusable_then_reconnects(own_connection):
    pid = own_connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while own_connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)

    assert not own_connection.is_usable()
    own_connection.close_if_unusable_or_obsolete()  # as at the start of every request
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


# --- fetch_one: the write path's statements past Django's cursor --------------------------------


@pytest.fixture
def scratch_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE scratch (n int NOT NULL)")
    assert not connection.queries_logged  # so fetch_one goes past Django's cursor


def test_fetch_one__in_a_transaction__part_of_it_and_rolled_back_with_it(scratch_table):
    with transaction.atomic():
        row = fetch_one(connection, "INSERT INTO scratch VALUES (%s) RETURNING n, 2", [7])
        transaction.set_rollback(True)

    assert row == (7, 2)
    assert fetch_one(connection, "SELECT count(*) FROM scratch", []) == (0,)


def test_fetch_one__database_refuses__djangos_error_then_the_broken_block_refused(scratch_table):
    with transaction.atomic():
        with pytest.raises(IntegrityError, match="null value"):
            with transaction.atomic(savepoint=False):
                fetch_one(connection, "INSERT INTO scratch VALUES (%s) RETURNING n", [None])
        with pytest.raises(TransactionManagementError):
            fetch_one(connection, "SELECT 1", [])

    assert fetch_one(connection, "SELECT count(*) FROM scratch", []) == (0,)


def test_fetch_one__queries_logged__through_djangos_cursor_and_counted(own_connection):
    with CaptureQueriesContext(own_connection) as queries:
        row = fetch_one(own_connection, "SELECT %s::int + 1", [41])

    assert row == (42,)
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT 41::int + 1"]


def test_fetch_one__no_row__database_error(scratch_table):
    with pytest.raises(DatabaseError, match="No row returned"):
        fetch_one(connection, "SELECT n FROM scratch", [])


def test_fetch_one__kept_cursor__reused_until_the_connection_is_replaced(own_connection):
    first = fetch_one(own_connection, "SELECT pg_backend_pid(), now()", [])
    kept = own_connection.statement_cursor()
    second = fetch_one(own_connection, "SELECT pg_backend_pid(), now()", [])

    assert own_connection.statement_cursor() is kept
    assert second[0] == first[0]
    own_connection.close()
    third = fetch_one(own_connection, "SELECT pg_backend_pid(), %s::int", [3])

    assert own_connection.statement_cursor() is not kept
    assert third[0] != first[0] and third[1] == 3


# --- timestamps: psycopg's C loader where Django's Python one would read the same values -------


def test_timestamps__read_in_utc__as_djangos_own_loader_reads_them():
    from datetime import UTC

    from django.db.backends.postgresql.psycopg_any import register_tzloader

    from conclave.database.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader

    moments = (
        "SELECT now(), '2026-03-29 01:59:59.999999+00'::timestamptz, "
        "'1999-12-31 23:59:59.5-08'::timestamptz, '0005-01-01 00:00:00+00'::timestamptz, "
        "'9999-12-31 23:59:59.999999+00'::timestamptz, NULL::timestamptz"
    )
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, 0)
        cursor.execute(moments)
        ours = cursor.fetchone()
    with connection.cursor() as cursor:
        register_tzloader(UTC, cursor.cursor)  # Django's own, on this cursor only
        cursor.execute(moments)
        djangos = cursor.fetchone()

    assert loader is UtcTimestamptzLoader
    assert ours == djangos
    assert all(value.tzinfo is UTC for value in ours[:-1]) and ours[-1] is None
