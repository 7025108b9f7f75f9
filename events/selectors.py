"""Reads of the event store and the key registry."""

from datetime import datetime
from typing import Any

from django.db.models import Q

from conclave.exceptions import Conflict
from events.models import AgentKey, KeeperKey, KeyKind


def keys_active_at(at: datetime) -> Q:
    return Q(active_from__lte=at) & (Q(active_until__isnull=True) | Q(active_until__gt=at))


def active_key(*, kind: str, owner: str, at: datetime) -> AgentKey:
    key = (
        AgentKey.objects.filter(keys_active_at(at), kind=kind, agent_id=owner)
        .order_by("-active_from")
        .first()
    )
    if key is None:
        raise Conflict(f"{owner} has no {kind} key active at {at.isoformat()}.")
    return key


def active_witness_keys(*, excluding: str, at: datetime) -> list[AgentKey]:
    """The witness keys that may attest an event of `excluding` at `at`, in a fixed order;
    witnesses take turns by sequence, so every active witness attests part of the log."""
    witnesses = list(
        AgentKey.objects.filter(keys_active_at(at), kind=KeyKind.WITNESS)
        .exclude(agent_id=excluding)
        .order_by("key_id")
    )
    if not witnesses:
        raise Conflict(f"No witness key is active at {at.isoformat()}.")
    return witnesses


def all_keys() -> list[dict[str, Any]]:
    """Every key ever registered, as the observer API lists them."""
    keys: list[dict[str, Any]] = [
        {
            "key_id": key.key_id,
            "owner": key.agent_id,
            "kind": key.kind,
            "algorithm": "Ed25519",
            "public_key": bytes(key.public_key).hex(),
            "active_from": key.active_from,
            "active_until": key.active_until,
        }
        for key in AgentKey.objects.order_by("active_from", "key_id")
    ]
    keys += [
        {
            "key_id": key.key_id,
            "owner": key.keeper_id,
            "kind": "keeper",
            "algorithm": "Ed25519",
            "public_key": bytes(key.public_key).hex(),
            "active_from": key.active_from,
            "active_until": key.active_until,
        }
        for key in KeeperKey.objects.order_by("active_from", "key_id")
    ]
    return keys
