"""Checkpoints and proofs on a log of BENCH_LOG_EVENTS events (default 1,000,000), each
figure beside a baseline of this run.

The log is grown through the product's own append path (signed, witnessed, chained, checked
by the triggers), so building it takes minutes; it shares the scratch database with
bench.events and grows from what that left.
"""

import hashlib
import os
import random
import sys
import time
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.test import Client, override_settings
from django.urls import path

from bench.harness import Result, bare_ed25519_verify, benchmark, measured_run
from bench.http import HOST, bare_view

LOG_EVENTS = int(os.environ.get("BENCH_LOG_EVENTS", "1000000"))
PROOF_SAMPLES = int(os.environ.get("BENCH_PROOF_SAMPLES", "400"))
SAMPLED_VERIFIES = 10_000  # the first checkpoint's baseline is extrapolated from these
LATER_EVENTS = 1000  # appended between two checkpoints in the steady-state figure
REPO = Path(__file__).resolve().parents[1]
# The baseline's URLconf: a bare view at the proof's path.
urlpatterns = [path("v1/observer/roots", bare_view)]


def _grow_log(size: int) -> None:
    from events import tree
    from events.services import EventDraft, event_append_batch

    with override_settings(EVENT_INTEGRATION="inline"):
        while (missing := size - tree.log_size()) > 0:
            event_append_batch(
                drafts=[EventDraft("order.created", {"n": n}) for n in range(min(2000, missing))]
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events")


def _keepers() -> None:
    from django.conf import settings

    from events.models import KeeperKey
    from events.services import keeper_key_register

    for n in range(settings.HALT_CLEAR_QUORUM - KeeperKey.objects.count()):
        public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        keeper_key_register(keeper_id=f"bench-keeper-{n}", public_key=public)


def _percentiles_ms(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return (
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def _latencies(client: Client, urls: list[str]) -> list[float]:
    latencies = []
    for n, url in enumerate(urls):
        # One address per request: the observer throttle is per client address.
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        started = time.perf_counter()
        response = client.get(url, REMOTE_ADDR=address)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content!r}")
    return latencies


def _bare_hashing(leaves: int) -> float:
    """Seconds to hash `leaves` leaves and the leaves - 1 nodes above them in a Python loop."""
    sha256, data = hashlib.sha256, b"\x00" * 33
    started = time.perf_counter()
    for _ in range(2 * leaves - 1):
        sha256(data).digest()
    return time.perf_counter() - started


def _bare_verifies(count: int) -> float:
    verify = bare_ed25519_verify()
    started = time.perf_counter()
    for _ in range(count):
        verify()
    return time.perf_counter() - started


def _raw_read_seconds(size: int) -> float:
    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST']} port={settings['PORT'] or 5432} "
        f"user={settings['USER']} dbname={settings['NAME']}"
    )
    started = time.perf_counter()
    with psycopg.connect(dsn) as raw, raw.cursor(name="content_hashes") as cursor:
        cursor.execute("SELECT content_hash FROM events WHERE sequence <= %s", [size])
        while cursor.fetchmany(50_000):
            pass
    return time.perf_counter() - started


@benchmark
def merkle() -> list[Result]:
    from events import tree
    from events.services import EventDraft, checkpoint_create, event_append_batch, keys_bootstrap

    keys_bootstrap()
    _keepers()
    _grow_log(LOG_EVENTS)
    size = tree.log_size()

    started = time.perf_counter()
    tree.tree_extend()
    build = time.perf_counter() - started

    started = time.perf_counter()
    first = checkpoint_create(actor="bench")
    first_seconds = time.perf_counter() - started
    with override_settings(EVENT_INTEGRATION="inline"):
        event_append_batch(
            drafts=[EventDraft("order.created", {"later": n}) for n in range(LATER_EVENTS)]
        )
    started = time.perf_counter()
    checkpoint_create(actor="bench")
    steady_seconds = time.perf_counter() - started

    rng = random.Random(1)  # noqa: S311 - sampling positions, not secrets
    size = tree.log_size()
    inclusion = [
        f"/v1/observer/proofs/inclusion?sequence={rng.randint(1, size)}&tree_size={size}"
        for _ in range(PROOF_SAMPLES)
    ]
    consistency = [
        f"/v1/observer/proofs/consistency?first={rng.randint(1, size)}&second={size}"
        for _ in range(PROOF_SAMPLES)
    ]
    client = Client(HTTP_HOST=HOST)
    _latencies(client, inclusion[:20])  # warm
    inclusion_p50, inclusion_p99 = _percentiles_ms(_latencies(client, inclusion))
    consistency_p50, consistency_p99 = _percentiles_ms(_latencies(client, consistency))
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF=__name__):
        bare = Client(HTTP_HOST=HOST)
        urls = ["/v1/observer/roots"] * PROOF_SAMPLES
        _latencies(bare, urls[:20])
        bare_p50, bare_p99 = _percentiles_ms(_latencies(bare, urls))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('merkle_tiles'), pg_total_relation_size('events')"
        )
        tiles_bytes, events_bytes = cursor.fetchone()
    anchored = first.tree_size if first else 0
    started = time.perf_counter()
    tree.root_from_events(anchored)
    anchor_seconds = time.perf_counter() - started
    raw_read = _raw_read_seconds(anchored)
    manage = [sys.executable, "manage.py"]
    startup_seconds, startup_mib = measured_run([*manage, "preoperational_verify"], REPO)
    checkpoint_seconds, checkpoint_mib = measured_run([*manage, "checkpoint", "--force"], REPO)
    idle_seconds, idle_mib = measured_run([*manage, "check"], REPO)
    return [
        Result("merkle_tree_build", size / build, "leaves/s",
               f"bare SHA-256 loop, 2 hashes per leaf ({size} leaves)", size / _bare_hashing(size)),
        Result("checkpoint_first", first_seconds, "s",
               f"bare libsodium Ed25519 verifies of the {anchored} events it verified (2 each)",
               _bare_verifies(2 * SAMPLED_VERIFIES) * anchored / SAMPLED_VERIFIES),
        Result("checkpoint_steady", steady_seconds * 1000, "ms",
               f"bare libsodium Ed25519 verifies of the {LATER_EVENTS} new events (2 each)",
               _bare_verifies(2 * LATER_EVENTS) * 1000),
        Result("checkpoint_process_peak_memory", checkpoint_mib, "MiB",
               "manage.py check (Django loaded, no work)", idle_mib),
        Result("inclusion_proof_p50", inclusion_p50, "ms", "bare Django view p50", bare_p50),
        Result("inclusion_proof_p99", inclusion_p99, "ms", "bare Django view p99", bare_p99),
        Result("consistency_proof_p50", consistency_p50, "ms", "bare Django view p50", bare_p50),
        Result("consistency_proof_p99", consistency_p99, "ms", "bare Django view p99", bare_p99),
        Result("merkle_tiles_storage", tiles_bytes / 2**20, "MiB",
               f"the events table ({size} events)", events_bytes / 2**20),
        Result("anchor_recompute", anchor_seconds, "s",
               f"raw read of the {anchored} anchored content_hash values", raw_read),
        Result("startup_verification", startup_seconds, "s",
               "manage.py check (Django start-up, no work)", idle_seconds),
        Result("startup_verification_peak_memory", startup_mib, "MiB",
               "manage.py check (Django loaded, no work)", idle_mib),
    ]  # fmt: skip
