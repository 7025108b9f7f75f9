"""Django's PostgreSQL backend with a health check that costs no round trip.

Django checks a persistent connection at the start of each request it is used in
(CONN_HEALTH_CHECKS) by sending `SELECT 1`: a whole round trip to the server for every request
that touches the database, as costly as a real query. Between requests a healthy idle
connection has nothing to read; a connection the server ended (restart, pg_terminate_backend,
idle timeout) has its last words or end of file waiting on the socket. So: nothing readable,
the connection is usable; anything there, Django's own check decides.
"""

import select
from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _statement_cursor: Any = None

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
