"""The integrator: queued events become chained, signed and witnessed rows of `events`.

Writers commit entries to `event_queue` in their own transactions (`events.services`), which
is cheap, concurrent and atomic with their state change. `events_integrate` turns pending
entries into log events, in one transaction per batch:

1. take the chain lock (a transaction-scoped advisory lock on PostgreSQL; SQLite's write
   lock), so two integrators, or an integrator and an inline writer, never interleave;
2. read the head afresh (and the key rows, when they changed) and the pending entries in
   `id` order;
3. hash each event's content in chain order (each `prev_hash` is the previous digest);
4. sign each digest with the agent's key, and digest + signature with a witness key, on every
   core when the signer allows threads (signatures do not feed the chain);
5. insert the batch (on PostgreSQL one INSERT with the queue's UPDATE for a small batch,
   COPY for a large one; the database's triggers check every row) and record the sequence
   each entry received.

A crash anywhere rolls the whole batch back, so each entry is integrated once, in order, and
the chain has no gap or fork. An entry the log cannot take (its agent has no key active at
its time, or the database refuses it) is marked rejected with the reason, logged and counted,
and integration goes on with the next one.

`run_integrator` is the long-running process (`manage.py integrate_events`); with
`EVENT_INTEGRATION=inline` (the default on SQLite) each append integrates in its own
transaction instead, through the same function.
"""

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import structlog
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from conclave.database.statements import fetch_all
from conclave.exceptions import Conflict
from conclave.metrics import (
    APPEND_DURATION,
    CHAIN_HEAD,
    EVENTS_APPENDED,
    EVENTS_REJECTED,
    INTEGRATION_LAG,
)
from events import crypto
from events.models import GENESIS_PREV_HASH, AgentKey, Event, EventQueueEntry, KeyKind
from events.signing import Signer, SignerUnavailable, get_signer

logger = structlog.get_logger(__name__)

# pg_advisory_xact_lock key serialising integration: "conclave" as a big-endian integer.
CHAIN_LOCK_KEY = int.from_bytes(b"conclave", "big") & 0x7FFFFFFFFFFFFFFF
EVENT_COLUMNS = (
    "sequence", "event_type", "payload", "agent_id", "signing_key_id", "signing_mode",
    "local_timestamp", "prev_hash", "content_hash", "signature", "witness_id",
    "witness_key_id", "witness_signature", "schema_version",
)  # fmt: skip
# Events signed per task of the signing threads.
SIGNING_CHUNK = 50
# An unreachable database is retried after 0.1 s, doubling up to 5 s.
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.1, 5.0


LOCK_CHAIN_SQL = (
    "SELECT pg_advisory_xact_lock(%s), set_config('enable_bitmapscan', 'off', true), "
    "set_config('plan_cache_mode', 'force_generic_plan', true)"
)


class Rejected(Exception):
    """This entry can never be integrated as it stands."""


def lock_chain() -> None:
    """Serialises integration until the caller's transaction ends, across every process.

    PostgreSQL: a transaction-scoped advisory lock, after which the head is read afresh; in
    the same statement, for the rest of the transaction, no bitmap scans (see PENDING_SQL)
    and the generic plans of prepared statements: PostgreSQL would otherwise plan the batch's
    statement anew every time (its custom plan looks cheaper for a known, short array), a
    third of a small batch's database CPU.
    SQLite: transactions begin IMMEDIATE (settings), so the write lock is already held.
    """
    if connection.vendor == "postgresql":
        fetch_all(connection, LOCK_CHAIN_SQL, [CHAIN_LOCK_KEY])


