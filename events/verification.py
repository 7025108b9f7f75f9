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
from typing import Any

from django.db import connection, connections

from conclave.metrics import VERIFICATION_DURATION
from events import crypto
from events.models import GENESIS_PREV_HASH, AgentKey, Event

BATCH_SIZE = 2000
# The largest sequence the events table's bigint holds.
MAX_SEQUENCE = 2**63 - 1
KEY_EVENT_TYPES = ("keys.bootstrapped", "key.registered", "key.rotated")
EVENT_COLUMNS = (
    "sequence", "event_type", "payload", "agent_id", "signing_key_id", "signing_mode",
    "local_timestamp", "prev_hash", "content_hash", "signature", "witness_id",
    "witness_key_id", "witness_signature", "schema_version",
)  # fmt: skip
# Verification reads each event as a tuple of EVENT_COLUMNS (a dict per event cost as much as
# reading it); these name the positions.
(
    SEQUENCE, EVENT_TYPE, PAYLOAD, AGENT_ID, SIGNING_KEY_ID, SIGNING_MODE, LOCAL_TIMESTAMP,
    PREV_HASH, CONTENT_HASH, SIGNATURE, WITNESS_ID, WITNESS_KEY_ID, WITNESS_SIGNATURE,
    SCHEMA_VERSION,
) = range(len(EVENT_COLUMNS))  # fmt: skip


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


def _event_rows(first: int, last: int | None) -> Iterator[tuple]:
    """The events first..last (or to the head) as tuples of EVENT_COLUMNS, the payload parsed
    and `local_timestamp` a moment or its canonical text. On PostgreSQL, read with less
    overhead than the ORM's: verification spends more time here than anywhere but the
    signature checks."""
    if connection.vendor != "postgresql":
        for row in _rows(first, until=last):
            yield tuple(row[column] for column in EVENT_COLUMNS)
        return
    after, until = first - 1, last if last is not None else MAX_SEQUENCE
    loads = json.loads
    while True:
        with connection.cursor() as cursor:
            cursor.execute(EVENT_PAGE_SQL, [after, until, BATCH_SIZE])
            batch = cursor.fetchall()
        if not batch:
            return
        for values in batch:
            yield (*values[:PAYLOAD], loads(values[PAYLOAD]), *values[PAYLOAD + 1 :])
        after = batch[-1][SEQUENCE]


def keys_registered_by(
    sequence: int, event_type: str, payload: Any, registered: dict[str, str]
) -> dict[str, str] | None:
    """The agent and witness keys (key_id -> public key hex) an event brings into the log, or
    None for the events (nearly all) that bring none.

    Event 1 (`keys.bootstrapped`) registers the first keys; `key.registered` adds keys and
    `key.rotated` adds a successor that its retiring key has endorsed.
    """
    if event_type == "keys.bootstrapped" and sequence == 1:
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
            raise ChainBroken(sequence, "rotation is not endorsed by the retiring key")
        return {payload["key_id"]: payload["public_key"]}
    return None


def _check_provenance(row: tuple, keys: dict[str, KeyRecord], registered: dict[str, str]) -> None:
    for column, position in (
        ("signing_key_id", SIGNING_KEY_ID),
        ("witness_key_id", WITNESS_KEY_ID),
    ):
        key_id = row[position]
        key = keys.get(key_id)
        if key is None or registered.get(key_id) != key.public_hex:
            raise ChainBroken(row[SEQUENCE], f"{column} {key_id} was never registered in the log")


# A signature to check: public key, signature, message, the event's sequence, and what it
# means if it does not verify.
SignatureCheck = tuple[bytes, bytes, bytes, int, str]


