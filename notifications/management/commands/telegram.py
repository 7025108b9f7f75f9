"""`manage.py telegram check` (getMe: the runbook's step 4.1) and `manage.py telegram
set_webhook URL` (with TELEGRAM_WEBHOOK_SECRET as the secret token)."""

import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import telegram


class Command(BaseCommand):
    help = "Talk to the Telegram Bot API: check the bot token, set the bot's webhook."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("check", help="call getMe and report the bot it finds")
        webhook = actions.add_parser("set_webhook", help="point the bot's updates at URL")
        webhook.add_argument("url", help="https://<host>/api/telegram/webhook")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError("TELEGRAM_BOT_TOKEN is not set.")
        try:
            if options["action"] == "check":
                me = telegram.get_me()
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Bot @{me.get('username')} (id {me.get('id')}, {me.get('first_name')}) "
                        f"answers at {settings.TELEGRAM_API_BASE_URL}."
                    )
                )
                self.stdout.write(
                    f"Admin chats: {settings.ADMIN_CHAT_IDS or 'none (ADMIN_CHAT_IDS)'}"
                )
                return
            url = options["url"]
            if not url.startswith("https://") and not settings.DEBUG:
                raise CommandError("Telegram only delivers updates to an https:// URL.")
            if not settings.TELEGRAM_WEBHOOK_SECRET:
                raise CommandError(
                    "Set TELEGRAM_WEBHOOK_SECRET first: the webhook refuses updates without it."
                )
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", settings.TELEGRAM_WEBHOOK_SECRET):
                raise CommandError(
                    "TELEGRAM_WEBHOOK_SECRET must be 1 to 256 of A-Z, a-z, 0-9, _ and - "
                    "(Telegram's rule for a webhook's secret token)."
                )
            telegram.set_webhook(url, settings.TELEGRAM_WEBHOOK_SECRET)
            self.stdout.write(self.style.SUCCESS(f"Webhook set to {url}."))
        except telegram.TelegramError as exc:
            raise CommandError(f"Telegram answered: {exc}") from exc
