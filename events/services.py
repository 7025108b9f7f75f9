"""Every write to the event store and the key registry."""

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from django.db import connection, transaction
from django.utils import timezone

from conclave.exceptions import Conflict, NotFound, ValidationFailed
from conclave.metrics import APPEND_DURATION, CHAIN_HEAD, EVENTS_APPENDED
from events import crypto
from events.models import GENESIS_PREV_HASH, AgentKey, Event, KeeperKey, KeyKind
from events.selectors import signing_keys
from events.signing import get_signer

SYSTEM_AGENT_ID = "SYSTEM:EVENT_WRITER"
SYSTEM_WITNESS_ID = "SYSTEM:WITNESS"
# pg_advisory_xact_lock key serialising appends: "conclave" as a big-endian integer.
CHAIN_LOCK_KEY = int.from_bytes(b"conclave", "big") & 0x7FFFFFFFFFFFFFFF


def _lock_chain_head() -> None:
    """Serialises appends until the caller's transaction ends, across every process.

    PostgreSQL: a transaction-scoped advisory lock, after which the head is read afresh.
    SQLite: transactions begin IMMEDIATE (settings), so the write lock is already held.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


@dataclass(frozen=True)
class EventDraft:
    """What a caller wants logged; the store adds sequence, chain, timestamps and signatures."""

    event_type: str
    payload: dict[str, Any]
    agent_id: str = SYSTEM_AGENT_ID


def _validate(draft: EventDraft) -> None:
    if not draft.event_type or len(draft.event_type) > 100:
        raise ValidationFailed({"event_type": ["1 to 100 characters."]})
    try:
        rfc8785.dumps(draft.payload)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationFailed({"payload": [f"not canonical JSON: {exc}"]}) from exc


def event_append_batch(
    *, drafts: Sequence[EventDraft], local_timestamp: datetime | None = None
) -> list[Event]:
    """Appends events in order, signed and witnessed, inside the caller's transaction if there
    is one: a state change and its log entries commit or roll back together.

    One lock, one head read and one multi-row INSERT for the whole batch.
    """
    for draft in drafts:
        _validate(draft)
    if not drafts:
        return []
    signer = get_signer()
    moment = local_timestamp or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        _lock_chain_head()
        head = Event.objects.order_by("-sequence").values_list("sequence", "content_hash").first()
        sequence, prev_hash = head if head else (0, GENESIS_PREV_HASH)
        agent_keys: dict[str, AgentKey] = {}
        witness_keys: dict[str, list[AgentKey]] = {}
        events = []
        for draft in drafts:
            sequence += 1
            if draft.agent_id not in agent_keys:
                agent_keys[draft.agent_id], witness_keys[draft.agent_id] = signing_keys(
                    agent_id=draft.agent_id, at=moment
                )
            agent_key = agent_keys[draft.agent_id]
            witnesses = witness_keys[draft.agent_id]
            witness_key = witnesses[sequence % len(witnesses)]
            content: dict[str, Any] = {
                "sequence": sequence,
                "event_type": draft.event_type,
                "payload": draft.payload,
                "agent_id": draft.agent_id,
                "signing_key_id": agent_key.key_id,
                "signing_mode": signer.mode,
                "local_timestamp": moment,
                "prev_hash": prev_hash,
            }
            content_digest = crypto.digest(crypto.canonical_content(**content))
            signature = signer.sign(agent_key.key_id, content_digest)
            witness_signature = signer.sign(
                witness_key.key_id, crypto.witness_message(content_digest, signature)
            )
            events.append(
                Event(
                    **content,
                    content_hash=content_digest.hex(),
                    signature=signature.hex(),
                    witness_id=witness_key.agent_id,
                    witness_key_id=witness_key.key_id,
                    witness_signature=witness_signature.hex(),
                    schema_version=crypto.SCHEMA_VERSION,
                )
            )
            prev_hash = content_digest.hex()
        Event.objects.bulk_create(events)
    APPEND_DURATION.observe(time.perf_counter() - started)
    transaction.on_commit(lambda: _count_appended(drafts, head=sequence))
    return events


def _count_appended(drafts: Sequence[EventDraft], *, head: int) -> None:
    """Counted once committed: a rolled-back append never happened."""
    CHAIN_HEAD.set(head)
    for draft in drafts:
        EVENTS_APPENDED.labels(draft.event_type).inc()


def event_append(
    *,
    event_type: str,
    payload: dict[str, Any],
    agent_id: str = SYSTEM_AGENT_ID,
    local_timestamp: datetime | None = None,
) -> Event:
    """Appends one event (see `event_append_batch`)."""
    draft = EventDraft(event_type=event_type, payload=payload, agent_id=agent_id)
    return event_append_batch(drafts=[draft], local_timestamp=local_timestamp)[0]


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
def key_register(*, kind: str, owner: str, actor: str = "system") -> AgentKey:
    if kind not in KeyKind.values:
        raise ValidationFailed({"kind": [f"one of {', '.join(KeyKind.values)}"]})
    if not owner or len(owner) > 200:
        raise ValidationFailed({"owner": ["1 to 200 characters."]})
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


@transaction.atomic
def keeper_key_register(*, keeper_id: str, public_key: bytes, actor: str = "system") -> KeeperKey:
    """Registers a keeper's public key; the private key stays with the keeper."""
    if not keeper_id or len(keeper_id) > 200:
        raise ValidationFailed({"keeper_id": ["1 to 200 characters."]})
    if len(public_key) != 32:
        raise ValidationFailed({"public_key": ["an Ed25519 public key is 32 bytes."]})
    now = timezone.now()
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
