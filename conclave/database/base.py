"""Django's PostgreSQL backend with a health check that costs no round trip, and timestamps read
by psycopg's C parser.

Django checks a persistent connection at the start of each request it is used in
(CONN_HEALTH_CHECKS) by sending `SELECT 1`: a whole round trip to the server for every request
that touches the database, as costly as a real query. Between requests a healthy idle
connection has nothing to read; a connection the server ended (restart, pg_terminate_backend,
idle timeout) has its last words or end of file waiting on the socket. So: nothing readable,
the connection is usable; anything there, Django's own check decides.

Django reads every `timestamptz` with a loader of its own, a subclass of psycopg's pure Python
one, so as to give each datetime its connection's time zone: 6 us a value, where psycopg's
C loader takes 0.6. When that zone is UTC, the session's own (Django sets it on connecting),
the C loader already returns datetimes in `datetime.timezone.utc`: the same values, so it
reads them (`UtcTimestamptzLoader`).
"""

import select
from datetime import UTC
from functools import cache
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
# psycopg's own loader: its C implementation when the driver has one (psycopg[binary]).
_DRIVER_LOADER = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class UtcTimestamptzLoader(Loader):
    """psycopg's `timestamptz` loader, for a session whose time zone is UTC. A Python class
    whose `load` is the C loader's own (psycopg's C loaders cannot be subclassed), with the
    `timezone` Django's cursors compare with theirs."""

    timezone = UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self.load = _DRIVER_LOADER(oid, context).load  # type: ignore[method-assign,misc]

    def load(self, data: Any) -> Any:  # (replaced by the instance's own)
        raise NotImplementedError


@cache
def _adapters_reading_utc(template: AdaptersMap) -> AdaptersMap:
    adapters = AdaptersMap(template)
    adapters.register_loader("timestamptz", UtcTimestamptzLoader)
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    _statement_cursor: Any = None

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if settings.USE_TZ and self.timezone_name == "UTC" and self.timezone == UTC:
            params["context"] = _adapters_reading_utc(params["context"])
        return params

    def statement_cursor(self) -> Any:
        """The driver's cursor that `conclave.database.statements` runs its statements on, one
        per connection and kept: a cursor made for each statement builds its adapters anew,
        and the loader of every timestamp it returns, which looks the session's time zone up
        (7% of an order's CPU). Only for statements that run one at a time, each result read
        before the next (the driver cursor holds the last result)."""
        cursor = self._statement_cursor
        if cursor is None or cursor.closed or cursor.connection is not self.connection:
            cursor = self._statement_cursor = self.connection.cursor()
        return cursor

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            waiting = poller.poll(0)
        except (OSError, ValueError):  # the socket is gone
            return False
        return not waiting or super().is_usable()
