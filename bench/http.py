"""Request cost of the core endpoints through the whole middleware stack, in process, each
measured in turns with its baseline (bench.harness.in_turns)."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from bench.harness import Result, benchmark, in_turns, rate

HOST = "127.0.0.1"  # in ALLOWED_HOSTS of every settings module
TURN = 0.5  # seconds of each turn (six turns of each measurement)


def bare_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# The baseline's URLconf: the same path served by a bare view.
urlpatterns = [path("v1/health", bare_view)]


def expect_ok(response: HttpResponse) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"benchmark request answered {response.status_code}, not 200")


def requests_per_second(method: str, url: str, **overrides: Any) -> Callable[[], float]:
    """A turn of requests to `url`, under the settings `overrides` if any given. A test client
    builds its middleware chain on its first request and keeps it; the URLconf is read on
    every request, so the warm-up and each turn run under the overrides."""
    send = getattr(Client(HTTP_HOST=HOST), method)

    def request() -> None:
        expect_ok(send(url))

    def served() -> AbstractContextManager[object]:
        return override_settings(**overrides) if overrides else nullcontext()

    with served():
        request()  # warm: URLconf, middleware chain, logging

    def turn() -> float:
        with served():
            return rate(request, seconds=TURN)

    return turn


def bare_requests_per_second(method: str, middleware: Sequence[str] = ()) -> Callable[[], float]:
    """A turn of requests to this module's bare view behind `middleware` only (none: the
    baseline)."""
    return requests_per_second(
        method, "/v1/health", MIDDLEWARE=list(middleware), ROOT_URLCONF=__name__
    )


@benchmark
def health_requests() -> list[Result]:
    health, baseline = in_turns(
        requests_per_second("get", "/v1/health"), bare_requests_per_second("get")
    )
    return [
        Result(
            name="health_request",
            value=health,
            unit="requests/s",
            baseline_name="bare Django view, same handler, no middleware",
            baseline=baseline,
        )
    ]


@benchmark
def halt_check() -> list[Result]:
    """What the halt check adds to an unsafe request: the same POST to a bare view with only
    HaltMiddleware in front of it, and with nothing. The difference of two request times is
    small beside their noise, so it may come out a little below zero."""
    from conclave.halt import halt_status

    if halt_status(fresh=True).halted:
        raise RuntimeError("the benchmark database is halted; the check would refuse")
    with_check, without = in_turns(
        bare_requests_per_second("post", ["conclave.middleware.HaltMiddleware"]),
        bare_requests_per_second("post"),
    )
    return [
        Result("halt_check_request", with_check, "requests/s",
               "the same POST without the halt check", without),
        Result("halt_check_cost", 1e6 / with_check - 1e6 / without, "µs/request",
               "the whole bare POST request", 1e6 / without),
    ]  # fmt: skip


# Prints the time it sees each of `changes` flips of ENABLE_UI_REFRESH.
PROPAGATION_PROBE = """
import sys, time, django
django.setup()
from flags.selectors import flags_snapshot
seen = flags_snapshot()["ENABLE_UI_REFRESH"]
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    while flags_snapshot()["ENABLE_UI_REFRESH"] == seen:
        time.sleep(0.001)
    seen = not seen
    print(time.time(), flush=True)
"""
PROPAGATION_CHANGES = 8


@benchmark
def flag_checks() -> list[Result]:
    """A flag check on the hot path, and how long a change takes to reach another process:
    eight changes, each at a random moment of the other process's local cache period."""
    import random
    import statistics
    import subprocess
    import sys
    import time
    from pathlib import Path

    from events.services import keys_bootstrap
    from flags.selectors import LOCAL_TTL, flags_snapshot
    from flags.services import flag_set

    keys_bootstrap()  # a change is an event (BENCH_ONLY may run this first)

    plain = {"ENABLE_UI_REFRESH": False}
    flags_snapshot()
    check, lookup = in_turns(
        lambda: rate(lambda: flags_snapshot()["ENABLE_UI_REFRESH"], seconds=TURN),
        lambda: rate(lambda: plain["ENABLE_UI_REFRESH"], seconds=TURN),
    )
    flags_request, bare_request = in_turns(
        requests_per_second("get", "/api/config/feature-flags"), bare_requests_per_second("get")
    )

    probe = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROPAGATION_PROBE, str(PROPAGATION_CHANGES)],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if probe.stdout is None or probe.stdout.readline().strip() != "ready":
        raise RuntimeError("the propagation probe did not start")
    delays = []
    try:
        for change in range(PROPAGATION_CHANGES):
            time.sleep(random.uniform(0, LOCAL_TTL))  # noqa: S311 - a phase, not a secret
            changed_at = time.time()
            flag_set(name="ENABLE_UI_REFRESH", enabled=change % 2 == 0, actor="bench")
            delays.append((float(probe.stdout.readline()) - changed_at) * 1000)
        probe.wait(timeout=10)
    finally:
        probe.kill()
        flag_set(name="ENABLE_UI_REFRESH", enabled=False, actor="bench")
    return [
        Result("flag_check", 1e6 / check, "µs/check", "a plain dict lookup", 1e6 / lookup),
        Result("feature_flags_request", flags_request, "requests/s",
               "bare Django view, same handler, no middleware", bare_request),
        Result("flag_propagation", max(delays), "ms",
               f"the 1 s requirement; worst of {PROPAGATION_CHANGES} changes", 1000.0),
        Result("flag_propagation_p50", statistics.median(delays), "ms",
               f"the 1 s requirement; median of {PROPAGATION_CHANGES} changes", 1000.0),
    ]  # fmt: skip
