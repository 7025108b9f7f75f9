"""Every write to the event store and the key registry."""

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, sql
from django.db.models.expressions import DatabaseDefault
from django.utils import timezone

from conclave.database.statements import fetch_one
from conclave.exceptions import (
    Conflict,
    DomainError,
    NotFound,
    ValidationFailed,
    checked_again_if_refused,
)
from conclave.halt import ensure_not_halted
from conclave.metrics import CHECKPOINT_DURATION, CHECKPOINT_TREE_SIZE
from conclave.text import REFUSAL, prints
from events import crypto
from events.integration import events_integrate, no_keys_hint
from events.models import (
    AgentKey,
    Checkpoint,
    CheckpointCosignature,
    Event,
    EventQueueEntry,
    KeeperKey,
    KeyKind,
)
from events.signing import get_signer

SYSTEM_AGENT_ID = "SYSTEM:EVENT_WRITER"
SYSTEM_WITNESS_ID = "SYSTEM:WITNESS"
# How long PendingEvent.wait sleeps between looks at the queue: 1 ms, doubling to 25 ms.
WAIT_FIRST_PAUSE, WAIT_MAX_PAUSE = 0.001, 0.025
KEY_CHECK_TTL_SECONDS = 30.0
# PostgreSQL takes at most 65,535 parameters a statement; 4 per row.
ENQUEUE_ROWS_PER_STATEMENT = 5000


class EventNotLogged(DomainError):
    """The log did not take an event that was queued (rejected, or not integrated in time)."""

    status_code = 503
    error = "event_not_logged"
    default_detail = "The event log has not recorded this event."


@dataclass(frozen=True)
class EventDraft:
    """What a caller wants logged; the store adds sequence, chain, timestamps and signatures."""

    event_type: str
    payload: dict[str, Any]
    agent_id: str = SYSTEM_AGENT_ID


@dataclass(frozen=True)
class PendingEvent:
    """An event committed to the log's queue together with its caller's transaction.

    The integrator gives it its sequence, hash and signatures moments later (in the same
    transaction with EVENT_INTEGRATION=inline); `wait` returns the logged event.
    """

    queue_id: int
    event_type: str

    def wait(self, timeout: float = 10.0) -> Event:
        """The logged event, once integrated. Call it after the appending transaction has
        committed: until then no integrator can see the entry."""
        deadline = time.monotonic() + timeout
        pause = WAIT_FIRST_PAUSE
        while True:
            row = (
                EventQueueEntry.objects.filter(id=self.queue_id)
                .values_list("sequence", "rejected_reason")
                .first()
            )
            if row is None:
                raise NotFound(f"Queued event {self.queue_id} was never committed or is purged.")
            sequence, rejected_reason = row
            if sequence is not None:
                return Event.objects.get(sequence=sequence)
            if rejected_reason:
                raise EventNotLogged(f"The log rejected this event: {rejected_reason}")
            if connection.in_atomic_block:
                raise RuntimeError("wait for an event after the transaction that appended it")
            if time.monotonic() >= deadline:
                raise EventNotLogged(f"Event {self.queue_id} is not integrated yet.")
            time.sleep(pause)
            pause = min(pause * 2, WAIT_MAX_PAUSE)


def actor_of(user: "AbstractBaseUser | AnonymousUser | None") -> str:
    """The `actor` of an event a person caused: `user:<username>`, or `anonymous`."""
    if user is None or not user.is_authenticated:
        return "anonymous"
    return f"user:{user.get_username()}"


def _canonical_payload(draft: EventDraft) -> str:
    if not draft.event_type or len(draft.event_type) > 100:
        raise ValidationFailed({"event_type": ["1 to 100 characters."]})
    if not draft.agent_id or len(draft.agent_id) > 200:
        raise ValidationFailed({"agent_id": ["1 to 200 characters."]})
    try:
        return crypto.canonical_payload(draft.payload).decode()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationFailed({"payload": [f"not canonical JSON: {exc}"]}) from exc


_can_sign_until: dict[str, float] = {}


