"""The halt (SPEC 3.4): one row that every write consults, and the keeper ceremony that alone
can clear it; the record of verification runs that pre-operational verification builds on.

Table names are a contract with the runbook's SQL (`halt_state`).
"""

import uuid

from django.db import models
from django.db.models.functions import Now

HALT_STATE_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


class HaltChannel(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    COMMAND = "command"
    REDIS = "redis"
    AUTOMATIC = "automatic"


class HaltState(models.Model):
    """The singleton halt row. `halt_number` counts halts: a ceremony belongs to one halt.

    The database refuses `is_halted = false` unless a completed ceremony with a quorum of
    distinct keepers exists for the current `halt_number` (migration 0002), whoever asks.
    """

    id = models.UUIDField(primary_key=True, default=HALT_STATE_ID, editable=False)
    is_halted = models.BooleanField(default=False)
    reason = models.TextField(null=True, blank=True)  # noqa: DJ001 - the runbook's NULL
    halt_number = models.PositiveIntegerField(default=0)
    halted_at = models.DateTimeField(null=True, blank=True)
    halted_by = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=16, choices=HaltChannel.choices, blank=True, default="")
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "halt_state"

    def __str__(self) -> str:
        return f"halted: {self.reason}" if self.is_halted else "not halted"


class CeremonyStatus(models.TextChoices):
    OPEN = "open"
    COMPLETED = "completed"


class HaltCeremony(models.Model):
    """The clearing of one halt: a single-use challenge that keepers sign."""

    id = models.BigAutoField(primary_key=True)
    halt_number = models.PositiveIntegerField(unique=True)
    challenge = models.CharField(max_length=200, unique=True)
    quorum = models.PositiveSmallIntegerField()
    status = models.CharField(
        max_length=16, choices=CeremonyStatus.choices, default=CeremonyStatus.OPEN
    )
    created_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "halt_ceremonies"

    def __str__(self) -> str:
        return f"ceremony for halt {self.halt_number} ({self.status})"


class CeremonyApproval(models.Model):
    """A keeper's Ed25519 signature over a ceremony's challenge (UTF-8), with the key used."""

    id = models.BigAutoField(primary_key=True)
    ceremony = models.ForeignKey(HaltCeremony, on_delete=models.PROTECT, related_name="approvals")
    keeper_id = models.CharField(max_length=200)
    keeper_key_id = models.CharField(max_length=100)
    signature = models.CharField(max_length=128)
    approved_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "halt_ceremony_approvals"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ceremony", "keeper_id"], name="one_approval_per_keeper_per_ceremony"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.keeper_id} approved halt {self.ceremony_id}"


class VerificationKind(models.TextChoices):
    FULL = "full"
    PREOPERATIONAL = "preoperational"
    PERIODIC = "periodic"
    RANGE = "range"  # a range chosen in the admin
    CHECKPOINT = "checkpoint"  # the events a new checkpoint is about to vouch for
    ANCHOR = "anchor"  # the latest checkpoint's root, recomputed from the log


class VerificationRun(models.Model):
    """One run of chain verification: what it covered and what it found."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=VerificationKind.choices)
    first_sequence = models.BigIntegerField()
    last_sequence = models.BigIntegerField(null=True, blank=True)
    ok = models.BooleanField()
    first_bad_sequence = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    checked = models.BigIntegerField(default=0)
    # Clean, and starting at or before the end of the log already verified from event 1:
    # the verified prefix now reaches last_sequence.
    extends_verified_prefix = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "verification_runs"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.first_sequence}..{self.last_sequence}: {self.ok}"


class IdempotentRequest(models.Model):
    """A write sent with an `Idempotency-Key` and the answer it got, kept so that a retry of it
    gets that answer again instead of writing twice (conclave.idempotency). The row is written
    in the write's own transaction: there is no moment when the write is done and its answer
    not yet kept."""

    scope = models.CharField(max_length=40)  # whose key: "user:<id>", or "anonymous"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of the method, path and body
    status = models.PositiveSmallIntegerField()
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="one_answer_per_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}: {self.status}"
