from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conclave.models import VerificationKind
from conclave.services import verification_record
from events.verification import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the event log: sequence, chain links, content hashes, agent and witness "
        "signatures. Exits 0 when clean; otherwise halts the system and exits 1 with the first "
        "bad sequence."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Verify from the first event.")
        parser.add_argument(
            "--from", dest="from_sequence", type=int, default=1, help="First sequence to check."
        )
        parser.add_argument(
            "--workers", type=int, default=None, help="Processes (default: one per core)."
        )
        parser.add_argument(
            "--chunk-size", type=int, default=25_000, help="Events per parallel chunk."
        )

    def handle(
        self,
        *args: Any,
        full: bool,
        from_sequence: int,
        workers: int | None,
        chunk_size: int,
        **options: Any,
    ) -> None:
        if from_sequence < 1:
            raise CommandError("--from must be 1 or more")
        if (workers is not None and workers < 1) or chunk_size < 1:
            raise CommandError("--workers and --chunk-size must be 1 or more")
        started = timezone.now()
        result = verify_chain(
            from_sequence=1 if full else from_sequence, workers=workers, chunk_size=chunk_size
        )
        # Recorded; a failure halts the system (CT-13).
        verification_record(kind=VerificationKind.FULL, result=result, started_at=started)
        if not result.ok:
            raise CommandError(
                f"chain verification FAILED at sequence {result.first_bad_sequence}: "
                f"{result.reason} ({result.checked} events verified before it); "
                "the system is halted"
            )
        span = f"{result.first_sequence}..{result.last_sequence}" if result.checked else "nothing"
        self.stdout.write(self.style.SUCCESS(f"chain verified: {result.checked} events ({span})"))
