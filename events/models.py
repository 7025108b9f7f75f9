"""The append-only event store and the registry of the keys that sign it (SPEC 3.1-3.3).

Table and column names are a contract with the runbook's SQL and outside verifiers.
The database enforces the invariants with triggers (migration 0002): rows of `events` are
never updated or deleted, key rows are never deleted, and none of these tables can be
truncated.
"""

import uuid
from datetime import datetime

from django.db import models
from django.db.models.functions import Now

GENESIS_PREV_HASH = "0" * 64


class SigningMode(models.TextChoices):
    DEVELOPMENT = "DEVELOPMENT"
    PRODUCTION = "PRODUCTION"


class Event(models.Model):
    """One state change of the product, chained to the previous one and signed twice.

    Invariants: `sequence` runs 1, 2, 3... without gaps; `prev_hash` is the previous event's
    `content_hash` (64 zeros for the first); `content_hash` is SHA-256 over the RFC 8785 form
    of the event's content (SPEC 3.2); `signature` is the agent key's Ed25519 signature of the
    digest and `witness_signature` the witness key's signature of digest + signature.
    `agent_id` is the system actor that wrote the event; the human actor, if any, is in the
    payload. `authority_timestamp` is the database's clock, whatever the client sent.
    Nothing here may ever change once inserted.
    """

    sequence = models.BigIntegerField(primary_key=True)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    agent_id = models.CharField(max_length=200)
    signing_key_id = models.CharField(max_length=100)
    signing_mode = models.CharField(max_length=11, choices=SigningMode.choices)
    local_timestamp = models.DateTimeField()
    authority_timestamp = models.DateTimeField(db_default=Now(), db_index=True)
    prev_hash = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    witness_id = models.CharField(max_length=200)
    witness_key_id = models.CharField(max_length=100)
    witness_signature = models.CharField(max_length=128)
    schema_version = models.PositiveSmallIntegerField(default=1)

    class Meta:
        db_table = "events"
        ordering = ["sequence"]
        # Event types are matched exactly: a plain b-tree, without the `varchar_pattern_ops`
        # twin `db_index` adds on PostgreSQL, which every event also paid for.
        indexes = [models.Index(fields=["event_type"], name="idx_events_event_type")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event_type}"


class KeyKind(models.TextChoices):
    AGENT = "agent"
    WITNESS = "witness"
    # Signs checkpoints (tree heads), never events.
    CHECKPOINT = "checkpoint"


