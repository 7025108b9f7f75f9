"""Event store benchmarks (issue targets in README), each beside a raw baseline of this run.

Runs against a scratch database `conclave_bench` on the DATABASE_URL server.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from django.db import connection, connections

from bench.harness import Result, bare_ed25519_verify, benchmark, measured_run

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CLIENTS = 8
# append_8 and its baseline are measured in turns, ROUNDS of each.
ROUNDS = 3
# Latency is measured at a load the log sustains (8 clients together), not at saturation,
# where it only measures how long the backlog grew during the run.
PACED_RATE = float(os.environ.get("BENCH_PACED_RATE", "1000"))
BATCH = 100
VERIFY_EVENTS = int(os.environ.get("BENCH_VERIFY_EVENTS", "200000"))
# `verify_chain --full` runs, each followed by a turn of the bare verify baseline.
VERIFY_ROUNDS = 2
REPO = Path(__file__).resolve().parents[1]

RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_events (
    sequence bigserial PRIMARY KEY, event_type varchar(100), payload jsonb,
    agent_id varchar(200), signing_key_id varchar(100), signing_mode varchar(11),
    local_timestamp timestamptz, authority_timestamp timestamptz DEFAULT now(),
    prev_hash varchar(64), content_hash varchar(64), signature varchar(128),
    witness_id varchar(200), witness_key_id varchar(100), witness_signature varchar(128),
    schema_version smallint)
"""
RAW_INSERT = (
    "INSERT INTO bench_raw_events (event_type, payload, agent_id, signing_key_id, signing_mode, "
    "local_timestamp, prev_hash, content_hash, signature, witness_id, witness_key_id, "
    "witness_signature, schema_version) VALUES ('order.created', '{\"n\": 1}', 'A', 'k', "
    "'DEVELOPMENT', now(), %s, %s, %s, 'W', 'w', %s, 1)"
)
RAW_ROW = ("0" * 64, "a" * 64, "b" * 128, "c" * 128)


def _dsn() -> str:
    settings = connection.settings_dict
    return (
        f"host={settings['HOST']} port={settings['PORT'] or 5432} "
        f"user={settings['USER']} dbname={settings['NAME']}"
    )


def _raw_single(seconds: float) -> list[float]:
    """Latency of each single-row INSERT+COMMIT, for `seconds`."""
    latencies = []
    with psycopg.connect(_dsn(), autocommit=True) as raw:
        deadline = time.perf_counter() + seconds
        while (started := time.perf_counter()) < deadline:
            raw.execute(RAW_INSERT, RAW_ROW)
            latencies.append(time.perf_counter() - started)
    return latencies


def _raw_batch(seconds: float) -> int:
    count = 0
    with psycopg.connect(_dsn()) as raw:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with raw.transaction(), raw.cursor() as cursor:
                cursor.executemany(RAW_INSERT, [RAW_ROW] * BATCH)
            count += BATCH
    return count


def _append_single(
    seconds: float, per_second: float | None = None
) -> list[tuple[int, float, float]]:
    """Signed, witnessed appends, each in its own transaction, for `seconds` (as fast as they
    go, or paced at `per_second`): for each, its queue id, the wall-clock time of the call
    and the time its transaction took."""
    from events.services import event_append

    appended: list[tuple[int, float, float]] = []
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        if per_second is not None:
            time.sleep(max(0.0, began + len(appended) / per_second - time.perf_counter()))
        called, started = time.time(), time.perf_counter()
        pending = event_append(event_type="order.created", payload={"n": len(appended)})
        appended.append((pending.queue_id, called, time.perf_counter() - started))
    return appended


def _append_paced(seconds: float) -> list[tuple[int, float, float]]:
    return _append_single(seconds, per_second=PACED_RATE / CLIENTS)


