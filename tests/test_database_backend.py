"""The PostgreSQL backend's health check (conclave.database): no round trip for a healthy
connection, a reconnection for one the server ended."""

import time

import pytest
from django.db import connection, connections

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
