"""A verifier written only from SPEC 3.2, with rfc8785 and cryptography: no project code.

It checks what the observer API serves, as an outsider would.
"""

import hashlib
from datetime import datetime

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CONTENT_FIELDS = (
    "schema_version", "sequence", "event_type", "payload", "agent_id", "signing_key_id",
    "signing_mode", "local_timestamp", "prev_hash",
)  # fmt: skip


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _active(key: dict, at: datetime) -> bool:
    return _when(key["active_from"]) <= at and (
        key["active_until"] is None or at < _when(key["active_until"])
    )


def _verifies(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except InvalidSignature:
        return False
    return True


def verify(events: list[dict], keys: list[dict]) -> list[str]:
    """Returns the problems found; an empty list means the log verifies."""
    by_id = {key["key_id"]: key for key in keys}
    problems = []
    prev_hash = "0" * 64
    for expected, event in enumerate(events, start=1):
        where = f"event {event['sequence']}"
        if event["sequence"] != expected:
            problems.append(f"{where}: expected sequence {expected}")
        if event["prev_hash"] != prev_hash:
            problems.append(f"{where}: prev_hash breaks the chain")
        content = {field: event[field] for field in CONTENT_FIELDS}
        digest = hashlib.sha256(rfc8785.dumps(content)).digest()
        if digest.hex() != event["content_hash"]:
            problems.append(f"{where}: content_hash mismatch")
        at = _when(event["local_timestamp"])
        agent_key = by_id.get(event["signing_key_id"])
        if not (
            agent_key
            and agent_key["kind"] == "agent"
            and agent_key["owner"] == event["agent_id"]
            and _active(agent_key, at)
            and _verifies(agent_key["public_key"], event["signature"], digest)
        ):
            problems.append(f"{where}: agent signature invalid")
        witness_key = by_id.get(event["witness_key_id"])
        message = digest + bytes.fromhex(event["signature"])
        if not (
            witness_key
            and witness_key["kind"] == "witness"
            and witness_key["owner"] == event["witness_id"] != event["agent_id"]
            and _active(witness_key, at)
            and _verifies(witness_key["public_key"], event["witness_signature"], message)
        ):
            problems.append(f"{where}: witness signature invalid")
        prev_hash = event["content_hash"]
    return problems
