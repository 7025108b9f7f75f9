from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.exceptions import DomainError
from orders.models import Language
from orders.services import mechanic_create


class Command(BaseCommand):
    help = "Create a mechanic: a user with a mechanic profile (SPEC section 2)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--name", default="", help="Display name (default: the username)")
        parser.add_argument("--telegram-chat-id", type=int, default=None)
        parser.add_argument("--language", choices=Language.values, default=Language.ENGLISH)

    def handle(self, *args: Any, username: str, password: str, **options: Any) -> None:
        try:
            profile = mechanic_create(
                username=username,
                password=password,
                display_name=options["name"],
                telegram_chat_id=options["telegram_chat_id"],
                language=options["language"],
                actor="manage.py create_mechanic",
            )
        except DomainError as error:
            raise CommandError(f"{error.error}: {error.detail}") from error
        self.stdout.write(f"mechanic {profile.display_name} created (id {profile.pk})")
