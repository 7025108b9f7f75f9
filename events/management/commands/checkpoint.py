import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.exceptions import DomainError
from events.selectors import checkpoint_json, latest_checkpoint
from events.services import checkpoint_create


class Command(BaseCommand):
    help = (
        "Sign a checkpoint now: verify the events since the last one, sign the RFC 6962 tree "
        "head of the whole log with the checkpoint key, have every active witness co-sign it, "
        "and append a checkpoint.created event. Prints the checkpoint as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Sign even when only checkpoint events were appended since the last one.",
        )

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        try:
            checkpoint = checkpoint_create(force=force, actor="manage.py checkpoint")
        except DomainError as exc:
            raise CommandError(str(exc.detail)) from exc
        if checkpoint is None:
            latest = latest_checkpoint()
            size = latest.tree_size if latest else 0
            self.stderr.write(f"nothing new since checkpoint {size}; none signed (--force signs)")
            checkpoint = latest
        if checkpoint is not None:
            self.stdout.write(json.dumps(checkpoint_json(checkpoint), indent=2))
