"""Verification of the whole log (or a suffix of it) against SPEC 3.2, in constant memory.

Checks, for every event in order: the sequence has no gap, `prev_hash` links to the previous
event, `content_hash` is the hash of the event's content, the agent signature verifies with a
key of that agent active at the event's `local_timestamp`, and the witness signature verifies
with a witness key (not the agent) active then.
"""

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.db import connection, connections

from conclave.metrics import VERIFICATION_DURATION
from events import crypto
from events.models import GENESIS_PREV_HASH, AgentKey, Event

BATCH_SIZE = 2000
KEY_EVENT_TYPES = ("keys.bootstrapped", "key.registered", "key.rotated")
EVENT_COLUMNS = (
    "sequence", "event_type", "payload", "agent_id", "signing_key_id", "signing_mode",
    "local_timestamp", "prev_hash", "content_hash", "signature", "witness_id",
    "witness_key_id", "witness_signature", "schema_version",
)  # fmt: skip


@dataclass(frozen=True)
class KeyRecord:
    owner: str
    kind: str
    public_key: bytes
    active_from: datetime
    active_until: datetime | None

    def active_at(self, moment: datetime | str) -> bool:
        """Whether the key was active at `moment` (or at its `crypto.format_timestamp` text:
        fixed-width UTC text compares as the moments do)."""
        if isinstance(moment, str):
            start, end = self._span
            return start <= moment and (end is None or moment < end)
        return self.active_from <= moment and (
            self.active_until is None or moment < self.active_until
        )

    @cached_property
    def public_hex(self) -> str:
        return self.public_key.hex()

    @cached_property
    def _span(self) -> tuple[str, str | None]:
        until = self.active_until
        return crypto.format_timestamp(self.active_from), (
            crypto.format_timestamp(until) if until else None
        )


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    checked: int
    first_sequence: int
    last_sequence: int | None
    first_bad_sequence: int | None = None
    reason: str = ""


class ChainBroken(Exception):
    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"sequence {sequence}: {reason}")
        self.sequence = sequence
        self.reason = reason


def _keys() -> dict[str, KeyRecord]:
    return {
        key.key_id: KeyRecord(
            key.agent_id, key.kind, bytes(key.public_key), key.active_from, key.active_until
        )
        for key in AgentKey.objects.all()
    }


def _rows(
    from_sequence: int,
    *,
    until: int | None = None,
    columns: tuple[str, ...] = EVENT_COLUMNS,
    event_types: tuple[str, ...] | None = None,
) -> Iterator[dict]:
    """Keyset pagination: each batch is one indexed range read, whatever the log's length."""
    after = from_sequence - 1
    events = Event.objects.order_by("sequence")
    if until is not None:
        events = events.filter(sequence__lte=until)
    if event_types is not None:
        events = events.filter(event_type__in=event_types)
    while True:
        batch = list(events.filter(sequence__gt=after).values(*columns)[:BATCH_SIZE])
        if not batch:
            return
        yield from batch
        after = batch[-1]["sequence"]


# Every column verification reads, for a keyset page of the log: the payload as JSON text
# (parsed here, without Django's converters), local_timestamp as its canonical text.
EVENT_PAGE_SQL = (
    "SELECT "  # noqa: S608 - fixed column names
    + ", ".join(
        crypto.timestamp_sql(column) if column == "local_timestamp" else column
        for column in EVENT_COLUMNS
    )
    + " FROM events WHERE sequence > %s AND sequence <= %s ORDER BY sequence LIMIT %s"
)


def _event_rows(first: int, last: int | None) -> Iterator[dict]:
    """The events first..last (or to the head), as `_rows` gives them, read with less
    overhead on PostgreSQL: verification spends more time here than anywhere but the
    signature checks."""
    if connection.vendor != "postgresql":
        yield from _rows(first, until=last)
        return
    after, until = first - 1, last if last is not None else 2**63 - 1
    payload = EVENT_COLUMNS.index("payload")
    while True:
        with connection.cursor() as cursor:
            cursor.execute(EVENT_PAGE_SQL, [after, until, BATCH_SIZE])
            batch = cursor.fetchall()
        if not batch:
            return
        for values in batch:
            row = dict(zip(EVENT_COLUMNS, values, strict=True))
            row["payload"] = json.loads(values[payload])
            yield row
        after = batch[-1][0]


