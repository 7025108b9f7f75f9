"""Delivery of the outbox by Celery: one task per row, and a beat job for rows that are due
(broker down at commit time, a worker killed mid-send, retries whose task was lost)."""

import structlog
from celery import shared_task

from conclave.tasks import HaltGuardedTask

logger = structlog.get_logger(__name__)

DISPATCH_BATCH = 500


@shared_task(base=HaltGuardedTask, ignore_result=True)
def deliver_notification(notification_id: int) -> None:
    from notifications.delivery import deliver

    retry_in = deliver(notification_id)
    if retry_in is not None:
        deliver_notification.apply_async((notification_id,), countdown=retry_in)


@shared_task(base=HaltGuardedTask, ignore_result=True)
def dispatch_due_notifications() -> int:
    """Hands every due row to a worker (the claim stops a row being sent twice)."""
    from conclave.metrics import OUTBOX_BACKLOG
    from notifications.delivery import due
    from notifications.models import Notification, NotificationStatus

    waiting = Notification.objects.filter(
        status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING]
    )
    OUTBOX_BACKLOG.set(waiting.count())
    ids = list(
        Notification.objects.filter(due())
        .order_by("id")
        .values_list("pk", flat=True)[:DISPATCH_BATCH]
    )
    for notification_id in ids:
        deliver_notification.apply_async((notification_id,))
    if ids:  # an idle run is not logged (conclave.logging.ROUTINE_TASKS)
        logger.info("due_notifications_dispatched", count=len(ids))
    return len(ids)