def check_event(
    row: tuple,
    *,
    expected_sequence: int,
    prev_hash: str,
    keys: dict,
    signatures: list[SignatureCheck],
) -> None:
    """Checks one event (a tuple of EVENT_COLUMNS) against the previous event's hash and the
    keys, raising ChainBroken; its agent and witness signatures go on `signatures`, to be
    checked by `check_signatures` (in order, before any failure found later is reported).

    Checking a page's signatures in one run rather than between the other checks of each event
    keeps libsodium's code and tables hot: a tenth less CPU an event here."""
    (
        sequence, event_type, payload, agent_id, signing_key_id, signing_mode, local_timestamp,
        row_prev_hash, content_hash, signature_hex, witness_id, witness_key_id,
        witness_signature_hex, schema_version,
    ) = row  # fmt: skip
    if sequence != expected_sequence:
        raise ChainBroken(
            expected_sequence, f"expected sequence {expected_sequence}, found {sequence}"
        )
    if row_prev_hash != prev_hash:
        raise ChainBroken(sequence, "prev_hash does not match the previous content_hash")
    canonical = crypto.canonical_content(
        sequence=sequence,
        event_type=event_type,
        payload=payload,
        agent_id=agent_id,
        signing_key_id=signing_key_id,
        signing_mode=signing_mode,
        local_timestamp=local_timestamp,
        prev_hash=row_prev_hash,
        schema_version=schema_version,
    )
    content_digest = crypto.digest(canonical)
    if content_digest.hex() != content_hash:
        raise ChainBroken(sequence, "content_hash does not match the event content")

    agent_key = keys.get(signing_key_id)
    if agent_key is None or agent_key.kind != "agent" or agent_key.owner != agent_id:
        raise ChainBroken(sequence, f"signing key {signing_key_id} is not the agent's key")
    if not agent_key.active_at(local_timestamp):
        raise ChainBroken(sequence, "signing key was not active at local_timestamp")
    signature = bytes.fromhex(signature_hex)
    signatures.append(
        (
            agent_key.public_key,
            signature,
            content_digest,
            sequence,
            "agent signature does not verify",
        )
    )

    witness_key = keys.get(witness_key_id)
    if (
        witness_key is None
        or witness_key.kind != "witness"
        or witness_key.owner != witness_id
        or witness_id == agent_id
    ):
        raise ChainBroken(sequence, f"witness key {witness_key_id} is not valid")
    if not witness_key.active_at(local_timestamp):
        raise ChainBroken(sequence, "witness key was not active at local_timestamp")
    signatures.append(
        (
            witness_key.public_key,
            bytes.fromhex(witness_signature_hex),
            crypto.witness_message(content_digest, signature),
            sequence,
            "witness signature does not verify",
        )
    )


def check_signatures(signatures: list[SignatureCheck]) -> None:
    """Checks the signatures `check_event` put aside, in order, raising ChainBroken at the
    first that does not verify; empties the list."""
    valid = crypto.signature_valid
    for public_key, signature, message, sequence, failure in signatures:
        if not valid(public_key, signature, message):
            raise ChainBroken(sequence, failure)
    signatures.clear()


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

    expected, last_seen = first, None
    signatures: list[SignatureCheck] = []
    try:
        try:
            # Key provenance needs the registrations made before the first checked event.
            registered: dict[str, str] = {}
            for earlier in _rows(
                1,
                until=first - 1,
                columns=("sequence", "event_type", "payload"),
                event_types=KEY_EVENT_TYPES,
            ):
                registered.update(
                    keys_registered_by(
                        earlier["sequence"], earlier["event_type"], earlier["payload"], registered
                    )
                    or {}
                )
            for row in _event_rows(first, last):
                try:
                    check_event(
                        row,
                        expected_sequence=expected,
                        prev_hash=prev_hash,
                        keys=keys,
                        signatures=signatures,
                    )
                    brought = keys_registered_by(
                        row[SEQUENCE], row[EVENT_TYPE], row[PAYLOAD], registered
                    )
                    if brought:
                        registered.update(brought)
                    _check_provenance(row, keys, registered)
                except (ValueError, TypeError, KeyError) as exc:  # malformed hex or content
                    raise ChainBroken(row[SEQUENCE], f"malformed event: {exc!r}") from exc
                prev_hash, expected, last_seen = row[CONTENT_HASH], expected + 1, row[SEQUENCE]
                if len(signatures) >= 2 * BATCH_SIZE:
                    check_signatures(signatures)
        finally:
            # The signatures of the events before a failure: one of them may fail first.
            check_signatures(signatures)
    except ChainBroken as broken:
        # Every event before the first bad one passed every check.
        checked = max(0, broken.sequence - first)
        return VerificationResult(
            False,
            checked,
            first,
            broken.sequence - 1 if checked else None,
            broken.sequence,
            broken.reason,
        )
    checked = expected - first
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


# The smallest chunk the tail of a parallel verification is cut into.
MIN_CHUNK_SIZE = 2_000


def _chunk_bounds(first: int, last: int, *, chunk_size: int, workers: int) -> list[tuple[int, int]]:
    """first..last cut into chunks of at most `chunk_size` events that shrink toward the end
    (what is left over twice the workers, down to MIN_CHUNK_SIZE): the workers take chunks
    in order as they come free, and small last chunks let them finish together rather than
    one worker verifying a whole chunk while the other cores wait."""
    bounds = []
    start = first
    while start <= last:
        left = last - start + 1
        size = min(chunk_size, max(MIN_CHUNK_SIZE, -(-left // (2 * workers))), left)
        bounds.append((start, start + size - 1))
        start += size
    return bounds


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
        bounds = _chunk_bounds(first, head, chunk_size=chunk_size, workers=workers)
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
