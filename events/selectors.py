"""Reads of the event store and the key registry."""

from typing import Any

from events.models import AgentKey, KeeperKey


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