class KeyRing:
    """The registered agent and witness keys, read once per batch, and the choice of keys for
    an event: the agent's newest key active at its time, and the witnesses (never the agent
    itself) active then, taking turns by sequence in key id order.

    Times are compared as `crypto.format_timestamp` text (fixed width, UTC), the form queued
    entries are read in: no datetime is built per event.
    """

    def __init__(self, keys: Iterable[AgentKey]) -> None:
        by_id = sorted(keys, key=lambda key: key.key_id)
        spans = [
            (
                crypto.format_timestamp(key.active_from),
                crypto.format_timestamp(key.active_until) if key.active_until else None,
                key,
            )
            for key in by_id
        ]
        self.agent_keys: dict[str, list[tuple[str, str | None, AgentKey]]] = {}
        # Newest first; among keys active from the same moment, the lowest key id.
        for span in sorted(
            (span for span in spans if span[2].kind == KeyKind.AGENT),
            key=lambda span: span[0],
            reverse=True,
        ):
            self.agent_keys.setdefault(span[2].agent_id, []).append(span)
        self.witnesses = [span for span in spans if span[2].kind == KeyKind.WITNESS]
        # After the last moment any key starts or ends, the choice depends on the agent alone.
        self.settled_after = max(
            (moment for start, end, _ in spans for moment in (start, end) if moment), default=""
        )
        self.settled: dict[str, tuple[AgentKey | None, list[AgentKey]]] = {}

    def for_event(self, *, agent_id: str, at: str, sequence: int) -> tuple[AgentKey, AgentKey]:
        if at > self.settled_after:
            if agent_id not in self.settled:
                self.settled[agent_id] = self._active(agent_id, at)
            agent_key, witnesses = self.settled[agent_id]
        else:
            agent_key, witnesses = self._active(agent_id, at)
        if agent_key is None:
            raise Rejected(f"{agent_id} has no agent key active at {at}")
        if not witnesses:
            raise Rejected(f"no witness key is active at {at}")
        return agent_key, witnesses[sequence % len(witnesses)]

    def _active(self, agent_id: str, at: str) -> tuple[AgentKey | None, list[AgentKey]]:
        agent_key = next(
            (
                key
                for start, end, key in self.agent_keys.get(agent_id, ())
                if start <= at and (end is None or at < end)
            ),
            None,
        )
        witnesses = [
            key
            for start, end, key in self.witnesses
            if key.agent_id != agent_id and start <= at and (end is None or at < end)
        ]
        return agent_key, witnesses


# A digest of every key row (each whole row's text): the key ring is built again only when a
# key row was added or changed, not for every batch (it cost more than the rest of a small
# batch).
KEYS_DIGEST_SQL = (
    "SELECT md5(string_agg(k::text, ',' ORDER BY k.id)) AS digest FROM agent_keys AS k"
)
_ring: tuple[str, "KeyRing"] | None = None


def _key_ring(digest: str | None) -> "KeyRing":
    """The key ring as the key rows stand, kept while their digest stays the same."""
    global _ring
    ring = _ring
    if digest is None or ring is None or ring[0] != digest:
        ring = (digest or "", KeyRing(AgentKey.objects.all()))
        _ring = ring if digest is not None else None
    return ring[1]


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    event_type: str
    payload: str
    agent_id: str
    local_timestamp: str  # as crypto.format_timestamp writes it
    enqueued_at: float  # seconds since the epoch


@dataclass(slots=True)
class _Draft:
    """An event chained but not yet signed."""

    entry: _Entry
    sequence: int
    prev_hash: str
    digest: bytes
    agent_key_id: str
    witness: AgentKey
    signature: bytes = b""
    witness_signature: bytes = b""


# Read once: os.cpu_count() reads /sys on every call (50 us, a tenth of a small batch).
CORES = os.cpu_count() or 1


@cache
def _signing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=CORES, thread_name_prefix="sign")


class _Signatures:
    """Signs drafts as the chain produces them: each draft by its agent key, then digest +
    signature by its witness key.

    With a thread-safe signer, every SIGNING_CHUNK drafts go to the signing threads at once
    (libsodium signs without the GIL, on every core) while the chain goes on being hashed and
    earlier chunks are copied into the database; `signed()` yields the drafts in order.
    """

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.parallel = signer.thread_safe and CORES > 1
        self.chunk: list[_Draft] = []
        self.pending: list[Future[list[_Draft]] | list[_Draft]] = []

    def _sign_all(self, drafts: list[_Draft]) -> list[_Draft]:
        for draft in drafts:
            draft.signature = self.signer.sign(draft.agent_key_id, draft.digest)
            draft.witness_signature = self.signer.sign(
                draft.witness.key_id, crypto.witness_message(draft.digest, draft.signature)
            )
        return drafts

    def _flush(self) -> None:
        if self.chunk:
            chunk, self.chunk = self.chunk, []
            self.pending.append(
                _signing_pool().submit(self._sign_all, chunk) if self.parallel else chunk
            )

    def add(self, draft: _Draft) -> None:
        self.chunk.append(draft)
        if len(self.chunk) >= SIGNING_CHUNK:
            self._flush()

    def signed(self) -> Iterator[_Draft]:
        if not self.pending:
            # One chunk in all (a small batch): nothing to overlap it with, so no thread.
            yield from self._sign_all(self.chunk)
            return
        self._flush()
        try:
            for part in self.pending:
                yield from part.result() if isinstance(part, Future) else self._sign_all(part)
        finally:
            for part in self.pending:
                if isinstance(part, Future):
                    part.cancel()


