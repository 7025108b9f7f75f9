import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conclave.preoperational import SUCCESS_MESSAGE, preoperational_verify


class Command(BaseCommand):
    help = (
        "Pre-operational verification (FR146): hash chain (incremental), witness pool, keeper "
        "keys, checkpoint anchors, halt state, replica sync. Exits 1 naming the failing check; "
        "`make run` and the container's web command run it before serving."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--post-halt", action="store_true", help="As before clearing a halt: no bypass."
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print every check as JSON."
        )

    def handle(self, *args: Any, post_halt: bool, as_json: bool, **options: Any) -> None:
        report = preoperational_verify(post_halt=post_halt)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        if report.ok:
            self.stdout.write(SUCCESS_MESSAGE)
            return
        if report.bypassed:
            self.stderr.write(
                f"PRE-OPERATIONAL VERIFICATION FAILED ({report.failure}); "
                "BYPASSED BY ALLOW_VERIFICATION_BYPASS=true"
            )
            return
        raise CommandError(f"pre-operational verification failed: {report.failure}")
