"""Raising the halt, the keepers' clearing ceremony, the record of verification runs, and
the record of the admin's changes to user accounts.

Every step is an event (`halt.raised`, `halt.ceremony.started`, `halt.ceremony.approved`,
`halt.cleared`; `user.created`, `user.changed`, `user.password_set`, `user.deleted`); the
log takes halt events while halted, and nothing else.
"""

import secrets
from datetime import datetime
from typing import Any

import redis
import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from conclave.exceptions import Conflict, ValidationFailed
from conclave.halt import forget_halt_status, redis_channel
from conclave.metrics import CEREMONY_APPROVALS, HALTS_RAISED, VERIFICATION_RUNS
from conclave.models import (
    HALT_STATE_ID,
    CeremonyApproval,
    CeremonyStatus,
    HaltCeremony,
    HaltChannel,
    HaltState,
    VerificationRun,
)
from conclave.text import REFUSAL, prints, shown
from events import crypto
from events.models import KeeperKey
from events.services import event_append
from events.verification import VerificationResult

logger = structlog.get_logger(__name__)

REASON_MAX_LENGTH = 500
CHALLENGE_PREFIX = "conclave-halt-clear"


def _locked_halt_state() -> HaltState:
    return HaltState.objects.select_for_update().get(id=HALT_STATE_ID)


def _mirror_to_redis(state: HaltState) -> None:
    try:
        redis_channel.write(
            halted=state.is_halted, reason=state.reason, halt_number=state.halt_number
        )
    except (redis.RedisError, OSError) as exc:
        # The database channel holds the halt; reconciliation writes Redis once it is back.
        logger.warning("halt_redis_write_failed", error=str(exc), halted=state.is_halted)
    forget_halt_status()


# Halts raised by the system itself or carried over from Redis.
MACHINE_CHANNELS = (HaltChannel.AUTOMATIC, HaltChannel.REDIS)


@transaction.atomic
def halt_raise(*, reason: str, actor: str, channel: str) -> tuple[HaltState, bool]:
    """Halts the system; returns the halt state and whether this call raised it (a halt
    already in force keeps its reason and number)."""
    if channel not in HaltChannel.values:
        raise ValidationFailed({"channel": [f"one of {', '.join(HaltChannel.values)}"]})
    reason = (reason or "").replace("\r\n", "\n").strip()
    if channel in MACHINE_CHANNELS:
        # No person typed it (a failed verification quotes the log, anyone may write Redis):
        # made presentable, never refused, for a halt must not fail on its wording.
        reason = (shown(reason) or "no reason given")[:REASON_MAX_LENGTH]
    elif not reason or len(reason) > REASON_MAX_LENGTH:
        raise ValidationFailed({"reason": [f"1 to {REASON_MAX_LENGTH} characters."]})
    elif not prints(reason, lines=True):
        raise ValidationFailed({"reason": [REFUSAL]})
    state = _locked_halt_state()
    if state.is_halted:
        return state, False
    now = timezone.now()
    state.is_halted = True
    state.reason = reason
    state.halt_number += 1
    state.halted_at = now
    state.halted_by = actor[:200]
    state.channel = channel
    state.cleared_at = None
    state.cleared_by = ""
    state.save()
    event_append(
        event_type="halt.raised",
        payload={
            "halt_number": state.halt_number,
            "reason": reason,
            "channel": channel,
            "actor": actor,
        },
        local_timestamp=now,
    )

    def raised() -> None:
        HALTS_RAISED.labels(channel).inc()
        logger.error("system_halted", reason=reason, channel=channel, actor=actor)
        _mirror_to_redis(state)

    transaction.on_commit(raised)
    return state, True


def _challenge(halt_number: int) -> str:
    return f"{CHALLENGE_PREFIX}:{halt_number}:{secrets.token_urlsafe(24)}"


@transaction.atomic
def ceremony_open(*, actor: str) -> HaltCeremony:
    """The clearing ceremony of the current halt, opened with a fresh single-use challenge on
    first request; the same one afterwards until it completes."""
    state = _locked_halt_state()
    if not state.is_halted:
        raise Conflict("The system is not halted; there is nothing to clear.")
    ceremony = HaltCeremony.objects.filter(halt_number=state.halt_number).first()
    if ceremony is not None:
        return ceremony
    ceremony = HaltCeremony.objects.create(
        halt_number=state.halt_number,
        challenge=_challenge(state.halt_number),
        quorum=settings.HALT_CLEAR_QUORUM,
    )
    event_append(
        event_type="halt.ceremony.started",
        payload={
            "halt_number": state.halt_number,
            "challenge": ceremony.challenge,
            "quorum": ceremony.quorum,
            "actor": actor,
        },
    )
    return ceremony


