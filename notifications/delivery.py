"""Sending one outbox row: claim it, respect Telegram's limits and the circuit breaker, send,
and settle it. Used by the Celery tasks."""

import random
import time
from datetime import timedelta
from functools import cache

import pybreaker
import structlog
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from conclave.metrics import (
    NOTIFICATION_LATENCY,
    NOTIFICATION_RETRIES,
    NOTIFICATIONS_GIVEN_UP,
    NOTIFICATIONS_SENT,
)
from notifications import telegram
from notifications.models import Notification, NotificationStatus

logger = structlog.get_logger(__name__)
PENDING, SENDING = NotificationStatus.PENDING, NotificationStatus.SENDING


def lease() -> timedelta:
    """How long a claim holds: longer than any one call to Telegram can take (connect, write
    and read each have TELEGRAM_TIMEOUT_SECONDS)."""
    return timedelta(seconds=4 * settings.TELEGRAM_TIMEOUT_SECONDS + 2)


def due() -> Q:
    """Rows a worker may take now: pending and due, or claimed by a worker that died."""
    now = timezone.now()
    return Q(status=PENDING, next_attempt_at__lte=now) | Q(status=SENDING, claimed_until__lt=now)


@cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(settings.REDIS_URL or "memory://"))


def _rate_wait(chat_id: int) -> float:
    """0 if this message may go now (and counts it), else the seconds to wait: about 30 a
    second overall and 1 a second per chat, across every worker. If Redis cannot be asked,
    sending goes on: Telegram's own 429 is the backstop."""
    limits = (
        (parse(settings.TELEGRAM_RATE_PER_CHAT), ("telegram", "chat", str(chat_id))),
        (parse(settings.TELEGRAM_RATE_GLOBAL), ("telegram", "all")),
    )
    try:
        for limit, keys in limits:
            if not _limiter().test(limit, *keys):
                reset_at, _remaining = _limiter().get_window_stats(limit, *keys)
                return max(reset_at - time.time(), 0.05)
        for limit, keys in limits:
            _limiter().hit(limit, *keys)
    except Exception as exc:  # noqa: BLE001 - a limiter outage must not stop delivery
        logger.warning("telegram_rate_limiter_unavailable", error=str(exc))
    return 0.0


@cache
def breaker() -> pybreaker.CircuitBreaker:
    """Shared by every worker through Redis: after TELEGRAM_BREAKER_FAILURES transient
    failures in a row no one calls Telegram for TELEGRAM_BREAKER_RESET_SECONDS; then one
    probe goes through. Refusals (bad chat) and 429s say Telegram is up: they do not count."""
    storage: pybreaker.CircuitBreakerStorage = pybreaker.CircuitMemoryStorage(
        pybreaker.STATE_CLOSED
    )
    if settings.REDIS_URL:
        import redis

        try:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED,
                redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2),
                namespace="conclave:telegram",
            )
        except redis.RedisError as exc:
            logger.warning("telegram_breaker_local_only", error=str(exc))
    return pybreaker.CircuitBreaker(
        fail_max=settings.TELEGRAM_BREAKER_FAILURES,
        reset_timeout=settings.TELEGRAM_BREAKER_RESET_SECONDS,
        exclude=[telegram.Permanent, telegram.RetryAfter],
        state_storage=storage,
        name="telegram",
    )


def _backoff(attempts: int) -> float:
    """Exponential, capped, with full jitter (workers retrying together spread out)."""
    ceiling = min(
        settings.NOTIFY_BACKOFF_MAX_SECONDS, settings.NOTIFY_BACKOFF_SECONDS * 2 ** (attempts - 1)
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def deliver(notification_id: int) -> float | None:
    """Sends the row if it is due and no one else has it. Returns the seconds after which it
    should be tried again, or None when it is settled (or was not ours to send)."""
    now = timezone.now()
    claimed_until = now + lease()
    claimed = Notification.objects.filter(due(), pk=notification_id).update(
        status=SENDING, claimed_until=claimed_until, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    row = Notification.objects.get(pk=notification_id)
    ours = Notification.objects.filter(pk=row.pk, status=SENDING, claimed_until=claimed_until)

    def later(seconds: float, reason: str, error: str = "", *, counts: bool = False) -> float:
        NOTIFICATION_RETRIES.labels(reason).inc()
        ours.update(
            status=PENDING,
            claimed_until=None,
            next_attempt_at=timezone.now() + timedelta(seconds=seconds),
            last_error=(error or reason)[:500],
            attempts=F("attempts") - (0 if counts else 1),
        )
        return seconds

    def give_up(status: str, error: str) -> None:
        NOTIFICATIONS_GIVEN_UP.labels(status).inc()
        ours.update(status=status, claimed_until=None, last_error=error[:500])
        logger.error("notification_given_up", notification_id=row.pk, status=status, error=error)

    wait = _rate_wait(row.chat_id)
    if wait:
        return later(wait, "rate_limit")
    try:
        message_id = breaker().call(telegram.send_message, row.chat_id, row.text, row.reply_markup)
    except pybreaker.CircuitBreakerError:
        return later(
            settings.TELEGRAM_BREAKER_RESET_SECONDS,
            "circuit_open",
            "circuit open: Telegram is failing",
        )
    except telegram.RetryAfter as exc:
        return later(exc.seconds, "retry_after", str(exc))
    except telegram.Permanent as exc:
        give_up(NotificationStatus.FAILED, str(exc))
        return None
    except telegram.Transient as exc:
        if row.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            give_up(NotificationStatus.DEAD, f"after {row.attempts} attempts: {exc}")
            return None
        return later(_backoff(row.attempts), "transient", str(exc), counts=True)
    sent_at = timezone.now()
    ours.update(
        status=NotificationStatus.SENT,
        claimed_until=None,
        telegram_message_id=message_id,
        sent_at=sent_at,
        last_error="",
    )
    NOTIFICATIONS_SENT.labels(row.kind).inc()
    NOTIFICATION_LATENCY.observe(max((sent_at - row.created_at).total_seconds(), 0.0))
    return None