def keys_registered_by(row: dict, registered: dict[str, str]) -> dict[str, str]:
    """The agent and witness keys (key_id -> public key hex) an event brings into the log.

    Event 1 (`keys.bootstrapped`) registers the first keys; `key.registered` adds keys and
    `key.rotated` adds a successor that its retiring key has endorsed.
    """
    payload, event_type = row["payload"], row["event_type"]
    if event_type == "keys.bootstrapped" and row["sequence"] == 1:
        return {key["key_id"]: key["public_key"] for key in payload["keys"]}
    if event_type == "key.registered" and payload.get("kind") in ("agent", "witness"):
        return {payload["key_id"]: payload["public_key"]}
    if event_type == "key.rotated":
        retiring = registered.get(payload["retired_key_id"])
        new_public = bytes.fromhex(payload["public_key"])
        endorsement = bytes.fromhex(payload.get("endorsement", ""))
        if retiring is None or not crypto.signature_valid(
            bytes.fromhex(retiring), endorsement, new_public
        ):
            raise ChainBroken(row["sequence"], "rotation is not endorsed by the retiring key")
        return {payload["key_id"]: payload["public_key"]}
    return {}


def _check_provenance(row: dict, keys: dict[str, KeyRecord], registered: dict[str, str]) -> None:
    for column in ("signing_key_id", "witness_key_id"):
        key = keys.get(row[column])
        if key is None or registered.get(row[column]) != key.public_hex:
            raise ChainBroken(
                row["sequence"], f"{column} {row[column]} was never registered in the log"
            )


def check_event(row: dict, *, expected_sequence: int, prev_hash: str, keys: dict) -> None:
    sequence = row["sequence"]
    if sequence != expected_sequence:
        raise ChainBroken(
            expected_sequence, f"expected sequence {expected_sequence}, found {sequence}"
        )
    if row["prev_hash"] != prev_hash:
        raise ChainBroken(sequence, "prev_hash does not match the previous content_hash")
    canonical = crypto.canonical_content(
        sequence=sequence,
        event_type=row["event_type"],
        payload=row["payload"],
        agent_id=row["agent_id"],
        signing_key_id=row["signing_key_id"],
        signing_mode=row["signing_mode"],
        local_timestamp=row["local_timestamp"],
        prev_hash=row["prev_hash"],
        schema_version=row["schema_version"],
    )
    content_digest = crypto.digest(canonical)
    if content_digest.hex() != row["content_hash"]:
        raise ChainBroken(sequence, "content_hash does not match the event content")

    agent_key = keys.get(row["signing_key_id"])
    if agent_key is None or agent_key.kind != "agent" or agent_key.owner != row["agent_id"]:
        raise ChainBroken(sequence, f"signing key {row['signing_key_id']} is not the agent's key")
    if not agent_key.active_at(row["local_timestamp"]):
        raise ChainBroken(sequence, "signing key was not active at local_timestamp")
    signature = bytes.fromhex(row["signature"])
    if not crypto.signature_valid(agent_key.public_key, signature, content_digest):
        raise ChainBroken(sequence, "agent signature does not verify")

    witness_key = keys.get(row["witness_key_id"])
    if (
        witness_key is None
        or witness_key.kind != "witness"
        or witness_key.owner != row["witness_id"]
        or row["witness_id"] == row["agent_id"]
    ):
        raise ChainBroken(sequence, f"witness key {row['witness_key_id']} is not valid")
    if not witness_key.active_at(row["local_timestamp"]):
        raise ChainBroken(sequence, "witness key was not active at local_timestamp")
    message = crypto.witness_message(content_digest, signature)
    if not crypto.signature_valid(
        witness_key.public_key, bytes.fromhex(row["witness_signature"]), message
    ):
        raise ChainBroken(sequence, "witness signature does not verify")


def _verify_range(first: int, last: int | None, keys: dict[str, KeyRecord]) -> VerificationResult:
    """Verifies events first..last (or to the head), linking to the stored hash of first - 1."""
    if first <= 1:
        first, prev_hash = 1, GENESIS_PREV_HASH
    else:
        previous = (
            Event.objects.filter(sequence=first - 1).values_list("content_hash", flat=True).first()
        )
        if previous is None:
            return VerificationResult(False, 0, first, None, first - 1, "previous event is missing")
        prev_hash = previous

    checked, expected, last_seen = 0, first, None
    try:
        # Key provenance needs the registrations made before the first checked event.
        registered: dict[str, str] = {}
        for row in _rows(
            1,
            until=first - 1,
            columns=("sequence", "event_type", "payload"),
            event_types=KEY_EVENT_TYPES,
        ):
            registered.update(keys_registered_by(row, registered))
        for row in _event_rows(first, last):
            try:
                check_event(row, expected_sequence=expected, prev_hash=prev_hash, keys=keys)
                registered.update(keys_registered_by(row, registered))
                _check_provenance(row, keys, registered)
            except (ValueError, TypeError, KeyError) as exc:  # malformed hex or content
                raise ChainBroken(row["sequence"], f"malformed event: {exc!r}") from exc
            prev_hash, expected, last_seen = row["content_hash"], expected + 1, row["sequence"]
            checked += 1
    except ChainBroken as broken:
        return VerificationResult(False, checked, first, last_seen, broken.sequence, broken.reason)
    if last is not None and last_seen != last:
        return VerificationResult(False, checked, first, last_seen, expected, "event is missing")
    return VerificationResult(True, checked, first, last_seen)