def _check_agent_can_sign(agent_id: str) -> None:
    """Refuses, in the caller's transaction, events of an agent with no usable key, so the
    integrator does not have to reject them later. Positive answers are cached briefly: a
    key retired meanwhile still ends in a rejection the integrator logs and counts."""
    if _can_sign_until.get(agent_id, 0.0) > time.monotonic():
        return
    now = timezone.now()
    active = AgentKey.objects.filter(AgentKey.active_at_q(now))
    if not active.filter(kind=KeyKind.AGENT, agent_id=agent_id).exists():
        raise Conflict(f"{agent_id} has no agent key active at {now.isoformat()}.{no_keys_hint()}")
    if not active.filter(kind=KeyKind.WITNESS).exclude(agent_id=agent_id).exists():
        raise Conflict(f"No witness key is active at {now.isoformat()}.")
    _can_sign_until[agent_id] = time.monotonic() + KEY_CHECK_TTL_SECONDS


def _ensure_appendable(event_types: tuple[str, ...], agent_ids: Iterable[str]) -> None:
    """What every append checks before it queues: not halted (halt events excepted), and
    each agent able to sign (see `_check_agent_can_sign`)."""
    ensure_not_halted(event_types=event_types)
    for agent_id in agent_ids:
        _check_agent_can_sign(agent_id)


QUEUE_INSERT = "INSERT INTO event_queue (event_type, payload, agent_id, local_timestamp)"
QUEUE_INSERT_ONE = f"{QUEUE_INSERT} VALUES (%s, %s, %s, %s) RETURNING id"


def _enqueue(rows: list[tuple[str, str, str, datetime]]) -> list[int]:
    """Inserts queue entries in order, one statement, and returns their ids in that order."""
    if connection.vendor == "postgresql":
        if len(rows) > ENQUEUE_ROWS_PER_STATEMENT:
            with transaction.atomic():
                return [
                    queue_id
                    for start in range(0, len(rows), ENQUEUE_ROWS_PER_STATEMENT)
                    for queue_id in _enqueue(rows[start : start + ENQUEUE_ROWS_PER_STATEMENT])
                ]
        if len(rows) == 1:  # past Django's cursor when it can
            return [fetch_one(connections[DEFAULT_DB_ALIAS], QUEUE_INSERT_ONE, rows[0])[0]]
        # Only placeholders are formatted into the statement.
        sql = f"{QUEUE_INSERT} VALUES {', '.join(['(%s, %s, %s, %s)'] * len(rows))} RETURNING id"
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in rows for value in row])
            # Ids come from one sequence, drawn row by row in VALUES order.
            return sorted(row[0] for row in cursor.fetchall())
    entries = EventQueueEntry.objects.bulk_create(
        EventQueueEntry(event_type=t, payload=p, agent_id=a, local_timestamp=ts)
        for t, p, a, ts in rows
    )
    return [entry.id for entry in entries]


def event_append_batch(
    *, drafts: Sequence[EventDraft], local_timestamp: datetime | None = None
) -> list[PendingEvent]:
    """Appends events, in order, within the caller's transaction if there is one: a state
    change and its log entries commit or roll back together. Refused (Halted) while the
    system is halted, except halt and ceremony events.

    Writers only queue the entries (one INSERT for the batch); the integrator
    (events.integration) chains, signs, witnesses and inserts them into `events` in the
    order they were queued, or this very transaction does with EVENT_INTEGRATION=inline.
    """
    payloads = [_canonical_payload(draft) for draft in drafts]
    if not drafts:
        return []
    _ensure_appendable(
        tuple(draft.event_type for draft in drafts), {draft.agent_id for draft in drafts}
    )
    moment = local_timestamp or timezone.now()
    rows = [
        (draft.event_type, payload, draft.agent_id, moment)
        for draft, payload in zip(drafts, payloads, strict=True)
    ]
    if settings.EVENT_INTEGRATION == "inline":
        with transaction.atomic():
            ids = _enqueue(rows)
            events_integrate(limit=None, strict=True)
    else:
        # One INSERT statement: atomic by itself, and part of the caller's transaction if
        # there is one (outside one it commits at once, in a single round trip).
        ids = _enqueue(rows)
    return [
        PendingEvent(queue_id, draft.event_type)
        for queue_id, draft in zip(ids, drafts, strict=True)
    ]


# Stands for a new row's id in the payload of the event that records it (`event_append_
# inserting`): the largest integer canonical JSON writes as its digits.
NEW_ROW_ID = 2**53 - 1


