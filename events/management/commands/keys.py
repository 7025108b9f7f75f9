from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.exceptions import DomainError
from events import services
from events.models import KeyKind
from events.selectors import all_keys


class Command(BaseCommand):
    help = "Agent and witness keys: list, register, rotate (keys are never deleted)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every key ever registered.")
        register = actions.add_parser("register", help="Generate and register a new key.")
        register.add_argument("--kind", choices=KeyKind.values, required=True)
        register.add_argument("--owner", required=True, help="e.g. SYSTEM:WITNESS_2")
        rotate = actions.add_parser("rotate", help="Retire a key now and register its successor.")
        rotate.add_argument("key_id")
        actions.add_parser("bootstrap", help="Create the system agent and witness keys if none.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "list":
                self.list_keys()
            elif action == "register":
                key = services.key_register(
                    kind=options["kind"], owner=options["owner"], actor="manage.py keys"
                )
                self.stdout.write(f"registered {key.kind} key {key.key_id} for {key.agent_id}")
            elif action == "rotate":
                key = services.key_rotate(key_id=options["key_id"], actor="manage.py keys")
                self.stdout.write(f"rotated {options['key_id']} -> {key.key_id}")
            else:
                created = services.keys_bootstrap()
                for key in created:
                    self.stdout.write(f"registered {key.kind} key {key.key_id} for {key.agent_id}")
                if not created:
                    self.stdout.write("system keys already exist")
        except DomainError as error:
            raise CommandError(f"{error.error}: {error.detail}") from error

    def list_keys(self) -> None:
        for key in all_keys():
            until = key["active_until"].isoformat() if key["active_until"] else "-"
            self.stdout.write(
                f"{key['key_id']:<28} {key['kind']:<8} {key['owner']:<24} "
                f"{key['active_from'].isoformat()}  {until}  {key['public_key']}"
            )
