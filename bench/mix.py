"""The workshop under a realistic mix: 32 connections for 60 s (`BENCH_MIX_SECONDS`), eight
each on `GET /api/config/feature-flags`, anonymous `POST /api/orders`, a mechanic's
`PATCH /api/mechanic/orders/<id>/status` and `GET /v1/observer/events`, each endpoint driven
by a wrk of its own so each has its own latency figures. Any error or non-2xx answer is
counted (the target is none). Baseline: the bare Django view under the same 32 connections.

Then the same mix again with a halt raised half-way: every order answered 201 must be in the
database with its event (lost: 0), no order or status change may be written later than a
second after the halt (the processes' halt checks refresh every half second), and every
write refused after it must be a 503 `halted`.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Result, benchmark
from bench.load import WORKERS, _gunicorn

WRK = shutil.which("wrk") or "wrk"
SECONDS = int(os.environ.get("BENCH_MIX_SECONDS", "60"))
HALT_RUN_SECONDS = 20
PER_ENDPOINT = 8
# Two status changes each: enough for 150 changes/s for the run (a third change is a 409).
ORDERS_FOR_STATUS = int(os.environ.get("BENCH_MIX_STATUS_ORDERS", "9000"))

# Each wrk prints its own figures at the end, and counts answers by status.
COMMON = """
counts = {}  -- a global: done() reads each thread's with thread:get
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status >= 400 and status ~= 503 and not shown then
    shown = true
    io.write("UNEXPECTED " .. status .. " " .. body .. "\\n")
  end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local by_status = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    errors, latency:percentile(50), latency:percentile(95), latency:percentile(99), 0))
  for status, n in pairs(by_status) do io.write(string.format("STATUS %d %d\\n", status, n)) end
end
"""

ORDER = (
    '{"mechanic_name": "Test Mechanic", "vin": "TEST123456789", "car_number": "12-345-67", '
    '"part_type": "brake_pads", "category": "brakes", "original_or_analog": "original"}'
)


def _scripts(ids: list[int], token: str, head: int) -> dict[str, str]:
    return {
        "flags": "",
        "orders": f"""
wrk.method = "POST"
wrk.body = '{ORDER}'
wrk.headers["Content-Type"] = "application/json"
""",
        # Two rounds over the orders: in_progress, then cancelled (allowed from new and from
        # in_progress alike, so the second round holds whatever became of the first).
        "status": f"""
local ids = {{{",".join(map(str, ids))}}}
local n, counter = #ids, 0
local moves = {{"in_progress", "cancelled"}}
request = function()
  local id = ids[counter % n + 1]
  local move = moves[math.min(math.floor(counter / n), 1) + 1]
  counter = counter + 1
  return wrk.format("PATCH", "/api/mechanic/orders/" .. id .. "/status",
    {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}},
    '{{"status": "' .. move .. '"}}')
end
""",
        "observer": f"""
request = function()
  return wrk.format("GET", "/v1/observer/events?limit=20&after_sequence=" ..
    math.random(0, {head}))