# The statements of event_append_inserting, compiled once per model and per set of fields
# left to their database defaults.
Converters = dict[int, tuple[list[Any], Any]]  # SQLCompiler.get_converters
_insert_statements: dict[tuple[type[Model], tuple[bool, ...]], tuple[str, Converters]] = {}
_concrete_fields: dict[type[Model], list[Any]] = {}


def _insert_sql(instance: Model, db: BaseDatabaseWrapper) -> tuple[str, list[Any], Converters]:
    """The statement of `event_append_inserting` for `instance` (its row's INSERT, RETURNING
    what a save reads back, and the queue entry's INSERT), its parameters but the queue
    entry's, and the converters of the returned columns. Django's own compiler writes the row's
    INSERT, so defaults, auto_now fields and conversions are those of a save; the statement
    is kept, and the parameters of the next row are the fields' own conversions."""
    meta = instance._meta
    fields = _concrete_fields.get(type(instance))
    if fields is None:
        fields = _concrete_fields[type(instance)] = [
            f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field
        ]
    values = [field.pre_save(instance, True) for field in fields]
    defaults = tuple(isinstance(value, DatabaseDefault) for value in values)
    key = (type(instance), defaults)
    expressions = any(
        hasattr(value, "resolve_expression") and not default
        for value, default in zip(values, defaults, strict=True)
    )
    if expressions or key not in _insert_statements:
        query = sql.InsertQuery(type(instance))
        query.insert_values(fields, [instance])
        compiler = query.get_compiler(connection=db)
        compiler.returning_fields = meta.db_returning_fields
        [(insert, params)] = compiler.as_sql()
        columns = [field.get_col(meta.db_table) for field in meta.db_returning_fields]
        converters = compiler.get_converters(columns)
        pk = db.ops.quote_name(str(meta.pk.column))
        # Django's compiled INSERT and a quoted column name; every value is a parameter.
        statement = (
            f"WITH inserted AS ({insert}), entry AS ({QUEUE_INSERT} "  # noqa: S608
            f"SELECT %s, %s || inserted.{pk}::text || %s, %s, %s FROM inserted RETURNING id) "
            "SELECT inserted.*, entry.id FROM inserted, entry"
        )
        if not expressions:  # (an expression's SQL is its own)
            _insert_statements[key] = (statement, converters)
        return statement, list(params), converters
    statement, converters = _insert_statements[key]
    params = [
        field.get_db_prep_save(value, db)
        for field, value, default in zip(fields, values, defaults, strict=True)
        if not default
    ]
    return statement, params, converters


def event_append_inserting(
    instance: Model,
    *,
    event_type: str,
    payload: dict[str, Any],
    id_key: str,
    agent_id: str = SYSTEM_AGENT_ID,
) -> PendingEvent:
    """Saves the new `instance` and appends the event that records it, whose payload carries
    the new row's primary key under `id_key`: both or neither, in the caller's transaction if
    there is one (as `event_append`). On PostgreSQL one statement does both, and outside a
    transaction commits them at once: one round trip where BEGIN, two INSERTs and COMMIT take
    four."""
    db = connections[DEFAULT_DB_ALIAS]  # (`connection` looks it up on every use)
    key_text = f"{json.dumps(id_key)}:"
    template = _canonical_payload(EventDraft(event_type, {**payload, id_key: NEW_ROW_ID}, agent_id))
    parts = template.split(f"{key_text}{NEW_ROW_ID}")
    if db.vendor != "postgresql" or instance.pk is not None or len(parts) != 2:
        # (or the stand-in is also one of the caller's values)
        with transaction.atomic():
            instance.save(force_insert=True)
            return event_append(
                event_type=event_type, payload={**payload, id_key: instance.pk}, agent_id=agent_id
            )
    _ensure_appendable((event_type,), (agent_id,))
    statement, params, converters = _insert_sql(instance, db)
    params += [event_type, parts[0] + key_text, parts[1], agent_id, timezone.now()]
    inline = settings.EVENT_INTEGRATION == "inline"
    with transaction.atomic() if inline else nullcontext():
        *values, queue_id = fetch_one(db, statement, params)
        if inline:
            events_integrate(limit=None, strict=True)
    for position, (functions, column) in converters.items():
        for convert in functions:
            values[position] = convert(values[position], column, db)
    for field, value in zip(instance._meta.db_returning_fields, values, strict=True):
        setattr(instance, field.attname, value)
    instance._state.adding = False
    instance._state.db = db.alias
    return PendingEvent(queue_id, event_type)


