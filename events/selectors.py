"""Reads of the event store and the key registry."""

from typing import Any

from events import crypto
from events.models import AgentKey, Checkpoint, KeeperKey


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


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as observers get it (SPEC 3.6), with its witness co-signatures."""
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "timestamp": crypto.format_timestamp(checkpoint.timestamp),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "cosignatures": [
            {"witness_id": c.witness_id, "key_id": c.key_id, "signature": c.signature}
            for c in checkpoint.cosignatures.all()
        ],
    }


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.prefetch_related("cosignatures").order_by("-tree_size").first()


def checkpoints_after(tree_size: int, limit: int) -> list[Checkpoint]:
    return list(
        Checkpoint.objects.filter(tree_size__gt=tree_size)
        .prefetch_related("cosignatures")
        .order_by("tree_size")[:limit]
    )