def _append_batch(seconds: float) -> list[tuple[int, float, float]]:
    from events.services import EventDraft, event_append_batch

    appended: list[tuple[int, float, float]] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        called, started = time.time(), time.perf_counter()
        drafts = [EventDraft("order.created", {"n": len(appended) + n}) for n in range(BATCH)]
        pendings = event_append_batch(drafts=drafts)
        took = time.perf_counter() - started
        appended += [(pending.queue_id, called, took) for pending in pendings]
    return appended


def _logged(appended: list[tuple[int, float, float]]) -> tuple[float, list[float]]:
    """Waits until every appended event is in the signed log; returns events/s from the first
    call to the last event logged, and each event's latency from its call to its place in
    the log (`authority_timestamp`, the database's clock on this same host)."""
    ids = [queue_id for queue_id, _, _ in appended]
    with psycopg.connect(_dsn(), autocommit=True) as raw:
        waiting = "SELECT COUNT(*) FROM event_queue WHERE id = ANY(%s) AND processed_at IS NULL"
        while raw.execute(waiting, [ids]).fetchone()[0]:
            time.sleep(0.01)
        logged = dict(
            raw.execute(
                "SELECT q.id, extract(epoch FROM e.authority_timestamp)::float8 "
                "FROM event_queue q JOIN events e ON e.sequence = q.sequence "
                "WHERE q.id = ANY(%s)",
                [ids],
            ).fetchall()
        )
    if len(logged) != len(ids):
        raise RuntimeError(f"{len(ids) - len(logged)} appended events are not in the log")
    latencies = [logged[queue_id] - called for queue_id, called, _ in appended]
    first_call = min(called for _, called, _ in appended)
    return len(ids) / (max(logged.values()) - first_call), latencies


def _count(outcome: int | list[float]) -> int:
    return outcome if isinstance(outcome, int) else len(outcome)


def _in_processes_outcomes(function, clients: int, seconds: float) -> tuple[float, list]:
    """Total operations per second of `function` run by `clients` processes at once, and what
    they returned, concatenated."""
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        started = time.perf_counter()
        outcomes = pool.map(function, [seconds] * clients)
        elapsed = time.perf_counter() - started
    joined = [value for outcome in outcomes if isinstance(outcome, list) for value in outcome]
    return sum(_count(outcome) for outcome in outcomes) / elapsed, joined


def _in_processes(function, clients: int, seconds: float) -> float:
    return _in_processes_outcomes(function, clients, seconds)[0]


