"""The hashing and signing rules of SPEC 3.2, in one place, used by appends and verification.

content_hash = SHA-256 over the RFC 8785 (JCS) serialisation of the event content;
signature = Ed25519(agent key, digest); witness_signature = Ed25519(witness key,
digest || signature). All hashes, signatures and keys are lowercase hex outside the process.
"""

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEMA_VERSION = 1


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z: 2026-11-22T03:15:00.000000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(
    *,
    sequence: int,
    event_type: str,
    payload: Any,
    agent_id: str,
    signing_key_id: str,
    signing_mode: str,
    local_timestamp: datetime,
    prev_hash: str,
    schema_version: int = SCHEMA_VERSION,
) -> bytes:
    return rfc8785.dumps(
        {
            "schema_version": schema_version,
            "sequence": sequence,
            "event_type": event_type,
            "payload": payload,
            "agent_id": agent_id,
            "signing_key_id": signing_key_id,
            "signing_mode": signing_mode,
            "local_timestamp": format_timestamp(local_timestamp),
            "prev_hash": prev_hash,
        }
    )


def digest(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


def witness_message(content_digest: bytes, signature: bytes) -> bytes:
    return content_digest + signature


@lru_cache(maxsize=1024)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]