end
""",
    }


PATHS = {
    "flags": "/api/config/feature-flags",
    "orders": "/api/orders",
    "status": "/api/mechanic/orders/0/status",
    "observer": "/v1/observer/events",
    "bare": "/bare",
}


@dataclass
class Run:
    requests: int
    seconds: float
    errors: int  # socket errors and timeouts
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[int, int]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return self.errors + sum(n for s, n in self.statuses.items() if not 200 <= s < 300)


def _parse(output: str) -> Run:
    statuses: dict[int, int] = {}
    run = None
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] == ["RESULT"]:
            requests, duration, errors, p50, p95, p99, _ = map(int, parts[1:])
            run = (requests, duration / 1e6, errors, p50 / 1e3, p95 / 1e3, p99 / 1e3)
        elif parts[:1] == ["STATUS"]:
            statuses[int(parts[1])] = int(parts[2])
        elif parts[:1] == ["UNEXPECTED"]:
            print(f"wrk: {line}", file=sys.stderr)  # the first unexpected answer, to see why
    if run is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return Run(*run, statuses=statuses)


def _wrk_all(base: str, scripts: dict[str, str], seconds: int, connections: int) -> dict[str, Run]:
    """One wrk per endpoint, all at once; returns each one's figures."""
    with tempfile.TemporaryDirectory(prefix="conclave-mix-") as folder:
        processes = {}
        for name, body in scripts.items():
            script = Path(folder) / f"{name}.lua"
            script.write_text(body + COMMON)
            processes[name] = subprocess.Popen(  # noqa: S603 - wrk (system-packages.txt)
                [WRK, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout",
                 "10s", "-s", str(script), f"{base}{PATHS[name]}"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        return {name: _parse(process.communicate()[0]) for name, process in processes.items()}


def _prepare(count: int) -> tuple[list[int], str, int]:
    """A mechanic with `count` new orders of theirs: (their ids, token, log head)."""
    from rest_framework.authtoken.models import Token

    from events.models import Event
    from orders.services import mechanic_create, order_create

    suffix = int(time.time())
    mechanic = mechanic_create(username=f"mix-{suffix}", password=secrets.token_urlsafe(16))
    token = Token.objects.create(user=mechanic.user).key
    ids = [
        order_create(
            mechanic_name="Mix", vin="TEST123456789", part_type="brake_pads",
            category="brakes", original_or_analog="original", created_by=mechanic.user,
        ).pk
        for _ in range(count)
    ]  # fmt: skip
    head = Event.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    return ids, token, head


def _results(prefix: str, runs: dict[str, Run], bare: Run) -> list[Result]:
    label = f"bare Django view, {4 * PER_ENDPOINT} connections, gunicorn x{WORKERS}"
    results = []
    for name, run in runs.items():
        results += [
            Result(f"{prefix}_{name}_throughput", run.throughput, "requests/s", label,
                   bare.throughput),
            Result(f"{prefix}_{name}_p50", run.p50_ms, "ms", label, bare.p50_ms),
            Result(f"{prefix}_{name}_p95", run.p95_ms, "ms", label, bare.p95_ms),
            Result(f"{prefix}_{name}_p99", run.p99_ms, "ms", label, bare.p99_ms),
            Result(f"{prefix}_{name}_errors", run.failed, "requests", "requests made",
                   run.requests),
        ]  # fmt: skip
    total = sum(run.requests for run in runs.values()) / max(r.seconds for r in runs.values())
    results.append(Result(f"{prefix}_throughput", total, "requests/s", label, bare.throughput))
    return results


def _halt_after(seconds: float, moment: list[float]) -> threading.Thread:
    def raise_halt() -> None:
        from django.db import connection

        from conclave.services import halt_raise

        time.sleep(seconds)
        moment.append(time.time())
        halt_raise(reason="load drill", actor="bench", channel="api")
        connection.close()

    thread = threading.Thread(target=raise_halt)
    thread.start()
    return thread


def _logged(event_type: str, **when: object) -> int:
    """Events of the type in the log, or committed and waiting in the queue (while halted
    the integrator chains only halt events: the rest wait there for the clear)."""
    from events.models import Event, EventQueueEntry

    chained = Event.objects.filter(event_type=event_type, **when).count()
    waiting = EventQueueEntry.objects.filter(
        event_type=event_type, sequence__isnull=True, rejected_reason="", **when
    ).count()
    return chained + waiting


def _halt_checks(runs: dict[str, Run], started: float, halted_at: float) -> list[Result]:
    from datetime import UTC, datetime, timedelta

    from orders.models import Order

    since = datetime.fromtimestamp(started, UTC)
    cutoff = datetime.fromtimestamp(halted_at, UTC) + timedelta(seconds=1)
    made = Order.objects.filter(created_at__gte=since, mechanic_name="Test Mechanic").count()
    logged = _logged("order.created", local_timestamp__gte=since)
    late_orders = Order.objects.filter(created_at__gt=cutoff).count()
    late_moves = _logged("order.status_changed", local_timestamp__gt=cutoff)
    answered = runs["orders"].statuses.get(201, 0)
    refused_writes = sum(runs[name].statuses.get(503, 0) for name in ("orders", "status"))
    other_failures = sum(
        n for name in ("orders", "status") for s, n in runs[name].statuses.items()
        if s not in (200, 201, 503)
    ) + sum(runs[name].failed for name in ("flags", "observer"))  # fmt: skip
    return [
        Result("mix_halt_orders_lost", answered - min(made, logged), "orders",
               "orders answered 201", answered),
        Result("mix_halt_written_after", late_orders + late_moves, "writes",
               "writes refused with 503 after the halt", refused_writes),
        Result("mix_halt_other_failures", other_failures, "requests", "requests made",
               sum(r.requests for r in runs.values())),
    ]  # fmt: skip


@benchmark
def workshop_mix() -> list[Result]:
    from bench.events import _integrator
    from conclave.halt import forget_halt_status, redis_channel
    from events.services import keys_bootstrap

    keys_bootstrap()
    with _gunicorn("bench.baseline.settings", "/bare") as base:
        bare = _wrk_all(base, {"bare": ""}, 10, 4 * PER_ENDPOINT)["bare"]
    integrator = _integrator()
    extra = {"THROTTLE_RATE_OBSERVER": "", "THROTTLE_RATE_LOGIN": ""}
    try:
        ids, token, head = _prepare(ORDERS_FOR_STATUS)
        with _gunicorn(os.environ["DJANGO_SETTINGS_MODULE"], "/v1/health", extra) as base:
            runs = _wrk_all(base, _scripts(ids, token, head), SECONDS,
                            PER_ENDPOINT)  # fmt: skip
            ids, token, head = _prepare(ORDERS_FOR_STATUS // 2)
            started, moment = time.time(), []
            halting = _halt_after(HALT_RUN_SECONDS / 2, moment)
            halted = _wrk_all(base, _scripts(ids, token, head),
                              HALT_RUN_SECONDS, PER_ENDPOINT)  # fmt: skip
            halting.join()
        checks = _halt_checks(halted, started, moment[0])
    finally:
        integrator.terminate()
        integrator.wait(timeout=60)
        # The drill's halt stays in this run's scratch database, dropped at the end; Redis is
        # shared, so its keys go now (this is the last benchmark).
        redis_channel.write(halted=False)
        forget_halt_status()
    return [*_results("mix", runs, bare), *checks]