def verify_range(first: int, last: int) -> VerificationResult:
    """Verifies events first..last, linked to the stored hash of the event before `first`
    (the admin's "verify range")."""
    started = time.perf_counter()
    try:
        return _verify_range(max(first, 1), last, _keys())
    finally:
        VERIFICATION_DURATION.observe(time.perf_counter() - started)


def _verify_chunk(bounds: tuple[int, int]) -> VerificationResult:
    return _verify_range(bounds[0], bounds[1], _keys())


def verify_chain(
    *, from_sequence: int = 1, workers: int | None = None, chunk_size: int = 25_000
) -> VerificationResult:
    """Verifies from `from_sequence` to the head, in constant memory.

    Long ranges are split into chunks verified in parallel by `workers` processes (default:
    one per core); each chunk links to the stored hash before it, so together they check
    the whole chain. The first failing sequence is the lowest one found.
    """
    started = time.perf_counter()
    try:
        head = Event.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        first = max(from_sequence, 1)
        workers = workers or os.cpu_count() or 1
        if workers == 1 or head - first + 1 <= chunk_size:
            return _verify_range(first, None, _keys())
        bounds = [
            (start, min(start + chunk_size - 1, head))
            for start in range(first, head + 1, chunk_size)
        ]
        # Children must not share the parent's database connection.
        connections.close_all()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = []
            for result in pool.imap(_verify_chunk, bounds):
                results.append(result)
                if not result.ok:
                    pool.terminate()
                    break
        checked = sum(result.checked for result in results)
        failed = next((result for result in results if not result.ok), None)
        if failed:
            return VerificationResult(
                False,
                checked,
                first,
                failed.last_sequence,
                failed.first_bad_sequence,
                failed.reason,
            )
        # Events appended while verifying are left for the next run.
        return VerificationResult(True, checked, first, results[-1].last_sequence)
    finally:
        VERIFICATION_DURATION.observe(time.perf_counter() - started)


def checkpoint_problem(checkpoint: dict, keys: dict[str, KeyRecord] | None = None) -> str | None:
    """Why a checkpoint (as observers get it) does not hold up, or None: the checkpoint key's
    signature and every witness co-signature over the RFC 8785 tree head, each by a key of
    the right kind active at the checkpoint's time; at least one witness."""
    keys = _keys() if keys is None else keys
    try:
        timestamp = datetime.fromisoformat(checkpoint["timestamp"].replace("Z", "+00:00"))
        message = crypto.checkpoint_message(
            tree_size=checkpoint["tree_size"],
            root_hash=checkpoint["root_hash"],
            timestamp=checkpoint["timestamp"],
        )
        signed = [(checkpoint["key_id"], "checkpoint", checkpoint["signature"])] + [
            (c["key_id"], "witness", c["signature"]) for c in checkpoint.get("cosignatures", [])
        ]
        if len(signed) < 2:
            return "no witness co-signed the checkpoint"
        for key_id, kind, signature in signed:
            key = keys.get(key_id)
            if key is None or key.kind != kind:
                return f"{key_id} is not a registered {kind} key"
            if not key.active_at(timestamp):
                return f"{kind} key {key_id} was not active at the checkpoint's time"
            if not crypto.signature_valid(key.public_key, bytes.fromhex(signature), message):
                return f"the {kind} signature by {key_id} does not verify"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return f"malformed checkpoint: {exc!r}"
    return None


def anchor_mismatch(size: int, root_hash: str) -> tuple[int, str] | None:
    """Whether the log's first `size` events, hashed afresh from their content_hash (no stored
    tree trusted), still have the root a checkpoint signed: None, or (the first bad sequence,
    why). Raises psycopg.Error when the log cannot be read."""
    from events import merkle, tree

    head = tree.log_size()
    if head < size:
        return head + 1, f"the log ends at {head}, before checkpoint {size}: events are gone"
    try:
        root = tree.root_from_events(size)
    except merkle.TreeRangeError as exc:
        return size, f"checkpoint {size}: {exc}"
    if root.hex() == root_hash:
        return None
    first_bad = tree.first_divergent_sequence(size)
    where = f" (first changed event: {first_bad})" if first_bad else ""
    return first_bad or size, (
        f"the first {size} events no longer hash to checkpoint {size}'s signed root: "
        f"the past was rewritten{where}"
    )
