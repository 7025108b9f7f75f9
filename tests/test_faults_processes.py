"""PostgreSQL going away under load, as the web server sees it: gunicorn talks to the
database through a TCP proxy that the test cuts (every connection dropped, new ones refused,
as in a restart) and restores, while clients keep placing orders."""

import threading
import time
import uuid

import psycopg
import pytest

from tests.conftest import gunicorn, run_manage, served_env
from tests.http import call
from tests.tcp_proxy import tcp_proxy
from tests.workshop import RUNBOOK_ORDER

pytestmark = pytest.mark.django_db
CLIENTS = 4


def _place_orders(base: str, phase: list[str], stop: threading.Event, outcomes: list) -> None:
    while not stop.is_set():
        started = phase[0]
        try:
            status, body = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER, timeout=15)
        except OSError as exc:  # the web server itself never went away: a failure
            status, body = 0, str(exc)
        # A request still in flight when the phase changed belongs to neither.
        outcomes.append((started if phase[0] == started else "between", status, body))


def test_postgres_restart_under_load__503_while_down__served_after__no_half_written_order(
    scratch_database, tmp_path
):
    database = scratch_database("conclave_faults")
    direct = served_env(
        database,
        tmp_path,
        HALT_REDIS_PREFIX=f"faults-{uuid.uuid4().hex[:8]}",
        EVENT_INTEGRATION="inline",
        THROTTLE_RATE_ORDERS_ANON="",
        THROTTLE_RATE_ANON="",
        LOG_LEVEL="ERROR",
    )
    outcomes: list[tuple[str, int, object]] = []
    with tcp_proxy(("127.0.0.1", 5432)) as proxy:
        proxied = {**direct, "DATABASE_URL": database.url.replace(":5432/", f":{proxy.port}/")}
        with gunicorn(proxied) as base:
            phase, stop = ["up"], threading.Event()
            clients = [
                threading.Thread(target=_place_orders, args=(base, phase, stop, outcomes))
                for _ in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            time.sleep(2)
            phase[0] = "down"
            proxy.cut()
            time.sleep(3)
            phase[0] = "back"
            proxy.restore()
            time.sleep(4)
            stop.set()
            for client in clients:
                client.join(timeout=30)

    by_phase = {p: [status for started, status, _ in outcomes if started == p] for p in
                ("up", "down", "back")}  # fmt: skip
    assert {status for _, status, _ in outcomes} <= {201, 503}, "only a 201 or a clean 503"
    assert set(by_phase["up"]) == {201}
    assert 503 in by_phase["down"]
    assert by_phase["back"][-CLIENTS * 3 :] == [201] * (CLIENTS * 3), "served again"
    refused = [body for _, status, body in outcomes if status == 503]
    assert {body["error"] for body in refused} == {"database_unavailable"}
    answered = {body["id"] for _, status, body in outcomes if status == 201}
    with psycopg.connect(database.dsn) as connection:
        orders = {row[0] for row in connection.execute("SELECT id FROM orders")}
        logged = [
            row[0]
            for row in connection.execute(
                "SELECT (payload->>'order_id')::int FROM events WHERE event_type = 'order.created'"
            )
        ]
    assert answered <= orders, "an order answered 201 is missing"
    assert sorted(logged) == sorted(orders), "an order without its event, or twice logged"
    verified = run_manage("verify_chain", "--full", env=direct)
    assert verified.returncode == 0, verified.stderr