def event_append(
    *,
    event_type: str,
    payload: dict[str, Any],
    agent_id: str = SYSTEM_AGENT_ID,
    local_timestamp: datetime | None = None,
) -> PendingEvent:
    """Appends one event (see `event_append_batch`). Nearly every write appends one: on
    PostgreSQL with an integrator it is the same checks and one INSERT of fixed text, without
    the batch's lists (an eighth of an append's client CPU)."""
    draft = EventDraft(event_type=event_type, payload=payload, agent_id=agent_id)
    db = connections[DEFAULT_DB_ALIAS]  # (`connection` looks it up on every use)
    if db.vendor != "postgresql" or settings.EVENT_INTEGRATION == "inline":
        return event_append_batch(drafts=[draft], local_timestamp=local_timestamp)[0]
    text = _canonical_payload(draft)
    _ensure_appendable((event_type,), (agent_id,))
    row = fetch_one(
        db, QUEUE_INSERT_ONE, (event_type, text, agent_id, local_timestamp or timezone.now())
    )
    return PendingEvent(row[0], event_type)


def _create_key_row(*, kind: str, owner: str, active_from: datetime) -> AgentKey:
    key_id = f"{kind}-{uuid.uuid4().hex[:16]}"
    public_key = get_signer().create_key(key_id)
    return AgentKey.objects.create(
        agent_id=owner, key_id=key_id, kind=kind, public_key=public_key, active_from=active_from
    )


def _key_event_payload(key: AgentKey | KeeperKey, *, kind: str, owner: str) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "owner": owner,
        "kind": kind,
        "algorithm": "Ed25519",
        "public_key": bytes(key.public_key).hex(),
        "active_from": crypto.format_timestamp(key.active_from),
    }


@transaction.atomic
def keys_bootstrap() -> list[AgentKey]:
    """Registers the system's first agent and witness keys, if it has none, in event 1.

    The genesis event is the only one signed by keys it registers itself; every later key is
    registered by an event signed with keys registered before it (see events.verification).
    """
    now = timezone.now()
    if AgentKey.objects.filter(kind=KeyKind.AGENT, agent_id=SYSTEM_AGENT_ID).exists():
        return []
    created = [
        _create_key_row(kind=KeyKind.AGENT, owner=SYSTEM_AGENT_ID, active_from=now),
        _create_key_row(kind=KeyKind.WITNESS, owner=SYSTEM_WITNESS_ID, active_from=now),
    ]
    event_append(
        event_type="keys.bootstrapped",
        payload={"keys": [_key_event_payload(k, kind=k.kind, owner=k.agent_id) for k in created]},
        local_timestamp=now,
    )
    return created


@transaction.atomic
def key_register_check(*, kind: str, owner: str) -> None:
    """What key_register refuses, for a form to show before it saves."""
    if kind not in KeyKind.values:
        raise ValidationFailed({"kind": [f"one of {', '.join(KeyKind.values)}"]})
    _check_id("owner", owner)


def _check_id(field: str, value: str) -> None:
    """An owner's or keeper's id: 1 to 200 characters without control characters or text
    direction overrides (it is shown in pages, logs and events, where they would hide or
    reorder text)."""
    if not value or len(value) > 200:
        raise ValidationFailed({field: ["1 to 200 characters."]})
    if not prints(value):
        raise ValidationFailed({field: [REFUSAL]})


def key_register(*, kind: str, owner: str, actor: str = "system") -> AgentKey:
    key_register_check(kind=kind, owner=owner)
    now = timezone.now()
    key = _create_key_row(kind=kind, owner=owner, active_from=now)
    event_append(
        event_type="key.registered",
        payload={**_key_event_payload(key, kind=kind, owner=owner), "actor": actor},
        local_timestamp=now,
    )
    return key