# Reads of pending entries start this many ids below the newest entry this process
# settled, and from the queue's beginning at least this often (see `QueueFloor`).
FLOOR_MARGIN_IDS = 10_000
FULL_SCAN_SECONDS = 1.0


class QueueFloor:
    """Where this process's reads of pending entries start.

    Integrated entries stay in the pending index, dead, until VACUUM removes them (autovacuum
    may be off, behind, or held back by a long transaction), and a read from the queue's
    beginning walks all of them: 2 ms for 200,000, on every batch and every idle poll. So
    reads start FLOOR_MARGIN_IDS below the newest entry settled; an entry below that still
    pending (its transaction stayed open while that many newer ones were settled) is found
    by a read from the beginning, due every FULL_SCAN_SECONDS: the next batch's read, or an
    idle poll that finds the whole queue empty.
    """

    def __init__(self) -> None:
        self.settled_up_to = 0
        self.full_scan_due = 0.0

    def start(self) -> int:
        if time.monotonic() >= self.full_scan_due:
            return 0
        return max(0, self.settled_up_to - FLOOR_MARGIN_IDS)

    def scanned_from_start(self) -> None:
        self.full_scan_due = time.monotonic() + FULL_SCAN_SECONDS

    def settled(self, entry_id: int) -> None:
        self.settled_up_to = max(self.settled_up_to, entry_id)


queue_floor = QueueFloor()


# The queue's pending entries in id order through the partial index `event_queue_pending`,
# local_timestamp already in its canonical text (PostgreSQL formats it faster than Python
# parses it). Plain index scans, not bitmap ones: they mark the index entries of integrated
# entries dead as they pass, so later scans skip them until VACUUM removes them.
PENDING_SQL = f"""
SELECT id, event_type, payload, agent_id, {crypto.timestamp_sql("local_timestamp")},
       extract(epoch FROM enqueued_at)::float8
FROM event_queue
WHERE processed_at IS NULL AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND id >= %(floor)s AND starts_with(event_type, %(prefix)s)
ORDER BY id
LIMIT %(limit)s
"""  # noqa: S608 - a fixed expression


def _read_floor(ids: Sequence[int] | None) -> int:
    """Where a read of pending entries starts (entries asked for by id: wherever they are)."""
    if ids is not None:
        return 0
    floor = queue_floor.start()
    if floor == 0:
        queue_floor.scanned_from_start()
    return floor


def _pending_params(
    limit: int | None, ids: Sequence[int] | None, event_type_prefix: str
) -> dict[str, Any]:
    return {
        "ids": None if ids is None else list(ids),
        "floor": _read_floor(ids),
        "prefix": event_type_prefix,
        "limit": limit,
    }


def _pending(
    limit: int | None, ids: Sequence[int] | None = None, event_type_prefix: str = ""
) -> list[_Entry]:
    if connection.vendor == "postgresql":
        params = _pending_params(limit, ids, event_type_prefix)
        return [_Entry(*row) for row in fetch_all(connection, PENDING_SQL, params)]
    entries = EventQueueEntry.objects.filter(processed_at__isnull=True).order_by("id")
    if ids is not None:
        entries = entries.filter(id__in=ids)
    else:
        entries = entries.filter(id__gte=_read_floor(ids))
    if event_type_prefix:
        entries = entries.filter(event_type__startswith=event_type_prefix)
    rows = entries.values_list(
        "id", "event_type", "payload", "agent_id", "local_timestamp", "enqueued_at"
    )
    return [
        _Entry(
            entry_id, event_type, payload, agent, crypto.format_timestamp(at), enqueued.timestamp()
        )
        for entry_id, event_type, payload, agent, at, enqueued in (rows[:limit] if limit else rows)
    ]