class RegisteredKey(models.Model):
    """What every registered Ed25519 public key has. Rows are never deleted (FR76) and only
    ever gain an `active_until`, once (rotation)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key_id = models.CharField(max_length=100, unique=True)
    public_key = models.BinaryField(max_length=32)
    active_from = models.DateTimeField()
    active_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        abstract = True
        ordering = ["active_from", "key_id"]

    def active_at(self, moment: datetime) -> bool:
        return self.active_from <= moment and (
            self.active_until is None or moment < self.active_until
        )

    @staticmethod
    def active_at_q(moment: datetime) -> models.Q:
        """The same rule as a query condition."""
        return models.Q(active_from__lte=moment) & (
            models.Q(active_until__isnull=True) | models.Q(active_until__gt=moment)
        )


class AgentKey(RegisteredKey):
    """The key of a system actor: an agent that signs events or a witness that co-signs them."""

    agent_id = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=16, choices=KeyKind.choices, default=KeyKind.AGENT)

    class Meta(RegisteredKey.Meta):
        db_table = "agent_keys"

    def __str__(self) -> str:
        return f"{self.kind} {self.key_id} ({self.agent_id})"


class KeeperKey(RegisteredKey):
    """A keeper's key, used to approve halt-clear ceremonies; the private key stays with them.
    A public key is registered once, ever: under two keeper ids it would make a quorum of
    one, and a key rotated out must not come back."""

    keeper_id = models.CharField(max_length=200, db_index=True)

    class Meta(RegisteredKey.Meta):
        db_table = "keeper_keys"
        constraints = [
            # Partial (every row has a key) so that SQLite adds an index rather than
            # rebuilding the table under the halt's triggers.
            models.UniqueConstraint(
                fields=["public_key"],
                condition=models.Q(public_key__isnull=False),
                name="keeper_key_public_key_once",
            )
        ]

    def __str__(self) -> str:
        return f"keeper {self.key_id} ({self.keeper_id})"


class MerkleTile(models.Model):
    """Stored hashes of the Merkle tree over the log (events.merkle): derived from `events`,
    kept so a proof reads O(log n) hashes. Tile (level, index) packs up to 256 hashes of
    nodes at tree level 8 * level; only the rightmost tile of each level ever grows."""

    id = models.BigAutoField(primary_key=True)
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hashes = models.BinaryField()

    class Meta:
        db_table = "merkle_tiles"
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="merkle_tile_position")
        ]

    def __str__(self) -> str:
        return f"tile {self.level}/{self.index} ({len(self.hashes) // 32} hashes)"


class Checkpoint(models.Model):
    """A signed tree head (SPEC 3.6): the root of the first `tree_size` events, signed by a
    checkpoint key over the RFC 8785 form of {tree_size, root_hash, timestamp}, and co-signed
    by the witnesses. Never changed or deleted (triggers, migration 0006)."""

    id = models.BigAutoField(primary_key=True)
    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    key_id = models.CharField(max_length=100)
    signature = models.CharField(max_length=128)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "checkpoints"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size} {self.root_hash[:12]}"


class CheckpointCosignature(models.Model):
    """A witness's Ed25519 signature of the same tree head (CT-12)."""

    id = models.BigAutoField(primary_key=True)
    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.PROTECT, related_name="cosignatures"
    )
    witness_id = models.CharField(max_length=200)
    key_id = models.CharField(max_length=100)
    signature = models.CharField(max_length=128)

    class Meta:
        db_table = "checkpoint_cosignatures"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "key_id"], name="one_cosignature_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} on checkpoint {self.checkpoint_id}"


class ClockDriftWarning(models.Model):
    """Written by the database when an event's local clock and its own differ too much."""

    id = models.BigAutoField(primary_key=True)
    event_sequence = models.BigIntegerField(db_index=True)
    local_timestamp = models.DateTimeField()
    authority_timestamp = models.DateTimeField()
    drift_seconds = models.FloatField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "clock_drift_warnings"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"event {self.event_sequence}: {self.drift_seconds:.3f}s drift"


class ConstitutionalConfig(models.Model):
    """Settings the database itself reads (e.g. `clock_drift_threshold_seconds`)."""

    key = models.CharField(max_length=100, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "constitutional_config"

    def __str__(self) -> str:
        return self.key


class EventQueueEntry(models.Model):
    """An event a writer committed in its own transaction, before the log chains and signs it.

    Writers only insert here (cheap and concurrent, atomic with their state change); the
    integrator (events.integration) takes pending entries in `id` order, appends them to
    `events` and records the `sequence` each received, in one transaction. `payload` is the
    RFC 8785 text the writer validated, so the integrator never serialises it again.
    An entry the log cannot take (no key active for its agent at its time, or refused by the
    database) gets a `rejected_reason` instead of a sequence. Either way `processed_at` is
    set, once; the database refuses any other change.
    """

    id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=100)
    payload = models.TextField()
    agent_id = models.CharField(max_length=200)
    local_timestamp = models.DateTimeField()
    enqueued_at = models.DateTimeField(db_default=Now())
    sequence = models.BigIntegerField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    rejected_reason = models.TextField(blank=True, db_default="")

    class Meta:
        db_table = "event_queue"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                name="event_queue_pending",
                condition=models.Q(processed_at__isnull=True),
            ),
            # For purging settled entries. Pending rows stay out of it: every append's INSERT
            # would otherwise add a NULL key to it, to be replaced when the row is settled.
            models.Index(
                fields=["processed_at"],
                name="event_queue_processed_at",
                condition=models.Q(processed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"queued {self.id} {self.event_type}"
