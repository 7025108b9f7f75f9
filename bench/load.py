"""The workshop under load: `GET /api/config/feature-flags` and `POST /api/orders` with 16
concurrent clients (wrk) against gunicorn, each beside a bare view served the same way in the
same run (bench.baseline: same gunicorn, same workers, no middleware), the two measured in
turns so that a machine shared with others slows both alike.

Orders are anonymous, as in the rollout runbook, with the throttles off (all clients share one
address); the integrator runs beside gunicorn as it is deployed, so the events the orders
queue are chained while the load runs.
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Result, benchmark

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = 16
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "10"))
# The view and its baseline are measured in turns, SECONDS / ROUNDS at a time.
ROUNDS = 5
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1))))
ORDER = (
    '{"mechanic_name": "Test Mechanic", "vin": "TEST123456789", "car_number": "12-345-67", '
    '"part_type": "brake_pads", "category": "brakes", "original_or_analog": "original"}'
)
POST_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{ORDER}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:  # requests/s
        return self.requests / self.seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _gunicorn(
    settings_module: str, probe: str, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "EVENT_INTEGRATION": "integrator",
        # Every wrk client shares one address, which the throttles exist to stop: they are
        # switched off, and the run measures the work behind them.
        "THROTTLE_RATE_ORDERS_ANON": "",
        "THROTTLE_RATE_ANON": "",
        "THROTTLE_RATE_USER": "",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
        [sys.executable, "-m", "gunicorn", "conclave.wsgi:application", "--workers", str(WORKERS),
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}{probe}", timeout=1):  # noqa: S310 - loopback
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"gunicorn ({settings_module}) did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, *, post: bool, seconds: int = SECONDS) -> Load:
    """wrk with CONNECTIONS connections for `seconds`; any non-2xx answer or socket error
    fails the benchmark (a fast error is not throughput)."""
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(POST_SCRIPT if post else "")
    try:
        output = subprocess.run(  # noqa: S603 - wrk from system-packages.txt
            [*command, "-s", script.name, url], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"the load run had failed requests:\n{output}")
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", output, re.MULTILINE))
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s),", output)
    if done is None:
        raise RuntimeError(f"wrk did not report its requests:\n{output}")
    return Load(
        int(done.group(1)),
        _milliseconds(done.group(2) + done.group(3)) / 1000,
        _milliseconds(percentiles["50"]),
        _milliseconds(percentiles["99"]),
    )


def _paired(url: str, baseline_url: str, *, post: bool) -> tuple[Load, Load]:
    """The view and its baseline, each for SECONDS in all, taken in turns (ROUNDS of each):
    a machine that slows down or speeds up during the run affects both alike. Throughput is
    over all the rounds; p50 is the rounds' median, p99 their worst."""
    for target in (url, baseline_url):
        _wrk(target, post=post, seconds=2)  # warm: every worker's connections, caches, paths
    runs: dict[str, list[Load]] = {url: [], baseline_url: []}
    for _ in range(ROUNDS):
        for target in (url, baseline_url):
            runs[target].append(_wrk(target, post=post, seconds=max(1, SECONDS // ROUNDS)))
    combined = []
    for loads in runs.values():
        combined.append(
            Load(
                sum(load.requests for load in loads),
                sum(load.seconds for load in loads),
                statistics.median(load.p50_ms for load in loads),
                max(load.p99_ms for load in loads),
            )
        )
    return combined[0], combined[1]


def _results(name: str, load: Load, baseline_name: str, baseline: Load) -> list[Result]:
    return [
        Result(f"{name}_throughput", load.throughput, "requests/s", baseline_name,
               baseline.throughput),
        Result(f"{name}_p50", load.p50_ms, "ms", baseline_name, baseline.p50_ms),
        Result(f"{name}_p99", load.p99_ms, "ms", baseline_name, baseline.p99_ms),
    ]  # fmt: skip


@benchmark
def workshop_load() -> list[Result]:
    from bench.events import _integrator
    from events.services import keys_bootstrap

    keys_bootstrap()
    integrator = _integrator()
    try:
        with (
            _gunicorn("bench.baseline.settings", "/bare") as bare,
            _gunicorn(os.environ["DJANGO_SETTINGS_MODULE"], "/v1/health") as base,
        ):
            flags, bare_json = _paired(
                f"{base}/api/config/feature-flags", f"{bare}/bare", post=False
            )
            orders, bare_drf = _paired(f"{base}/api/orders", f"{bare}/bare-drf", post=True)
    finally:
        integrator.send_signal(signal.SIGTERM)
        integrator.wait(timeout=60)
    label = f"{CONNECTIONS} clients, gunicorn x{WORKERS}, in {ROUNDS} turns with the view"
    return [
        *_results("flags_load", flags, f"bare Django JSON view ({label})", bare_json),
        *_results("orders_load", orders, f"bare DRF POST view ({label})", bare_drf),
    ]