@transaction.atomic
def key_rotate(*, key_id: str, actor: str = "system") -> AgentKey:
    """Retires `key_id` now and registers its successor, active from the same instant."""
    try:
        old = AgentKey.objects.select_for_update().get(key_id=key_id)
    except AgentKey.DoesNotExist as exc:
        raise NotFound(f"No key {key_id}.") from exc
    if old.active_until is not None:
        raise Conflict(f"Key {key_id} was already retired at {old.active_until.isoformat()}.")
    now = timezone.now()
    old.active_until = now
    old.save(update_fields=["active_until"])
    new = _create_key_row(kind=old.kind, owner=old.agent_id, active_from=now)
    # The retiring key vouches for its successor, which may sign this very event.
    endorsement = get_signer().sign(old.key_id, bytes(new.public_key))
    event_append(
        event_type="key.rotated",
        payload={
            **_key_event_payload(new, kind=new.kind, owner=new.agent_id),
            "retired_key_id": old.key_id,
            "retired_at": crypto.format_timestamp(now),
            "endorsement": endorsement.hex(),
            "actor": actor,
        },
        local_timestamp=now,
    )
    return new


def _keeper_key_unused(public_key: bytes) -> None:
    """Conflict if the public key was ever registered, for any keeper (KeeperKey's rule; the
    database's unique constraint holds it against races)."""
    holder = KeeperKey.objects.filter(public_key=public_key).first()
    if holder is not None:
        raise Conflict(
            f"This public key is registered already ({holder.key_id} of {holder.keeper_id}); "
            "each keeper key is a new key pair."
        )


def keeper_key_register_check(*, keeper_id: str, public_key: bytes) -> None:
    """What keeper_key_register refuses, for a form to show before it saves."""
    _check_id("keeper_id", keeper_id)
    if len(public_key) != 32:
        raise ValidationFailed({"public_key": ["an Ed25519 public key is 32 bytes."]})
    _keeper_key_unused(public_key)


@transaction.atomic
def keeper_key_register(*, keeper_id: str, public_key: bytes, actor: str = "system") -> KeeperKey:
    """Registers a keeper's public key; the private key stays with the keeper."""
    keeper_key_register_check(keeper_id=keeper_id, public_key=public_key)
    now = timezone.now()
    with checked_again_if_refused(lambda: _keeper_key_unused(public_key)):
        key = KeeperKey.objects.create(
            keeper_id=keeper_id,
            key_id=f"keeper-{uuid.uuid4().hex[:16]}",
            public_key=public_key,
            active_from=now,
        )
    event_append(
        event_type="keeper_key.registered",
        payload={**_key_event_payload(key, kind="keeper", owner=keeper_id), "actor": actor},
        local_timestamp=now,
    )
    return key


@transaction.atomic
def keeper_key_rotate(*, key_id: str, public_key: bytes, actor: str = "system") -> KeeperKey:
    """Retires a keeper's key now and registers the new public key they hand in (their private
    key never reaches us), active from the same instant."""
    try:
        old = KeeperKey.objects.select_for_update().get(key_id=key_id)
    except KeeperKey.DoesNotExist as exc:
        raise NotFound(f"No keeper key {key_id}.") from exc
    if old.active_until is not None:
        raise Conflict(f"Key {key_id} was already retired at {old.active_until.isoformat()}.")
    if len(public_key) != 32:
        raise ValidationFailed({"public_key": ["an Ed25519 public key is 32 bytes."]})
    if bytes(old.public_key) == public_key:
        raise ValidationFailed(
            {"public_key": ["The new key must differ from the one it replaces."]}
        )
    _keeper_key_unused(public_key)
    now = timezone.now()
    old.active_until = now
    old.save(update_fields=["active_until"])
    with checked_again_if_refused(lambda: _keeper_key_unused(public_key)):
        new = KeeperKey.objects.create(
            keeper_id=old.keeper_id,
            key_id=f"keeper-{uuid.uuid4().hex[:16]}",
            public_key=public_key,
            active_from=now,
        )
    event_append(
        event_type="keeper_key.rotated",
        payload={
            **_key_event_payload(new, kind="keeper", owner=old.keeper_id),
            "retired_key_id": old.key_id,
            "retired_at": crypto.format_timestamp(now),
            "actor": actor,
        },
        local_timestamp=now,
    )
    return new


SYSTEM_CHECKPOINT_ID = "SYSTEM:CHECKPOINTER"
CHECKPOINT_EVENT = "checkpoint.created"
# pg_advisory_xact_lock key serialising checkpoints: "checkpnt" as a big-endian integer.
CHECKPOINT_LOCK_KEY = int.from_bytes(b"checkpnt", "big") & 0x7FFFFFFFFFFFFFFF


