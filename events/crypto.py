"""The hashing and signing rules of SPEC 3.2, in one place, used by appends and verification.

content_hash = SHA-256 over the RFC 8785 (JCS) serialisation of the event content;
signature = Ed25519(agent key, digest); witness_signature = Ed25519(witness key,
digest || signature). All hashes, signatures and keys are lowercase hex outside the process.
"""

import hashlib
import json
import json.encoder
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

SCHEMA_VERSION = 1


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a Z: 2026-11-22T03:15:00.000000Z."""
    # isoformat, not strftime: %Y drops the leading zeros of years before 1000 on glibc.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def timestamp_sql(column: str) -> str:
    """PostgreSQL's expression for `format_timestamp` of a timestamptz column: the same text,
    made by the server (cheaper than building a datetime per row and formatting it)."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


# Strings made only of these characters are their own RFC 8785 form between quotes.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9 _.:@+/-]*")


def _json_text(value: str) -> bytes:
    """RFC 8785 form of a string: identifiers, hex and timestamps need no escaping."""
    if _PLAIN_TEXT.fullmatch(value):
        return b'"' + value.encode() + b'"'
    return rfc8785.dumps(value)


# Integers RFC 8785 (I-JSON) can carry, written as plain digits.
_SAFE_INTEGER = 2**53 - 1


def _plain_json(value: Any) -> bool:
    """Whether the standard library's JSON encoder writes `value` exactly as RFC 8785 does:
    no floats (their shortest forms differ), integers I-JSON can carry, and ASCII keys (whose
    code point order is RFC 8785's UTF-16 order). Strings are escaped alike by both."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_SAFE_INTEGER <= value <= _SAFE_INTEGER
    if kind is dict:
        return all(
            type(key) is str and key.isascii() and _plain_json(item) for key, item in value.items()
        )
    if kind is list:
        return all(_plain_json(item) for item in value)
    return False


_SORTED_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sorted_compact_encoder() -> Callable[[Any], str]:
    """`_SORTED_COMPACT.encode`, with the standard library's C encoder made once rather than
    on every call (`JSONEncoder.encode` builds it anew each time: about 40% of its cost for
    an order's payload). No circular-reference markers: `_plain_json` has walked the value
    first. The pure Python encoder where there is no C encoder."""
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
    if make_c_encoder is None:
        return _SORTED_COMPACT.encode
    make = make_c_encoder(
        None, _SORTED_COMPACT.default, json.encoder.encode_basestring, None, ":", ",",
        True, False, False,
    )  # fmt: skip

    def encode(value: Any) -> str:
        return "".join(make(value, 0))

    return encode


_encode_sorted_compact = _sorted_compact_encoder()


def canonical_payload(payload: Any) -> bytes:
    """The RFC 8785 form of a payload; raises rfc8785's errors for what JSON cannot carry.

    Payloads of plain JSON (what the workshop writes) are serialised by the standard
    library's C encoder with sorted keys, three times as fast as rfc8785's pure Python;
    anything else (floats, astral keys, lone surrogates) by rfc8785 itself.
    """
    if _plain_json(payload):
        try:
            return _encode_sorted_compact(payload).encode()
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 decides
            pass
    return rfc8785.dumps(payload)


# The envelope's members in RFC 8785 order (code point order of their names).
_CONTENT = (
    b'{"agent_id":%s,"event_type":%s,"local_timestamp":%s,"payload":%s,"prev_hash":%s,'
    b'"schema_version":%s,"sequence":%s,"signing_key_id":%s,"signing_mode":%s}'
)


@lru_cache(maxsize=4096)
def _json_name(value: str) -> bytes:
    """`_json_text` of the few values nearly every event repeats: agents, event types, key
    ids, signing modes."""
    return _json_text(value)


def _json_integer(value: int) -> bytes:
    if type(value) is int and -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
        return b"%d" % value
    return rfc8785.dumps(value)  # its error for what I-JSON cannot carry


def canonical_content(
    *,
    sequence: int,
    event_type: str,
    payload: Any,
    agent_id: str,
    signing_key_id: str,
    signing_mode: str,
    local_timestamp: datetime | str,
    prev_hash: str,
    schema_version: int = SCHEMA_VERSION,
    payload_bytes: bytes | None = None,
) -> bytes:
    """The RFC 8785 form of an event's content (`local_timestamp` a moment, or already the
    text `format_timestamp` makes of it).

    The envelope's members are written in RFC 8785 order around the payload's own canonical
    form (`payload_bytes` when the caller already has it), which gives the same bytes as
    serialising the whole object (tests/test_event_integrator.py checks it) at a fraction of
    the cost: appends and verification do this for every event.
    """
    if not isinstance(local_timestamp, str):
        local_timestamp = format_timestamp(local_timestamp)
    return _CONTENT % (
        _json_name(agent_id),
        _json_name(event_type),
        _json_text(local_timestamp),
        canonical_payload(payload) if payload_bytes is None else payload_bytes,
        _json_text(prev_hash),
        _json_integer(schema_version),
        _json_integer(sequence),
        _json_name(signing_key_id),
        _json_name(signing_mode),
    )


def checkpoint_message(*, tree_size: int, root_hash: str, timestamp: str) -> bytes:
    """What a checkpoint key and each co-signing witness sign (SPEC 3.6): the RFC 8785 form of
    the tree head."""
    return rfc8785.dumps({"tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp})


def digest(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


def witness_message(content_digest: bytes, signature: bytes) -> bytes:
    return content_digest + signature


@lru_cache(maxsize=1024)
def _verify_key(raw: bytes) -> VerifyKey:
    return VerifyKey(raw)


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 (RFC 8032) by libsodium, which also refuses non-canonical signatures and
    small-order keys."""
    try:
        _verify_key(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):  # nacl's ValueError: a wrong length
        return False
    return True


def key_fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]