def _open_ceremony(state: HaltState) -> HaltCeremony:
    if not state.is_halted:
        raise Conflict("The system is not halted; there is nothing to clear.")
    ceremony = HaltCeremony.objects.filter(
        halt_number=state.halt_number, status=CeremonyStatus.OPEN
    ).first()
    if ceremony is None:
        raise Conflict(
            "No ceremony is open for this halt: GET /v1/admin/halt/ceremony issues its challenge."
        )
    return ceremony


def _signature_bytes(signature: str) -> bytes:
    if not isinstance(signature, str) or len(signature) != 128:
        raise ValidationFailed({"signature": ["128 hexadecimal characters (Ed25519)."]})
    try:
        return bytes.fromhex(signature)
    except ValueError as exc:
        raise ValidationFailed({"signature": ["128 hexadecimal characters (Ed25519)."]}) from exc


@transaction.atomic
def ceremony_approve(*, keeper_key_id: str, signature: str, actor: str) -> CeremonyApproval:
    """Records a keeper's signature over the current challenge, once per keeper."""
    state = _locked_halt_state()
    ceremony = _open_ceremony(state)
    raw_signature = _signature_bytes(signature)
    key = KeeperKey.objects.filter(key_id=keeper_key_id).first()
    if key is None:
        raise ValidationFailed({"keeper_key_id": [f"No keeper key {keeper_key_id}."]})
    if not key.active_at(timezone.now()):
        raise Conflict(f"Keeper key {keeper_key_id} is not active (retired or not yet valid).")
    if not crypto.signature_valid(
        bytes(key.public_key), raw_signature, ceremony.challenge.encode()
    ):
        raise ValidationFailed(
            {"signature": [f"Does not verify with {keeper_key_id} over the current challenge."]}
        )
    if ceremony.approvals.filter(keeper_id=key.keeper_id).exists():
        raise Conflict(f"{key.keeper_id} has already approved this ceremony.")
    approval = CeremonyApproval.objects.create(
        ceremony=ceremony,
        keeper_id=key.keeper_id,
        keeper_key_id=key.key_id,
        signature=signature.lower(),
    )
    event_append(
        event_type="halt.ceremony.approved",
        payload={
            "halt_number": state.halt_number,
            "keeper_id": key.keeper_id,
            "keeper_key_id": key.key_id,
            "signature": signature.lower(),
            "actor": actor,
        },
    )
    transaction.on_commit(CEREMONY_APPROVALS.inc)
    return approval


def _valid_approvals(ceremony: HaltCeremony) -> list[CeremonyApproval]:
    """Approvals whose signatures verify now, with keys still active: one per keeper."""
    now = timezone.now()
    keys = {
        key.key_id: key
        for key in KeeperKey.objects.filter(
            key_id__in=ceremony.approvals.values_list("keeper_key_id", flat=True)
        )
    }
    valid: dict[str, CeremonyApproval] = {}
    for approval in ceremony.approvals.all():
        key = keys.get(approval.keeper_key_id)
        if (
            key is not None
            and key.keeper_id == approval.keeper_id
            and key.active_at(now)
            and crypto.signature_valid(
                bytes(key.public_key),
                bytes.fromhex(approval.signature),
                ceremony.challenge.encode(),
            )
        ):
            valid.setdefault(approval.keeper_id, approval)
    return list(valid.values())