def _p99_ms(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def _rate(function, seconds: float) -> float:
    started = time.perf_counter()
    count = _count(function(seconds))
    return count / (time.perf_counter() - started)


def _bare_verifies(seconds: float) -> int:
    verify = bare_ed25519_verify()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        verify()
        count += 1
    return count


def _integrator() -> subprocess.Popen:
    """`manage.py integrate_events` on the benchmark database, as deployed."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this project's command
        [sys.executable, "manage.py", "integrate_events"],
        cwd=REPO,
        env={**os.environ, "EVENT_INTEGRATION": "integrator"},
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout is None or "SIGTERM stops" not in process.stdout.readline():
        raise RuntimeError("the integrator did not start")
    # Keep reading what it logs, so a full pipe never blocks it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process


def _eight_clients() -> tuple[float, list[float], float, list[float]]:
    """append_8 and its baseline, raw INSERTs from 8 clients, measured in turns (ROUNDS of
    each, SECONDS a turn) so that a shared machine slowing down or speeding up affects both
    alike: events or rows per second over all the turns, and every latency."""
    appended = raw = 0
    appending = raw_time = 0.0
    latencies: list[float] = []
    raw_latencies: list[float] = []
    for _ in range(ROUNDS):
        outcomes = _in_processes_outcomes(_append_single, CLIENTS, SECONDS)[1]
        rate, turn_latencies = _logged(outcomes)
        appended += len(outcomes)
        appending += len(outcomes) / rate
        latencies += turn_latencies
        rate, turn_raw_latencies = _in_processes_outcomes(_raw_single, CLIENTS, SECONDS)
        raw += len(turn_raw_latencies)
        raw_time += len(turn_raw_latencies) / rate
        raw_latencies += turn_raw_latencies
    return appended / appending, latencies, raw / raw_time, raw_latencies


@benchmark
def event_store() -> list[Result]:

    integrator = _integrator()
    try:
        return _event_store()
    finally:
        integrator.send_signal(signal.SIGTERM)
        integrator.wait(timeout=60)


def _event_store() -> list[Result]:
    from events.services import keys_bootstrap

    keys_bootstrap()
    with connection.cursor() as cursor:
        cursor.execute(RAW_TABLE)
    append_1, _ = _logged(_append_single(SECONDS))
    append_8, latencies_8, raw_8, raw_latencies = _eight_clients()
    appended = _in_processes_outcomes(_append_paced, CLIENTS, SECONDS)[1]
    commit_latencies = [took for _, _, took in appended]
    _, paced_latencies = _logged(appended)
    append_batch, _ = _logged(_append_batch(SECONDS))
    results = [
        Result("append_1", append_1, "events/s",
               "raw single-row INSERT+COMMIT, 1 client", _rate(_raw_single, SECONDS)),
        Result("append_8", append_8, "events/s", "raw single-row INSERT+COMMIT, 8 clients",
               raw_8),
        Result("append_8_p99", _p99_ms(paced_latencies), "ms",
               "raw INSERT+COMMIT p99, 8 clients", _p99_ms(raw_latencies)),
        Result("append_8_commit_p99", _p99_ms(commit_latencies), "ms",
               "raw INSERT+COMMIT p99, 8 clients", _p99_ms(raw_latencies)),
        Result("append_8_saturated_p99", _p99_ms(latencies_8), "ms",
               "raw INSERT+COMMIT p99, 8 clients", _p99_ms(raw_latencies)),
        Result("append_batch", append_batch, "events/s",
               f"raw {BATCH}-row INSERT transactions", _rate(_raw_batch, SECONDS)),
    ]  # fmt: skip

    # Grow the log to VERIFY_EVENTS, then verify it all in a separate process.
    from events.models import Event
    from events.services import EventDraft, event_append_batch

    while (missing := VERIFY_EVENTS - Event.objects.count()) > 0:
        pendings = event_append_batch(
            drafts=[EventDraft("order.created", {"n": n}) for n in range(min(1000, missing))]
        )
        pendings[-1].wait(timeout=120)
    events = Event.objects.count()
    # Measure verification, not the autovacuum the 200,000 inserts just woke up, nor the
    # checkpoint writing out the pages they dirtied.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events")
        cursor.execute("CHECKPOINT")
    # In turns with the baseline, as append_8: a shared machine's drift weighs on both.
    elapsed, full_peak, bare_rates = 0.0, 0.0, []
    for _ in range(VERIFY_ROUNDS):
        started = time.perf_counter()
        full_peak = max(full_peak, _peak_memory_mib("--full"))
        elapsed += time.perf_counter() - started
        bare_rates.append(_in_processes(_bare_verifies, os.cpu_count() or 1, SECONDS))
    bare = sum(bare_rates) / len(bare_rates)
    tenth_peak = _peak_memory_mib("--from", str(events - events // 10 + 1))
    results += [
        Result("verify", VERIFY_ROUNDS * events / elapsed, "events/s",
               f"bare libsodium Ed25519 verifies on {os.cpu_count()} cores / 2 per event", bare / 2),
        Result("verify_peak_memory", full_peak, "MiB",
               f"verifying the last tenth ({events // 10} events)", tenth_peak),
    ]  # fmt: skip
    return results


def _peak_memory_mib(*arguments: str) -> float:
    """Peak resident memory of `manage.py verify_chain ARGUMENTS` and its worker processes."""
    return measured_run([sys.executable, "manage.py", "verify_chain", *arguments], REPO)[1]
