"""Housekeeping of the ordering bot."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from conclave.tasks import HaltGuardedTask

# Telegram stops delivering an update again after a day; a week is a wide margin.
UPDATE_RETENTION = timedelta(days=7)


@shared_task(base=HaltGuardedTask, ignore_result=True)
def prune_telegram_updates() -> int:
    """Forgets update ids old enough that Telegram can no longer deliver them again."""
    from bot.models import TelegramUpdate

    deleted, _ = TelegramUpdate.objects.filter(
        received_at__lt=timezone.now() - UPDATE_RETENTION
    ).delete()
    return deleted