def halt_clear(*, actor: str) -> HaltState:
    """Clears the halt: a quorum of valid keeper signatures over the current challenge, then
    pre-operational verification with is_post_halt=true and no bypass, then the database's
    own check (the halt clear protection trigger). 409 (Conflict) with the reason otherwise."""
    from conclave.preoperational import preoperational_verify

    with transaction.atomic():
        ceremony = _open_ceremony(_locked_halt_state())
        valid = _valid_approvals(ceremony)
        if len(valid) < ceremony.quorum:
            raise Conflict(
                f"{len(valid)} of the {ceremony.quorum} keeper approvals this ceremony needs are "
                "valid."
            )
    report = preoperational_verify(post_halt=True)
    if not report.ok:
        raise Conflict(f"Pre-operational verification failed: {report.failure}.")
    with transaction.atomic():
        state = _locked_halt_state()
        ceremony = _open_ceremony(state)
        valid = _valid_approvals(ceremony)  # again, under the lock, right before the clear
        if len(valid) < ceremony.quorum:
            raise Conflict(f"{len(valid)} of {ceremony.quorum} keeper approvals are valid.")
        now = timezone.now()
        ceremony.status = CeremonyStatus.COMPLETED
        ceremony.completed_at = now
        ceremony.save(update_fields=["status", "completed_at"])
        halt_number, reason = state.halt_number, state.reason
        state.is_halted = False
        state.reason = None
        state.cleared_at = now
        state.cleared_by = actor[:200]
        state.save()
        event_append(
            event_type="halt.cleared",
            payload={
                "halt_number": halt_number,
                "reason": reason,
                "keepers": sorted(approval.keeper_id for approval in valid),
                "verified_through": report.verified_through,
                "actor": actor,
            },
            local_timestamp=now,
        )
        transaction.on_commit(lambda: _mirror_to_redis(state))
    logger.warning("halt_cleared", halt_number=halt_number, actor=actor)
    return state


def verification_record(
    *, kind: str, result: VerificationResult, started_at: datetime
) -> VerificationRun:
    """Records a verification run; an integrity failure halts the system (CT-13)."""
    extends = result.ok and result.first_sequence <= last_verified_sequence() + 1
    run = VerificationRun.objects.create(
        kind=kind,
        extends_verified_prefix=extends,
        first_sequence=result.first_sequence,
        last_sequence=result.last_sequence,
        ok=result.ok,
        first_bad_sequence=result.first_bad_sequence,
        reason=result.reason,
        checked=result.checked,
        started_at=started_at,
    )
    VERIFICATION_RUNS.labels(kind, "ok" if result.ok else "failed").inc()
    if not result.ok:
        halt_raise(
            reason=(
                f"integrity failure at sequence {result.first_bad_sequence}: {result.reason} "
                f"(found by {kind} verification)"
            )[:REASON_MAX_LENGTH],
            actor=f"verification:{kind}",
            channel=HaltChannel.AUTOMATIC,
        )
    return run


def last_verified_sequence() -> int:
    """Where the log verified from event 1 ends (0 when nothing is verified yet): incremental
    verification starts after it."""
    run = (
        VerificationRun.objects.filter(extends_verified_prefix=True, last_sequence__isnull=False)
        .order_by("-last_sequence")
        .first()
    )
    return run.last_sequence if run and run.last_sequence else 0


def _user_payload(user: User, actor: str, *, password: bool = False) -> dict[str, Any]:
    """Who and by whom; with `password`, whether theirs is set or unusable (never what)."""
    payload = {"user_id": user.pk, "username": user.username, "actor": actor}
    if password:
        payload["password"] = "set" if user.has_usable_password() else "unusable"
    return payload


def user_created_record(*, user: User, actor: str) -> None:
    """A user added (Django's user form or `createsuperuser` wrote it, in this transaction),
    with what the account may do from the start."""
    payload = _user_payload(user, actor, password=True)
    payload |= {"is_staff": user.is_staff, "is_superuser": user.is_superuser}
    event_append(event_type="user.created", payload=payload)


def user_changed_record(
    *, user: User, actor: str, changes: dict[str, Any], personal_fields: list[str]
) -> None:
    """A user's page saved with changes: `changes` holds the roles' and flags' old and new
    values (groups and permissions added and removed); `personal_fields` names a name or
    address changed, whose values stay out of the public log. Nothing changed, no event."""
    if not changes and not personal_fields:
        return
    payload = {**_user_payload(user, actor), "changes": changes}
    if personal_fields:
        payload["personal_fields"] = sorted(personal_fields)
    event_append(event_type="user.changed", payload=payload)


def user_password_set_record(*, user: User, actor: str) -> None:
    """A user's password set (or made unusable) by an administrator; never the password."""
    event_append(event_type="user.password_set", payload=_user_payload(user, actor, password=True))


def user_deleted_record(*, user: User, actor: str) -> None:
    """A user about to be deleted in the admin (in the deletion's transaction)."""
    event_append(event_type="user.deleted", payload=_user_payload(user, actor))
