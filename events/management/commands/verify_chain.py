import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conclave.models import VerificationKind
from conclave.services import last_verified_sequence, verification_record
from events import merkle, tree
from events.verification import (
    MAX_SEQUENCE,
    VerificationResult,
    anchor_mismatch,
    checkpoint_problem,
    verify_chain,
)


def check_against_checkpoint(path: Path) -> tuple[str, int]:
    """Checks the log against a checkpoint an observer kept: signed by us, and today's log
    extends it (its first tree_size events still hash to its root, and the consistency proof
    from it to the current head verifies). Returns what was checked and the checkpoint's
    size; raises CommandError.
    A checkpoint we signed that the log no longer matches is an integrity failure: it halts."""
    try:
        checkpoint = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read checkpoint {path}: {exc}") from exc
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise CommandError(f"{path} is not a checkpoint this log signed: {problem}")
    size = checkpoint["tree_size"]
    failure = anchor_mismatch(size, checkpoint["root_hash"])
    if failure:
        result = VerificationResult(False, 0, 1, None, *failure)
        verification_record(kind=VerificationKind.ANCHOR, result=result, started_at=timezone.now())
        raise CommandError(f"checkpoint check FAILED: {failure[1]}; the system is halted")
    head = tree.log_size()
    tree.tree_extend(head)
    proof = tree.tree_consistency_proof(size, head)
    if not merkle.verify_consistency(
        size, head, bytes.fromhex(checkpoint["root_hash"]), tree.tree_root(head), proof
    ):
        raise CommandError(
            f"the stored Merkle tree gives no valid consistency proof from {size} to {head}; "
            "rebuild it (the events themselves match the checkpoint)"
        )
    return (
        f"consistent with the kept checkpoint: tree {size} (root {checkpoint['root_hash']}) "
        f"extends to {head} events, proof of {len(proof)} hashes"
    ), size


class Command(BaseCommand):
    help = (
        "Verify the event log: sequence, chain links, content hashes, agent and witness "
        "signatures. Exits 0 when clean; otherwise halts the system and exits 1 with the first "
        "bad sequence."
    )
    # Verification reads the log and nothing of the project's configuration that the system
    # checks look at; skipping them (and the URLconf and schema views they import) saves a
    # tenth of a second of every run, which cron jobs and observers repeat.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Verify from the first event.")
        parser.add_argument(
            "--from",
            dest="from_sequence",
            type=int,
            default=None,
            help="First sequence to check (default 1, or after --checkpoint's tree).",
        )
        parser.add_argument(
            "--workers", type=int, default=None, help="Processes (default: one per core)."
        )
        parser.add_argument(
            "--chunk-size", type=int, default=25_000, help="Events per parallel chunk."
        )
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="A checkpoint JSON file an observer kept (from /v1/observer/checkpoints/...): "
            "check it is ours and today's log extends it, then verify the chain after it.",
        )

    def handle(
        self,
        *args: Any,
        full: bool,
        from_sequence: int | None,
        workers: int | None,
        chunk_size: int,
        checkpoint: Path | None,
        **options: Any,
    ) -> None:
        if from_sequence is not None and not 1 <= from_sequence <= MAX_SEQUENCE:
            raise CommandError(f"--from must be 1 to {MAX_SEQUENCE}")
        if (workers is not None and workers < 1) or chunk_size < 1:
            raise CommandError("--workers and --chunk-size must be 1 or more")
        first = 1
        if checkpoint is not None:
            checked, anchored = check_against_checkpoint(checkpoint)
            self.stdout.write(checked)
            first = anchored + 1
        if from_sequence is not None:
            first = from_sequence
            head = tree.log_size()
            # Past the head is a typo where the log never reached; where events verified
            # once are gone, it is the truncation that verification must report (and halt).
            if first > head + 1 and last_verified_sequence() <= head:
                raise CommandError(
                    f"--from {first} is past the log's head ({head}): nothing there to verify"
                )
        started = timezone.now()
        result = verify_chain(
            from_sequence=1 if full else first, workers=workers, chunk_size=chunk_size
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
