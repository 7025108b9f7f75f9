"""The Telegram ordering bot's own rows: the updates it has taken (so a replayed update is
ignored) and each chat's language and unfinished order. Neither is workshop state: the order a
conversation ends in is made by orders.services, with its event, like any other."""

from django.db import models
from django.db.models.functions import Now

from orders.models import Language


class TelegramUpdate(models.Model):
    """An update Telegram delivered to the webhook. Written in the transaction that acts on it:
    the same `update_id` again (Telegram retrying, a replay) finds the row and does nothing."""

    update_id = models.BigIntegerField(primary_key=True)
    chat_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "telegram_updates"

    def __str__(self) -> str:
        return f"update {self.update_id}"


class BotStep(models.TextChoices):
    IDLE = "idle"
    LANGUAGE = "language"
    CATEGORY = "category"
    PARTS = "parts"
    PART_MANUAL = "part_manual"
    VIN = "vin"
    CAR_NUMBER = "car_number"
    ORIGIN = "origin"
    PHOTO = "photo"
    CONFIRM = "confirm"


class BotChat(models.Model):
    """One private chat with the bot: the language it chose and the order being put together
    (`step`, `draft`, and `history` for Back), which lapses at `expires_at`."""

    chat_id = models.BigIntegerField(primary_key=True)
    language = models.CharField(max_length=2, choices=Language.choices, blank=True, default="")
    step = models.CharField(max_length=16, choices=BotStep.choices, default=BotStep.IDLE)
    draft = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "telegram_bot_chats"

    def __str__(self) -> str:
        return f"chat {self.chat_id} ({self.step})"
