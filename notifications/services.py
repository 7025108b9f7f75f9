"""Writing the outbox. Called by the order services inside their transaction: an order never
exists without its notifications, and a rolled-back order leaves none."""

import hashlib
from collections.abc import Mapping
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.services import PendingEvent
from notifications import messages
from notifications.models import Notification, NotificationKind, NotificationStatus
from orders.models import Order
from orders.services.login_links import login_link_issue

logger = structlog.get_logger(__name__)


def _url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _enqueue(notification_id: int) -> None:
    """Hands the row to a worker now. If the broker is down the order does not wait or fail:
    the beat job (notifications.tasks.dispatch_due_notifications) finds the row when due."""
    from notifications.tasks import deliver_notification

    try:
        deliver_notification.apply_async((notification_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure; the outbox row is safe
        logger.warning(
            "notification_enqueue_failed", notification_id=notification_id, error=str(exc)
        )


def _queue(
    *, kind: str, chat_id: int, text: str, order: Order, event: PendingEvent
) -> Notification | None:
    dedupe_key = hashlib.sha256(f"{chat_id}\n{text}".encode()).hexdigest()
    window_start = timezone.now() - timedelta(seconds=settings.NOTIFY_DEDUPE_SECONDS)
    if Notification.objects.filter(dedupe_key=dedupe_key, created_at__gte=window_start).exists():
        return None  # the same words went to this chat a moment ago
    notification = Notification.objects.create(
        kind=kind,
        chat_id=chat_id,
        text=text,
        order=order,
        idempotency_key=f"event-queue:{event.queue_id}:chat:{chat_id}",
        dedupe_key=dedupe_key,
    )
    transaction.on_commit(lambda: _enqueue(notification.pk))
    return notification


def _telegram_configured() -> bool:
    if not settings.TELEGRAM_BOT_TOKEN:
        logger.warning("telegram_not_configured", detail="TELEGRAM_BOT_TOKEN is empty")
        return False
    return True


def _mechanic_chat(order: Order, flags: Mapping[str, bool]) -> tuple[int, str] | None:
    """The order's mechanic's chat and language, if they are to hear of it."""
    mechanic = order.mechanic
    if not flags["ENABLE_TG_MECH_NOTIFS"] or mechanic is None or mechanic.telegram_chat_id is None:
        return None
    if not _telegram_configured():
        return None
    return mechanic.telegram_chat_id, mechanic.language


def notify_order_created(*, order: Order, event: PendingEvent, flags: Mapping[str, bool]) -> int:
    """A message to every ADMIN_CHAT_IDS chat while ENABLE_TG_ADMIN_NOTIFS is on."""
    if not flags["ENABLE_TG_ADMIN_NOTIFS"] or not settings.ADMIN_CHAT_IDS:
        return 0
    if not _telegram_configured():
        return 0
    text = messages.order_created(
        order,
        car_number_on=flags["ENABLE_CAR_NUMBER"],
        admin_url=_url(f"/admin/orders/order/{order.pk}/change/"),
    )
    queued = [
        _queue(
            kind=NotificationKind.ORDER_CREATED, chat_id=chat, text=text, order=order, event=event
        )
        for chat in settings.ADMIN_CHAT_IDS
    ]
    return sum(1 for row in queued if row is not None)


def notify_status_changed(
    *, order: Order, old: str, new: str, event: PendingEvent, flags: Mapping[str, bool]
) -> int:
    """The order's mechanic hears of it, in their language, while ENABLE_TG_MECH_NOTIFS is on."""
    chat = _mechanic_chat(order, flags)
    if chat is None:
        return 0
    chat_id, language = chat
    text = messages.status_changed(
        order,
        old=old,
        new=new,
        language=language,
        url=_url(f"/mechanic/orders/{order.pk}"),
    )
    row = _queue(
        kind=NotificationKind.STATUS_CHANGED,
        chat_id=chat_id,
        text=text,
        order=order,
        event=event,
    )
    return int(row is not None)


def notify_order_assigned(*, order: Order, event: PendingEvent, flags: Mapping[str, bool]) -> int:
    """The newly assigned mechanic gets the order with a one-time sign-in link to it."""
    chat = _mechanic_chat(order, flags)
    if chat is None or order.mechanic is None:
        return 0
    chat_id, language = chat
    token = login_link_issue(mechanic=order.mechanic, order=order)
    text = messages.assigned(
        order, language=language, login_url=_url(f"/mechanic/login/link/{token}")
    )
    row = _queue(
        kind=NotificationKind.ORDER_ASSIGNED,
        chat_id=chat_id,
        text=text,
        order=order,
        event=event,
    )
    return int(row is not None)


def notification_retry(*, notification_id: int) -> Notification:
    """Sends a failed or dead row again (the admin's "retry now")."""
    from conclave.exceptions import Conflict, NotFound

    with transaction.atomic():
        row = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if row is None:
            raise NotFound(f"No notification {notification_id}.")
        if row.status not in (NotificationStatus.FAILED, NotificationStatus.DEAD):
            raise Conflict(
                f"Notification {notification_id} is {row.status}; only failed or dead rows are retried."
            )
        row.status = NotificationStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = timezone.now()
        row.save(update_fields=["status", "attempts", "next_attempt_at"])
        transaction.on_commit(lambda: _enqueue(row.pk))
    return row
