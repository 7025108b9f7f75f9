"""Reads of the event store and the key registry."""

from datetime import datetime
from typing import Any

from django.db.models import Q

from conclave.exceptions import Conflict
from events.models import AgentKey, KeeperKey, KeyKind


def keys_active_at(at: datetime) -> Q:
    return Q(active_from__lte=at) & (Q(active_until__isnull=True) | Q(active_until__gt=at))


def signing_keys(*, agent_id: str, at: datetime) -> tuple[AgentKey, list[AgentKey]]:
    """In one query: the agent's key active at `at`, and the witness keys that may attest
    its events then (never the agent itself), in the fixed order witnesses take turns in."""
    keys = list(
        AgentKey.objects.filter(
            keys_active_at(at),
            Q(kind=KeyKind.AGENT, agent_id=agent_id)
            | (Q(kind=KeyKind.WITNESS) & ~Q(agent_id=agent_id)),
        ).order_by("key_id")
    )
    agent_keys = sorted(
        (key for key in keys if key.kind == KeyKind.AGENT), key=lambda key: key.active_from
    )
    witnesses = [key for key in keys if key.kind == KeyKind.WITNESS]
    if not agent_keys:
        raise Conflict(f"{agent_id} has no agent key active at {at.isoformat()}.")
    if not witnesses:
        raise Conflict(f"No witness key is active at {at.isoformat()}.")
    return agent_keys[-1], witnesses


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
