"""Writing the outbox. Called by the order services inside their transaction: an order never
exists without its notifications, and a rolled-back order leaves none."""

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from events.services import PendingEvent, event_append
from notifications import messages
from notifications.models import Notification, NotificationKind, NotificationStatus
from orders.models import Order, OrderStatus
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
    *,
    kind: str,
    chat_id: int,
    text: str,
    idempotency_key: str,
    order: Order | None = None,
    reply_markup: dict[str, Any] | None = None,
    dedupe: bool = True,
) -> Notification | None:
    dedupe_key = hashlib.sha256(f"{chat_id}\n{text}".encode()).hexdigest()
    if dedupe:
        window_start = timezone.now() - timedelta(seconds=settings.NOTIFY_DEDUPE_SECONDS)
        recent = Notification.objects.filter(dedupe_key=dedupe_key, created_at__gte=window_start)
        if recent.exists():
            return None  # the same words went to this chat a moment ago
    notification = Notification.objects.create(
        kind=kind,
        chat_id=chat_id,
        text=text,
        reply_markup=reply_markup,
        order=order,
        idempotency_key=idempotency_key,
        dedupe_key=dedupe_key,
    )
    transaction.on_commit(lambda: _enqueue(notification.pk))
    return notification


def _event_key(event: PendingEvent, chat_id: int) -> str:
    return f"event-queue:{event.queue_id}:chat:{chat_id}"


def _queue_for_event(
    messages_by_chat: Mapping[int, tuple[str, str]], *, order: Order, event: PendingEvent
) -> int:
    """Each chat's message (its kind and text) about one of the order's events: written once
    per event and chat, whatever retries the write."""
    queued = [
        _queue(
            kind=kind,
            chat_id=chat_id,
            text=text,
            order=order,
            idempotency_key=_event_key(event, chat_id),
        )
        for chat_id, (kind, text) in messages_by_chat.items()
    ]
    return sum(1 for row in queued if row is not None)


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


def staff_chats_notified(flags: Mapping[str, bool]) -> bool:
    """Whether the staff chats hear of orders (ENABLE_TG_ADMIN_NOTIFS on, ADMIN_CHAT_IDS and a
    bot token set): a new order's messages then belong in its transaction."""
    return bool(
        flags["ENABLE_TG_ADMIN_NOTIFS"] and settings.ADMIN_CHAT_IDS and settings.TELEGRAM_BOT_TOKEN
    )


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
    messages_by_chat = {
        chat: (NotificationKind.ORDER_CREATED, text) for chat in settings.ADMIN_CHAT_IDS
    }
    return _queue_for_event(messages_by_chat, order=order, event=event)


def notify_order_corrected(
    *,
    order: Order,
    changes: dict[str, dict[str, str]],
    actor: User,
    event: PendingEvent,
    flags: Mapping[str, bool],
) -> int:
    """An order's fields put right, old and new: the staff chats while ENABLE_TG_ADMIN_NOTIFS
    is on (they acted on the new order's message), and the order's mechanic, in their
    language, while ENABLE_TG_MECH_NOTIFS is on, unless the correction is their own."""
    kind = NotificationKind.ORDER_CORRECTED
    messages_by_chat: dict[int, tuple[str, str]] = {}
    if staff_chats_notified(flags):
        text = messages.order_corrected(
            order,
            changes=changes,
            language="en",
            url=_url(f"/admin/orders/order/{order.pk}/change/"),
            link_label="Open in the admin",
        )
        messages_by_chat.update((chat, (kind, text)) for chat in settings.ADMIN_CHAT_IDS)
    chat = _mechanic_chat(order, flags)
    if chat is not None and order.mechanic is not None and order.mechanic.user_id != actor.pk:
        chat_id, language = chat
        text = messages.order_corrected(
            order,
            changes=changes,
            language=language,
            url=_url(f"/mechanic/orders/{order.pk}"),
            link_label=messages.PHRASES[language]["open"],
        )
        messages_by_chat[chat_id] = (kind, text)
    return _queue_for_event(messages_by_chat, order=order, event=event)


def notify_status_changed(
    *, order: Order, old: str, new: str, event: PendingEvent, flags: Mapping[str, bool]
) -> int:
    """While ENABLE_TG_MECH_NOTIFS is on: the order's mechanic hears of it in their language,
    and when it becomes ready the bot chat that made it is told in the language it chose (one
    message, not two, when that is the mechanic's own chat)."""
    messages_by_chat: dict[int, tuple[str, str]] = {}
    chat = _mechanic_chat(order, flags)
    if chat is not None:
        chat_id, language = chat
        text = messages.status_changed(
            order, old=old, new=new, language=language, url=_url(f"/mechanic/orders/{order.pk}")
        )
        messages_by_chat[chat_id] = (NotificationKind.STATUS_CHANGED, text)
    if (
        new == OrderStatus.READY
        and order.telegram_chat_id is not None
        and flags["ENABLE_TG_MECH_NOTIFS"]
        and _telegram_configured()
    ):
        text = messages.ready(order, language=order.telegram_language or "en")
        messages_by_chat[order.telegram_chat_id] = (NotificationKind.ORDER_READY, text)
    return _queue_for_event(messages_by_chat, order=order, event=event)


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
    return _queue_for_event(
        {chat_id: (NotificationKind.ORDER_ASSIGNED, text)}, order=order, event=event
    )


def bot_reply_queue(
    *,
    chat_id: int,
    text: str,
    update_id: int,
    index: int,
    reply_markup: dict[str, Any] | None = None,
    dedupe: bool = False,
) -> Notification | None:
    """The ordering bot's answer to a chat: through the outbox like every message (Telegram's
    limits, retries, exactly once). The update that caused it is in the key, so an update is
    answered once however often it is delivered. A conversation repeats itself on purpose
    (Back asks again), so only `dedupe=True` answers are subject to the window."""
    if not _telegram_configured():
        return None
    return _queue(
        kind=NotificationKind.BOT_REPLY,
        chat_id=chat_id,
        text=text,
        reply_markup=reply_markup,
        idempotency_key=f"telegram-update:{update_id}:{index}",
        dedupe=dedupe,
    )


def notification_retry(*, notification_id: int, actor: str = "system") -> Notification:
    """Sends a failed or dead row again (the admin's "retry now"); an event names who."""
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
        event_append(
            event_type="notification.retried",
            payload={"notification_id": row.pk, "kind": row.kind, "actor": actor},
        )
        transaction.on_commit(lambda: _enqueue(row.pk))
    return row
