"""Pre-operational verification (FR146): what must hold before the system serves, and before a
halt may be cleared.

Checks: the checkpoint anchor (the latest signed checkpoint's root recomputed from the log),
the hash chain (incrementally, after the anchor or the end of the log already verified from
event 1), the witness pool, keeper keys (at least the clearing quorum), the halt
state, replica sync (when DATABASE_REPLICA_URL is set) and the witness bootstrap switch.
An integrity failure of the chain halts the system (CT-13). ALLOW_VERIFICATION_BYPASS=true
lets a failing start-up go on outside production, loudly; never for a halt's clearing.
"""

from dataclasses import dataclass, field

import psycopg
import structlog
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from conclave.halt import halt_status
from conclave.models import VerificationKind
from events.models import AgentKey, Event, KeeperKey, KeyKind
from events.selectors import checkpoint_json, latest_checkpoint
from events.services import SYSTEM_AGENT_ID
from events.verification import (
    VerificationResult,
    anchor_mismatch,
    checkpoint_problem,
    verify_chain,
)

logger = structlog.get_logger(__name__)

SUCCESS_MESSAGE = "Pre-operational verification completed successfully"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    verified_through: int = 0
    anchored_through: int = 0
    bypassed: bool = False

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failure(self) -> str:
        failed = next((check for check in self.checks if not check.ok), None)
        return f"{failed.name}: {failed.detail}" if failed else ""

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "bypassed": self.bypassed,
            "verified_through": self.verified_through,
            "checks": [check.__dict__ for check in self.checks],
        }


def _hash_chain(report: Report) -> Check:
    from conclave.services import last_verified_sequence, verification_record

    started = timezone.now()
    first = max(last_verified_sequence(), report.anchored_through) + 1
    result = verify_chain(from_sequence=first)
    verification_record(kind=VerificationKind.PREOPERATIONAL, result=result, started_at=started)
    if not result.ok:
        return Check(
            "hash_chain",
            False,
            f"sequence {result.first_bad_sequence}: {result.reason} (the system is halted)",
        )
    report.verified_through = result.last_sequence or first - 1
    return Check("hash_chain", True, f"{result.checked} events verified from sequence {first}")


def _witness_pool() -> Check:
    witnesses = AgentKey.objects.filter(
        AgentKey.active_at_q(timezone.now()), kind=KeyKind.WITNESS
    ).exclude(agent_id=SYSTEM_AGENT_ID)
    count = witnesses.count()
    return Check("witness_pool", count >= 1, f"{count} active witness keys")


def _keeper_keys() -> Check:
    keepers = (
        KeeperKey.objects.filter(KeeperKey.active_at_q(timezone.now()))
        .values("keeper_id")
        .distinct()
        .count()
    )
    quorum = settings.HALT_CLEAR_QUORUM
    return Check(
        "keeper_keys",
        keepers >= quorum,
        f"{keepers} keepers with active keys; a halt needs {quorum} to clear",
    )


def _anchor_failure(first_bad: int, reason: str) -> Check:
    from conclave.services import verification_record

    result = VerificationResult(False, 0, 1, None, first_bad, reason)
    verification_record(kind=VerificationKind.ANCHOR, result=result, started_at=timezone.now())
    return Check("checkpoint_anchors", False, f"{reason} (the system is halted)")


def _checkpoint_anchors(report: Report) -> Check:
    """The latest checkpoint is the anchor: its signatures hold, and the first `tree_size`
    events, hashed afresh from their content_hash column, still have its signed root; a
    rewritten past halts. The chain check then starts after it."""
    checkpoint = latest_checkpoint()
    if checkpoint is None:
        return Check("checkpoint_anchors", True, "no checkpoint signed yet")
    size = checkpoint.tree_size
    problem = checkpoint_problem(checkpoint_json(checkpoint))
    if problem:
        return _anchor_failure(size, f"checkpoint {size}: {problem}")
    try:
        mismatch = anchor_mismatch(size, checkpoint.root_hash)
    except psycopg.Error as exc:  # the anchor's worker processes use connections of their own
        return Check("checkpoint_anchors", False, f"the log cannot be read: {exc}")
    if mismatch:
        return _anchor_failure(*mismatch)
    report.anchored_through = size
    return Check("checkpoint_anchors", True, f"the first {size} events match checkpoint {size}")


def _halt_state() -> Check:
    status = halt_status(fresh=True)
    if status.database is None and status.redis is None:
        return Check("halt_state", False, "neither the database nor Redis can be read")
    if status.halted:
        return Check("halt_state", True, f"halted ({status.reason}): writes are refused")
    return Check("halt_state", True, "not halted")


def _replica_sync() -> Check:
    if not settings.DATABASE_REPLICA_URL:
        return Check("replica_sync", True, "no replica configured")
    head = Event.objects.order_by("-sequence").values_list("sequence", "content_hash").first()
    try:
        with psycopg.connect(settings.DATABASE_REPLICA_URL, connect_timeout=5) as replica:
            row = replica.execute(
                "SELECT sequence, content_hash FROM events ORDER BY sequence DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return Check("replica_sync", head is None, "the replica has no events")
            same = replica.execute(
                "SELECT content_hash FROM events WHERE sequence = %s", [row[0]]
            ).fetchone()
    except psycopg.Error as exc:
        return Check("replica_sync", False, f"replica unreachable: {exc}")
    primary = Event.objects.filter(sequence=row[0]).values_list("content_hash", flat=True).first()
    if same is None or primary != same[0]:
        return Check("replica_sync", False, f"the replica differs at sequence {row[0]}")
    lag = (head[0] if head else 0) - row[0]
    return Check("replica_sync", True, f"replica at sequence {row[0]}, {lag} behind")


def _witness_bootstrap() -> Check:
    if settings.ENVIRONMENT == "production" and settings.WITNESS_BOOTSTRAP_ENABLED:
        if AgentKey.objects.filter(kind=KeyKind.WITNESS).exists():
            return Check(
                "witness_bootstrap",
                False,
                "WITNESS_BOOTSTRAP_ENABLED=true is refused in production once witnesses exist",
            )
    return Check(
        "witness_bootstrap", True, "off" if not settings.WITNESS_BOOTSTRAP_ENABLED else "on"
    )


def preoperational_verify(*, post_halt: bool = False) -> Report:
    """Runs every check. With `post_halt` (clearing a halt) nothing can be bypassed."""
    report = Report()
    try:
        report.checks.append(_checkpoint_anchors(report))
        report.checks.append(_hash_chain(report))
        for check in (
            _witness_pool,
            _keeper_keys,
            _halt_state,
            _replica_sync,
            _witness_bootstrap,
        ):
            report.checks.append(check())
    except DatabaseError as exc:
        report.checks.append(Check("database", False, f"unreadable: {exc}"))
    if report.ok:
        logger.info(SUCCESS_MESSAGE, post_halt=post_halt, checks=report.as_dict()["checks"])
        return report
    bypass = (
        settings.ALLOW_VERIFICATION_BYPASS
        and settings.ENVIRONMENT != "production"
        and not post_halt
    )
    if bypass:
        report.bypassed = True
        logger.critical(
            "PRE-OPERATIONAL VERIFICATION FAILED AND WAS BYPASSED (ALLOW_VERIFICATION_BYPASS=true)",
            failure=report.failure,
        )
    else:
        logger.error("pre_operational_verification_failed", failure=report.failure)
    return report