# The pending entries, each row also carrying the chain's head and the key rows' digest: one
# statement, read once the chain lock is held (a statement of its own, so that it sees what
# the lock's previous holder committed).
PENDING_AND_HEAD_SQL = f"""
SELECT pending.*, head.sequence, head.content_hash, keys.digest
FROM ({PENDING_SQL}) AS pending
CROSS JOIN ({KEYS_DIGEST_SQL}) AS keys
LEFT JOIN LATERAL (
    SELECT sequence, content_hash FROM events ORDER BY sequence DESC LIMIT 1
) AS head ON true
ORDER BY pending.id
"""  # noqa: S608 - fixed expressions


def _pending_and_head(
    limit: int | None, ids: Sequence[int] | None, event_type_prefix: str
) -> tuple[list[_Entry], int, str, "KeyRing | None"]:
    """The pending entries (as `_pending`), the head's sequence and content hash (0 and the
    genesis hash for an empty log) and the key ring; with no entry, nothing else."""
    if connection.vendor != "postgresql":
        entries = _pending(limit, ids, event_type_prefix)
        if not entries:
            return [], 0, GENESIS_PREV_HASH, None
        head = Event.objects.order_by("-sequence").values_list("sequence", "content_hash").first()
        sequence, content_hash = head or (0, GENESIS_PREV_HASH)
        return entries, sequence, content_hash, _key_ring(None)
    rows = fetch_all(
        connection, PENDING_AND_HEAD_SQL, _pending_params(limit, ids, event_type_prefix)
    )
    if not rows:
        return [], 0, GENESIS_PREV_HASH, None
    sequence, content_hash, digest = rows[0][-3:]
    return (
        [_Entry(*row[:-3]) for row in rows],
        sequence or 0,
        content_hash or GENESIS_PREV_HASH,
        _key_ring(digest),
    )


def _insert(events: Iterable[tuple[Any, ...]]) -> None:
    if connection.vendor == "postgresql":
        copy_sql = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
        # psycopg's own cursor, for COPY; its errors become Django's like any query's.
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(copy_sql) as copy:
                for row in events:
                    copy.write_row(row)
    else:
        # The ORM stores a JSONField's value: the payload's object, not its canonical text.
        rows = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in events]
        Event.objects.bulk_create(
            Event(
                **{
                    **row,
                    "payload": json.loads(row["payload"]),
                    "local_timestamp": datetime.fromisoformat(row["local_timestamp"]),
                }
            )
            for row in rows
        )


# Records each integrated entry's sequence (consecutive, from the first one's); the id range
# lets the join read only this batch's part of the queue.
MARK_SQL = (
    "UPDATE event_queue AS q SET sequence = %s + s.n - 1, processed_at = %s "
    "FROM unnest(%s::text::bigint[]) WITH ORDINALITY AS s(id, n) "
    "WHERE q.id = s.id AND q.id BETWEEN %s AND %s"
)
# Up to this many events, a batch is stored with one statement (see `_store`).
INSERT_ROWS_MAX = 50


def _mark_params(integrated: list[_Draft], now: datetime) -> list[Any]:
    ids = [draft.entry.id for draft in integrated]
    return [
        integrated[0].sequence, now, "{" + ",".join(map(str, ids)) + "}", ids[0],
        ids[-1],
    ]  # fmt: skip


def _mark(integrated: list[_Draft], rejected: list[tuple[int, str]], *, now: datetime) -> None:
    """Records each integrated entry's sequence (consecutive, from the first draft's) and
    each rejected entry's reason, all processed at `now`."""
    if integrated and connection.vendor == "postgresql":
        fetch_all(connection, MARK_SQL, _mark_params(integrated, now))
    else:
        for draft in integrated:
            EventQueueEntry.objects.filter(id=draft.entry.id).update(
                sequence=draft.sequence, processed_at=now
            )
    for entry_id, reason in rejected:
        EventQueueEntry.objects.filter(id=entry_id).update(rejected_reason=reason, processed_at=now)


# One statement for a batch of up to INSERT_ROWS_MAX events (see `_store`): the events as a
# JSON array of objects, one parameter, expanded in order, then the queue's UPDATE. Its text
# never changes, so psycopg converts it once and PostgreSQL plans it once (a VALUES list per
# batch size was re-parsed on every batch); json.dumps writes the document in C, where
# psycopg builds a binary array per column in Python (half the statement's client CPU).
_RECORD = ", ".join(
    column + " " + {"sequence": "bigint", "schema_version": "smallint"}.get(column, "text")
    for column in EVENT_COLUMNS
)
_VALUES = ", ".join(
    column + {"payload": "::jsonb", "local_timestamp": "::timestamptz"}.get(column, "")
    for column in EVENT_COLUMNS
)
INSERT_AND_MARK_SQL = (
    f"WITH inserted AS (INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608
    f"SELECT {_VALUES} FROM ROWS FROM (json_to_recordset(%s::json) AS ({_RECORD})) "
    f"WITH ORDINALITY AS r({', '.join(EVENT_COLUMNS)}, n) ORDER BY n) {MARK_SQL}"
)


