"""Order to Telegram: how long after an order is posted its admin message reaches the Bot API,
at 20 orders a second for 30 seconds (BENCH_NOTIFY_RATE, BENCH_NOTIFY_SECONDS).

Deployed shape: gunicorn takes the orders, the integrator chains their events, a Celery worker
(prefork, 2 processes, as in the Procfile) with its beat delivers through the Redis broker to
the fake Bot API on loopback (tests.fake_telegram, a real HTTP server). Telegram's overall
limit of 30 messages a second stays on; its 1-a-second per-chat limit is lifted, since every
message here goes to the one admin chat (real admin chats would be many, or the rate lower).

The clock starts when the order's POST is sent (so it includes the order itself) and stops
when the fake Bot API accepts the message. Baseline: the same message sent straight to the
fake Bot API from this process, the floor of any delivery.
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.harness import Result, benchmark
from bench.load import ORDER, REPO, _gunicorn

RATE = float(os.environ.get("BENCH_NOTIFY_RATE", "20"))
SECONDS = float(os.environ.get("BENCH_NOTIFY_SECONDS", "30"))
ADMIN_CHAT = 4242


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _worker(env: dict[str, str], schedule: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
        [sys.executable, "-m", "celery", "--app", "conclave", "worker", "--concurrency", "2",
         "--beat", "--schedule", str(schedule), "--loglevel", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _baseline(url: str, token: str, count: int = 300) -> list[float]:
    timings = []
    with httpx.Client() as client:
        for n in range(count):
            started = time.perf_counter()
            client.post(
                f"{url}/bot{token}/sendMessage",
                json={"chat_id": ADMIN_CHAT + 1, "text": f"baseline {n}", "parse_mode": "HTML"},
            ).raise_for_status()
            timings.append(time.perf_counter() - started)
    return timings


def _post_orders(base: str) -> dict[int, float]:
    """Posts RATE orders a second on schedule; returns each order's id and send time."""
    total = int(RATE * SECONDS)
    started = time.time() + 0.5
    sent: dict[int, float] = {}

    def post(n: int, client: httpx.Client) -> None:
        due = started + n / RATE
        time.sleep(max(0.0, due - time.time()))
        at = time.time()
        response = client.post(
            f"{base}/api/orders", content=ORDER, headers={"Content-Type": "application/json"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"order {n}: {response.status_code} {response.text}")
        sent[response.json()["id"]] = at

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(post, n, client) for n in range(total)]:
            future.result()
    return sent


@benchmark
def notification_latency() -> list[Result]:
    from django.conf import settings

    from bench.events import _integrator
    from events.services import keys_bootstrap
    from flags.services import flag_set
    from tests.fake_telegram import TOKEN, fake_telegram

    keys_bootstrap()
    flag_set(name="ENABLE_TG_ADMIN_NOTIFS", enabled=True, actor="bench")
    with fake_telegram() as fake:
        baseline = _baseline(fake.url, TOKEN)
        telegram = {
            "TELEGRAM_API_BASE_URL": fake.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "ADMIN_CHAT_IDS": str(ADMIN_CHAT),
            "TELEGRAM_RATE_PER_CHAT": "1000/second",
        }
        integrator = _integrator()
        worker = _worker(
            {**os.environ, **telegram, "LOG_LEVEL": "WARNING"},
            Path(settings.VAR_DIR) / f"bench-beat-{uuid.uuid4().hex[:6]}",
        )
        try:
            with _gunicorn(os.environ["DJANGO_SETTINGS_MODULE"], "/v1/health", telegram) as base:
                time.sleep(3)  # the worker is up and listening
                sent = _post_orders(base)
                deadline = time.time() + 60
                while len(fake.messages_to(ADMIN_CHAT)) < len(sent) and time.time() < deadline:
                    time.sleep(0.2)
        finally:
            for process in (worker, integrator):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    delivered: dict[int, float] = {}
    with fake.lock:
        for message in fake.accepted:
            found = re.search(r"New order #(\d+)", message["text"])
            if message["chat_id"] == ADMIN_CHAT and found:
                order_id = int(found.group(1))
                if order_id in delivered:
                    raise RuntimeError(f"order {order_id}'s message was delivered twice")
                delivered[order_id] = message["received_at"]
    missing = set(sent) - set(delivered)
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(sent)} messages never arrived")
    latencies = [delivered[order_id] - sent[order_id] for order_id in sent]
    label = "a sendMessage straight to the fake Bot API"
    p50, p95 = statistics.median(latencies), _percentile(latencies, 0.95)
    achieved = (len(sent) - 1) / (max(sent.values()) - min(sent.values()))
    return [
        Result("notify_order_rate", achieved, "orders/s", "the planned rate", RATE),
        Result("notify_p50", p50 * 1000, "ms", label, statistics.median(baseline) * 1000),
        Result("notify_p95", p95 * 1000, "ms", label, _percentile(baseline, 0.95) * 1000),
        Result("notify_max", max(latencies) * 1000, "ms", label, max(baseline) * 1000),
    ]
