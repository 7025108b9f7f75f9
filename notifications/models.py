"""The Telegram outbox (SPEC 6). Rows are written by the services that change orders, in the
same transaction, and only Celery delivery moves them on."""

from django.db import models
from django.db.models.functions import Now


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # Telegram refused it for good (bad chat, bot blocked): never retried
    DEAD = "dead"  # gave up after NOTIFY_MAX_ATTEMPTS transient failures


class NotificationKind(models.TextChoices):
    ORDER_CREATED = "order_created"
    STATUS_CHANGED = "status_changed"
    ORDER_ASSIGNED = "order_assigned"
    ORDER_CORRECTED = "order_corrected"
    ORDER_READY = "order_ready"  # to the bot chat that made the order
    BOT_REPLY = "bot_reply"  # the ordering bot answering a chat


class Notification(models.Model):
    """One Telegram message to one chat. `idempotency_key` (the order event's queue entry and
    the chat) makes writing it twice impossible; the claim in notifications.delivery makes
    sending it twice impossible."""

    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    chat_id = models.BigIntegerField()
    text = models.TextField(max_length=4096)
    # Telegram's `reply_markup` (the bot's buttons), sent as given.
    reply_markup = models.JSONField(null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="notifications",
    )
    status = models.CharField(
        max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    # While `sending`: the claim's lease. A worker killed mid-send leaves the row to be taken
    # again once the lease has run out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    telegram_message_id = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    # sha256 of chat and text: an identical message to the same chat within
    # NOTIFY_DEDUPE_SECONDS is not written again.
    dedupe_key = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications_outbox"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="notifications_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.chat_id} ({self.status})"