def _store(
    events: Iterable[tuple[Any, ...]], integrated: list[_Draft], rejected: list[tuple[int, str]]
) -> None:
    """Inserts the batch's events and records what became of each entry. On PostgreSQL a
    batch of up to INSERT_ROWS_MAX events is one statement, its INSERT and the queue's
    UPDATE together (a round trip where COPY and the UPDATE take three: most of a small
    batch's cost); a larger one is copied, COPY being the fastest bulk load, then marked."""
    now = timezone.now()
    if not integrated or connection.vendor != "postgresql" or len(integrated) > INSERT_ROWS_MAX:
        _insert(events)
        _mark(integrated, rejected, now=now)
        return
    document = json.dumps(
        [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in events], ensure_ascii=False
    )
    fetch_all(connection, INSERT_AND_MARK_SQL, [document, *_mark_params(integrated, now)])
    _mark([], rejected, now=now)


def no_keys_hint() -> str:
    """What a refusal for a missing key adds on a fresh database, where no key is registered
    at all (a write tried straight after `migrate`): the command to run."""
    if AgentKey.objects.exists():
        return ""
    return (
        " No key is registered yet: `manage.py keys bootstrap` registers the system's first"
        " agent and witness keys."
    )


def events_integrate(
    *,
    limit: int | None = 500,
    ids: Sequence[int] | None = None,
    strict: bool = False,
    event_type_prefix: str = "",
) -> int:
    """Integrates up to `limit` pending entries (all with None; only `ids` if given), in `id`
    order, in one transaction (the caller's, if there is one). Returns how many it settled,
    integrated or rejected. With `strict`, an entry the log cannot take raises Conflict
    instead (inline integration: the caller's transaction rolls back)."""
    signer = get_signer()
    started = time.perf_counter()
    with transaction.atomic():
        lock_chain()
        entries, sequence, prev_hash, ring = _pending_and_head(limit, ids, event_type_prefix)
        if ring is None:
            return 0
        drafts: list[_Draft] = []
        signatures = _Signatures(signer)
        rejected: list[tuple[int, str]] = []
        for entry in entries:
            try:
                agent_key, witness = ring.for_event(
                    agent_id=entry.agent_id, at=entry.local_timestamp, sequence=sequence + 1
                )
            except Rejected as exc:
                if strict:
                    raise Conflict(
                        f"The event log cannot take this event: {exc}.{no_keys_hint()}"
                    ) from exc
                rejected.append((entry.id, str(exc)))
                continue
            sequence += 1
            digest = crypto.digest(
                crypto.canonical_content(
                    sequence=sequence,
                    event_type=entry.event_type,
                    payload=None,
                    payload_bytes=entry.payload.encode(),
                    agent_id=entry.agent_id,
                    signing_key_id=agent_key.key_id,
                    signing_mode=signer.mode,
                    local_timestamp=entry.local_timestamp,
                    prev_hash=prev_hash,
                )
            )
            draft = _Draft(entry, sequence, prev_hash, digest, agent_key.key_id, witness)
            drafts.append(draft)
            signatures.add(draft)
            prev_hash = digest.hex()
        rows = (
            (
                draft.sequence,
                draft.entry.event_type,
                draft.entry.payload,
                draft.entry.agent_id,
                draft.agent_key_id,
                signer.mode,
                draft.entry.local_timestamp,
                draft.prev_hash,
                draft.digest.hex(),
                draft.signature.hex(),
                draft.witness.agent_id,
                draft.witness.key_id,
                draft.witness_signature.hex(),
                crypto.SCHEMA_VERSION,
            )
            for draft in signatures.signed()
        )
        _store(rows, drafts, rejected)
        transaction.on_commit(lambda: _settled(drafts, rejected, head=sequence))
    APPEND_DURATION.observe(time.perf_counter() - started)
    return len(entries)