def _checkpoint_key(moment: datetime) -> AgentKey:
    key = (
        AgentKey.objects.filter(AgentKey.active_at_q(moment), kind=KeyKind.CHECKPOINT)
        .order_by("-active_from")
        .first()
    )
    return key or key_register(
        kind=KeyKind.CHECKPOINT, owner=SYSTEM_CHECKPOINT_ID, actor="checkpoint"
    )


def _verified_through(start: int, kind: str) -> int:
    """Verifies the log from `start` to its head before a checkpoint vouches for it; returns
    where it ends. A failure is recorded (and so halts the system) and refused."""
    from conclave.services import verification_record
    from events.verification import verify_chain

    started = timezone.now()
    result = verify_chain(from_sequence=start)
    if result.checked or not result.ok:
        verification_record(kind=kind, result=result, started_at=started)
    if not result.ok:
        raise Conflict(
            f"The log does not verify at sequence {result.first_bad_sequence}: {result.reason}. "
            "No checkpoint was made; the system is halted."
        )
    return result.last_sequence or start - 1


def checkpoint_create(*, force: bool = False, actor: str = "system") -> Checkpoint | None:
    """Signs the Merkle tree head of the whole log (SPEC 3.6) with the checkpoint key, has
    every active witness key co-sign it, stores it and appends a `checkpoint.created` event.

    Vouches only for what verifies: the events since the last checkpoint (or the last
    verified point) are verified first. Returns None, making nothing, when nothing but
    checkpoint events were appended since the last checkpoint (unless `force`).
    """
    from conclave.models import VerificationKind
    from conclave.services import last_verified_sequence
    from events import tree

    started = time.perf_counter()
    ensure_not_halted(event_types=(CHECKPOINT_EVENT,))
    latest = Checkpoint.objects.order_by("-tree_size").first()
    latest_size = latest.tree_size if latest else 0
    news = Event.objects.filter(sequence__gt=latest_size)
    if not force:
        news = news.exclude(event_type=CHECKPOINT_EVENT)
    if not news.exists():
        return None
    # Registered (an event) before the head is read, so the checkpoint covers it.
    key = _checkpoint_key(timezone.now())
    size = _verified_through(
        max(latest_size, last_verified_sequence()) + 1, VerificationKind.CHECKPOINT
    )
    tree.tree_extend(size)
    root_hash = tree.tree_root(size).hex()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])
        newest = Checkpoint.objects.order_by("-tree_size").first()
        if newest and newest.tree_size >= size:
            return None  # another process signed this head meanwhile
        now = timezone.now()
        if not key.active_at(now):
            raise Conflict(f"Checkpoint key {key.key_id} was retired meanwhile; try again.")
        timestamp = crypto.format_timestamp(now)
        message = crypto.checkpoint_message(
            tree_size=size, root_hash=root_hash, timestamp=timestamp
        )
        signer = get_signer()
        checkpoint = Checkpoint.objects.create(
            tree_size=size,
            root_hash=root_hash,
            timestamp=now,
            key_id=key.key_id,
            signature=signer.sign(key.key_id, message).hex(),
        )
        witnesses = AgentKey.objects.filter(AgentKey.active_at_q(now), kind=KeyKind.WITNESS)
        cosignatures = CheckpointCosignature.objects.bulk_create(
            CheckpointCosignature(
                checkpoint=checkpoint,
                witness_id=witness.agent_id,
                key_id=witness.key_id,
                signature=signer.sign(witness.key_id, message).hex(),
            )
            for witness in witnesses.order_by("key_id")
        )
        if not cosignatures:
            raise Conflict("No witness key is active to co-sign the checkpoint.")
        event_append(
            event_type=CHECKPOINT_EVENT,
            payload={
                "tree_size": size,
                "root_hash": root_hash,
                "timestamp": timestamp,
                "key_id": key.key_id,
                "signature": checkpoint.signature,
                "cosignatures": [
                    {"witness_id": c.witness_id, "key_id": c.key_id, "signature": c.signature}
                    for c in cosignatures
                ],
                "actor": actor,
            },
            local_timestamp=now,
        )
    CHECKPOINT_DURATION.observe(time.perf_counter() - started)
    CHECKPOINT_TREE_SIZE.set(size)
    return checkpoint
