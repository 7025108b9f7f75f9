"""Liveness and readiness: what the probes and the workshop's monitors ask (SPEC 3.7)."""

import time
from pathlib import Path
from typing import Literal

import structlog
from django.conf import settings
from django.db import DatabaseError, connection
from django_redis import get_redis_connection
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

logger = structlog.get_logger(__name__)

PROCESS_STARTED_AT = time.monotonic()

Status = Literal["connected", "unavailable", "not_configured"]


def uptime_seconds() -> float:
    return round(time.monotonic() - PROCESS_STARTED_AT, 3)


def database_status() -> Status:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readiness_database_unavailable", error=str(exc))
        connection.close_if_unusable_or_obsolete()
        return "unavailable"
    return "connected"


def redis_status() -> Status:
    if not settings.REDIS_URL:
        return "not_configured"
    try:
        get_redis_connection("default").ping()
    except (RedisError, OSError) as exc:
        logger.warning("readiness_redis_unavailable", error=str(exc))
        return "unavailable"
    return "connected"


def broker_status() -> Status:
    from conclave.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        queue = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        return "connected" if queue.is_dir() else "unavailable"
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL, connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except (KombuError, OSError) as exc:
        logger.warning("readiness_broker_unavailable", error=str(exc))
        return "unavailable"
    return "connected"


def outbox_backlog() -> dict[str, object]:
    """Telegram messages waiting (pending or being sent) and the age of the oldest: reported,
    not a reason to be unready (orders go on while Telegram is away)."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from notifications.models import Notification, NotificationStatus

    waiting = Notification.objects.filter(
        status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING]
    ).aggregate(backlog=Count("id"), oldest=Min("created_at"))
    oldest = waiting["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {"backlog": waiting["backlog"], "oldest_age_seconds": round(max(age, 0.0), 3)}


def readiness() -> tuple[bool, dict[str, object]]:
    """Checks every dependency a request may need. Ready when none is unavailable."""
    components: dict[str, Status] = {
        "database": database_status(),
        "redis": redis_status(),
        "broker": broker_status(),
    }
    down = [name for name, status in components.items() if status == "unavailable"]
    body: dict[str, object] = {"status": "not_ready" if down else "ready", **components}
    if down:
        body["down"] = down
    if components["database"] == "connected":
        try:
            body["outbox"] = outbox_backlog()
        except DatabaseError as exc:  # before migrations, or lost since the check above
            logger.warning("readiness_outbox_unknown", error=str(exc))
    return not down, body
