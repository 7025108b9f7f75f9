from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.exceptions import DomainError
from flags.selectors import flags_detail
from flags.services import flag_set, flags_kill_switch

ACTOR = "manage.py flags"


class Command(BaseCommand):
    help = (
        "Feature flags: `flags list`, `flags on NAME`, `flags off NAME`, `flags off --all` "
        "(the kill switch). Every change is an event and reaches every process within a second."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Each flag, its value and whether it is pinned.")
        on = actions.add_parser("on", help="Switch a flag on.")
        on.add_argument("name")
        off = actions.add_parser("off", help="Switch a flag off, or every flag with --all.")
        off.add_argument("name", nargs="?")
        off.add_argument("--all", action="store_true", help="The kill switch.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "list":
                for flag in flags_detail():
                    pinned = "  (pinned by environment)" if flag["pinned"] else ""
                    state = "on" if flag["enabled"] else "off"
                    self.stdout.write(f"{flag['name']:<24} {state}{pinned}")
            elif action == "off" and options["all"]:
                if options["name"]:
                    raise CommandError("give a flag name or --all, not both")
                result = flags_kill_switch(actor=ACTOR)
                self.stdout.write(f"switched off: {', '.join(result['switched_off']) or 'none'}")
                if result["pinned"]:
                    self.stdout.write(f"pinned, unchanged: {', '.join(result['pinned'])}")
            else:
                if not options["name"]:
                    raise CommandError(f"flags {action} needs a flag name")
                flag_set(
                    name=options["name"].upper(), enabled=action == "on", actor=ACTOR,
                    via="command",
                )  # fmt: skip
                self.stdout.write(f"{options['name'].upper()} {action}")
        except DomainError as error:
            raise CommandError(f"{error.error}: {error.detail}") from error
