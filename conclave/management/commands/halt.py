import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.exceptions import DomainError
from conclave.halt import halt_status
from conclave.models import HaltChannel
from conclave.selectors import halt_state
from conclave.services import halt_raise


class Command(BaseCommand):
    help = (
        "Raise the halt (`halt raise --reason ...`) or show it (`halt status`, JSON). Clearing "
        "takes the keepers' ceremony (POST /v1/admin/halt/clear)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        raise_ = actions.add_parser("raise", help="Halt the system now.")
        raise_.add_argument("--reason", required=True)
        actions.add_parser("status", help="Both channels and the halt row, as JSON.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "raise":
            try:
                state, raised = halt_raise(
                    reason=options["reason"], actor="manage.py halt", channel=HaltChannel.COMMAND
                )
            except DomainError as error:
                raise CommandError(f"{error.error}: {error.detail}") from error
            verb = "raised" if raised else "already in force"
            self.stdout.write(f"halt {state.halt_number} {verb}: {state.reason}")
            return
        status = halt_status(fresh=True)
        state = halt_state()
        self.stdout.write(
            json.dumps(
                {
                    "halted": status.halted,
                    "reason": status.reason,
                    "database": status.database,
                    "redis": status.redis,
                    "halt_number": state.halt_number,
                    "channel": state.channel or None,
                    "halted_at": state.halted_at.isoformat() if state.halted_at else None,
                    "halted_by": state.halted_by or None,
                    "cleared_at": state.cleared_at.isoformat() if state.cleared_at else None,
                },
                indent=2,
            )
        )