def _settled(drafts: list[_Draft], rejected: list[tuple[int, str]], *, head: int) -> None:
    """Counted once committed: a rolled-back batch never happened."""
    ids = [draft.entry.id for draft in drafts[-1:]] + [entry_id for entry_id, _ in rejected]
    queue_floor.settled(max(ids, default=0))
    CHAIN_HEAD.set(head)
    now = time.time()
    for event_type, count in Counter(draft.entry.event_type for draft in drafts).items():
        EVENTS_APPENDED.labels(event_type).inc(count)
    for draft in drafts:
        INTEGRATION_LAG.observe(max(now - draft.entry.enqueued_at, 0.0))
    for entry_id, reason in rejected:
        EVENTS_REJECTED.inc()
        logger.error("event_rejected", queue_id=entry_id, reason=reason)


def _refused_by_database(exc: DatabaseError) -> bool:
    """The database refused what a batch wrote (a trigger, a constraint, a malformed value),
    as opposed to being unreachable or restarting, which is worth retrying as it stands."""
    return not isinstance(exc, OperationalError | InterfaceError)


def _integrate_step(batch_size: int, event_type_prefix: str = "") -> int:
    """One batch; if the database refuses it, entry by entry, rejecting the refused ones."""
    try:
        return events_integrate(limit=batch_size, event_type_prefix=event_type_prefix)
    except DatabaseError as exc:
        if not _refused_by_database(exc):
            raise
    settled = 0
    for entry in _pending(batch_size, event_type_prefix=event_type_prefix):
        try:
            settled += events_integrate(ids=[entry.id])
        except DatabaseError as exc:
            if not _refused_by_database(exc):
                raise
            reason = f"refused by the database: {exc}"
            with transaction.atomic():
                lock_chain()
                _mark([], [(entry.id, reason)], now=timezone.now())
            EVENTS_REJECTED.inc()
            logger.error("event_rejected", queue_id=entry.id, reason=reason)
            settled += 1
    return settled


def events_queue_purge(*, older_than: timedelta) -> int:
    """Deletes integrated entries older than `older_than` (their events stay in the log);
    rejected entries are kept for the operators."""
    cutoff = timezone.now() - older_than
    deleted, _ = EventQueueEntry.objects.filter(
        sequence__isnull=False, processed_at__lt=cutoff
    ).delete()
    return deleted


def _has_pending(event_type_prefix: str = "") -> bool:
    floor = queue_floor.start()
    pending = EventQueueEntry.objects.filter(processed_at__isnull=True, id__gte=floor)
    if event_type_prefix:
        pending = pending.filter(event_type__startswith=event_type_prefix)
    if pending.exists():
        return True  # (a read from the start still due: the batch's read makes it)
    if floor == 0:
        queue_floor.scanned_from_start()
    return False


def run_integrator(
    *,
    stop: threading.Event,
    batch_size: int,
    poll_interval: float,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Integrates until `stop` is set: batch after batch while entries are queued, polling
    every `poll_interval` seconds when the queue is empty. While the system is halted only
    halt events are integrated; the rest wait in the queue for the clear.

    Writers do not NOTIFY: PostgreSQL serialises the commits of every transaction that
    notifies, which halved the commit rate of 8 concurrent writers on this hardware; an
    indexed poll of an empty queue costs next to nothing. Unreachable databases are retried
    with backoff; a batch the database refuses is retried entry by entry.
    """
    from conclave.halt import HALT_EVENT_PREFIX, halt_status

    backoff = RETRY_FIRST_SECONDS
    settled = 0
    while not stop.is_set():
        try:
            # Also carries a halt set only in Redis into the database within a second.
            prefix = HALT_EVENT_PREFIX if halt_status().halted else ""
            # After a batch, straight to the next: under load the queue is rarely empty.
            busy = settled > 0 or _has_pending(prefix)
            settled = _integrate_step(batch_size, prefix) if busy else 0
        except (DatabaseError, SignerUnavailable) as exc:
            logger.warning("integration_failed", error=str(exc), retry_in=backoff)
            connection.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, RETRY_MAX_SECONDS)
            continue
        backoff = RETRY_FIRST_SECONDS
        if on_batch is not None:
            on_batch(settled)
        if settled < batch_size:
            # A batch that was not full emptied the queue: the next look waits a moment, so
            # that under a steady trickle each batch takes what a poll interval brings
            # rather than one or two entries at the full cost of a batch.
            stop.wait(poll_interval)
