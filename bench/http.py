"""Request cost of the core endpoints through the whole middleware stack, in process."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from bench.harness import Result, benchmark, rate

HOST = "127.0.0.1"  # in ALLOWED_HOSTS of every settings module


def bare_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# The baseline's URLconf: the same path served by a bare view.
urlpatterns = [path("v1/health", bare_view)]


def expect_ok(response: HttpResponse) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"benchmark request answered {response.status_code}, not 200")


@benchmark
def health_requests() -> list[Result]:
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF=__name__):
        bare = Client(HTTP_HOST=HOST)
        expect_ok(bare.get("/v1/health"))  # warm: loads this URLconf and an empty chain
        baseline = rate(lambda: expect_ok(bare.get("/v1/health")))

    client = Client(HTTP_HOST=HOST)
    expect_ok(client.get("/v1/health"))  # warm: URLconf, middleware chain, logging
    health = rate(lambda: expect_ok(client.get("/v1/health")))
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
    HaltMiddleware in front of it, and with nothing."""
    from conclave.halt import halt_status

    if halt_status(fresh=True).halted:
        raise RuntimeError("the benchmark database is halted; the check would refuse")
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF=__name__):
        bare = Client(HTTP_HOST=HOST)
        expect_ok(bare.post("/v1/health"))
        without = rate(lambda: expect_ok(bare.post("/v1/health")))
    with override_settings(
        MIDDLEWARE=["conclave.middleware.HaltMiddleware"], ROOT_URLCONF=__name__
    ):
        checked = Client(HTTP_HOST=HOST)
        expect_ok(checked.post("/v1/health"))
        with_check = rate(lambda: expect_ok(checked.post("/v1/health")))
    cost_us = max(1e6 / with_check - 1e6 / without, 0.0)
    return [
        Result("halt_check_request", with_check, "requests/s",
               "the same POST without the halt check", without),
        Result("halt_check_cost", cost_us, "µs/request",
               "the whole bare POST request", 1e6 / without),
    ]  # fmt: skip


PROPAGATION_PROBE = """
import sys, time, django
django.setup()
from flags.selectors import flags_snapshot
flags_snapshot()
print("ready", flush=True)
while not flags_snapshot()["ENABLE_UI_REFRESH"]:
    time.sleep(0.001)
print(time.time(), flush=True)
"""


@benchmark
def flag_checks() -> list[Result]:
    """A flag check on the hot path, and how long a change takes to reach another process."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from flags.selectors import flags_snapshot
    from flags.services import flag_set

    plain = {"ENABLE_UI_REFRESH": False}
    flags_snapshot()
    check = rate(lambda: flags_snapshot()["ENABLE_UI_REFRESH"])
    lookup = rate(lambda: plain["ENABLE_UI_REFRESH"])

    client = Client(HTTP_HOST=HOST)
    expect_ok(client.get("/api/config/feature-flags"))
    flags_request = rate(lambda: expect_ok(client.get("/api/config/feature-flags")))
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF=__name__):
        bare = Client(HTTP_HOST=HOST)
        expect_ok(bare.get("/v1/health"))
        bare_request = rate(lambda: expect_ok(bare.get("/v1/health")))

    probe = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROPAGATION_PROBE],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if probe.stdout is None or probe.stdout.readline().strip() != "ready":
        raise RuntimeError("the propagation probe did not start")
    changed_at = time.time()
    flag_set(name="ENABLE_UI_REFRESH", enabled=True, actor="bench")
    seen_at = float(probe.stdout.readline())
    probe.wait(timeout=10)
    flag_set(name="ENABLE_UI_REFRESH", enabled=False, actor="bench")
    return [
        Result("flag_check", 1e6 / check, "µs/check", "a plain dict lookup", 1e6 / lookup),
        Result("feature_flags_request", flags_request, "requests/s",
               "bare Django view, same handler, no middleware", bare_request),
        Result("flag_propagation", (seen_at - changed_at) * 1000, "ms",
               "the 1 s requirement (not a measured baseline)", 1000.0),
    ]  # fmt: skip
