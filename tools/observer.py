#!/usr/bin/env python3
"""Check a Conclave Hub log from the outside, trusting nothing but the server's answers.

    python tools/observer.py --server https://hub.example.com --state observer-state.json

Needs only Python 3.11+, `cryptography` and `rfc8785` (pip install cryptography rfc8785).
It downloads the whole log (/v1/observer/export), the keys and every checkpoint, then checks:

- the chain: sequences 1, 2, 3... with no gap, each prev_hash the previous content_hash (64
  zeros first), each content_hash the SHA-256 of the RFC 8785 form of the event's content;
- the signatures: the agent's Ed25519 signature of the digest and the witness's of digest +
  signature, each by a key of the right kind and owner, active at the event's local time,
  and announced in the log itself (keys.bootstrapped / key.registered / key.rotated) with
  the same public key the key list gives;
- the checkpoints: signed by a checkpoint key and co-signed by at least one witness over the
  RFC 8785 form of {tree_size, root_hash, timestamp}; each root equal to the RFC 6962 Merkle
  root this script computes itself from the downloaded events; each consistent with the
  checkpoint before it (a consistency proof from the server, verified here);
- inclusion: audit paths from the server for a sample of events, verified against the latest
  checkpoint's root;
- the past: with --state, the checkpoint kept from the previous run must be extended by
  today's log (consistency proof from it to the latest checkpoint); the latest is then kept.

Exits 0 when everything holds, 1 with the first problem otherwise, 2 when the server cannot
be read. Deliberately one self-contained file: it shares no code with the server it checks
(its Merkle and signature checks are its own), so copying it is all an outsider needs.
"""

import argparse
import hashlib
import json
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
KEY_EVENTS = ("keys.bootstrapped", "key.registered", "key.rotated")


class Problem(Exception):
    """The log does not hold up."""


class Server:
    def __init__(self, base: str, timeout: float) -> None:
        if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
            raise ValueError(f"--server must be an http:// or https:// URL, not {base!r}")
        self.base = base.rstrip("/")
        self.timeout = timeout

    def _open(self, path: str, params: dict[str, Any] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"{self.base}{path}{query}"  # http(s) only: checked in __init__
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310

    def get(self, path: str, **params: Any) -> Any:
        with self._open(path, params) as response:
            return json.load(response)

    def lines(self, path: str) -> Iterator[dict[str, Any]]:
        with self._open(path) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


# RFC 6962 / RFC 9162.


def leaf_hash(content_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(content_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleRoot:
    """The Merkle tree hash of the leaves pushed so far, in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[tuple[int, bytes]] = []

    def push(self, leaf: bytes) -> None:
        height, digest = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            digest = node_hash(self.stack.pop()[1], digest)
            height += 1
        self.stack.append((height, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return hashlib.sha256(b"").digest()
        digest = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def inclusion_holds(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and digest == root


def consistency_holds(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 1 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# Signatures and keys.


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def signature_holds(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Keys:
    """The server's key list, trusted only for keys the log itself announced."""

    def __init__(self, listed: list[dict[str, Any]]) -> None:
        self.listed = {key["key_id"]: key for key in listed}
        self.announced: dict[str, str] = {}

    def announce(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if event["event_type"] == "keys.bootstrapped" and event["sequence"] == 1:
            for key in payload["keys"]:
                self.announced[key["key_id"]] = key["public_key"]
        elif event["event_type"] in ("key.registered", "key.rotated"):
            if event["event_type"] == "key.rotated":
                retiring = self.announced.get(payload["retired_key_id"])
                if retiring is None or not signature_holds(
                    retiring, payload["endorsement"], bytes.fromhex(payload["public_key"])
                ):
                    raise Problem(f"event {event['sequence']}: rotation not endorsed")
            self.announced[payload["key_id"]] = payload["public_key"]

    def check(self, key_id: str, *, kind: str, owner: str | None, at: datetime) -> str:
        """The public key (hex) of `key_id` if it may sign as `kind` for `owner` at `at`."""
        key = self.listed.get(key_id)
        if key is None or key["kind"] != kind or (owner is not None and key["owner"] != owner):
            raise Problem(f"{key_id} is not a {kind} key of {owner or 'the log'}")
        if self.announced.get(key_id) != key["public_key"]:
            raise Problem(f"{key_id} was never announced in the log with that public key")
        if not (
            when(key["active_from"]) <= at
            and (key["active_until"] is None or at < when(key["active_until"]))
        ):
            raise Problem(f"{key_id} was not active at {at.isoformat()}")
        return key["public_key"]


CONTENT_FIELDS = (
    "schema_version", "sequence", "event_type", "payload", "agent_id", "signing_key_id",
    "signing_mode", "local_timestamp", "prev_hash",
)  # fmt: skip


def check_event(event: dict[str, Any], expected: int, prev_hash: str, keys: Keys) -> None:
    sequence = event.get("sequence")
    if sequence != expected:
        raise Problem(f"expected sequence {expected}, got {sequence}")
    if event["prev_hash"] != (prev_hash):
        raise Problem(f"event {sequence}: prev_hash does not link to event {sequence - 1}")
    digest = hashlib.sha256(rfc8785.dumps({f: event[f] for f in CONTENT_FIELDS})).digest()
    if digest.hex() != event["content_hash"]:
        raise Problem(f"event {sequence}: content_hash is not the hash of its content")
    if sequence == 1 or event["event_type"] in KEY_EVENTS:
        keys.announce(event)  # a key may sign the very event that registers it
    at = when(event["local_timestamp"])
    agent = keys.check(event["signing_key_id"], kind="agent", owner=event["agent_id"], at=at)
    if not signature_holds(agent, event["signature"], digest):
        raise Problem(f"event {sequence}: agent signature does not verify")
    if event["witness_id"] == event["agent_id"]:
        raise Problem(f"event {sequence}: the agent witnessed itself")
    witness = keys.check(event["witness_key_id"], kind="witness", owner=event["witness_id"], at=at)
    message = digest + bytes.fromhex(event["signature"])
    if not signature_holds(witness, event["witness_signature"], message):
        raise Problem(f"event {sequence}: witness signature does not verify")


def check_checkpoint_signatures(checkpoint: dict[str, Any], keys: Keys) -> None:
    size = checkpoint["tree_size"]
    message = rfc8785.dumps({k: checkpoint[k] for k in ("tree_size", "root_hash", "timestamp")})
    at = when(checkpoint["timestamp"])
    public = keys.check(checkpoint["key_id"], kind="checkpoint", owner=None, at=at)
    if not signature_holds(public, checkpoint["signature"], message):
        raise Problem(f"checkpoint {size}: signature does not verify")
    cosignatures = checkpoint.get("cosignatures") or []
    if not cosignatures:
        raise Problem(f"checkpoint {size}: no witness co-signed it")
    for cosignature in cosignatures:
        witness = keys.check(
            cosignature["key_id"], kind="witness", owner=cosignature["witness_id"], at=at
        )
        if not signature_holds(witness, cosignature["signature"], message):
            raise Problem(f"checkpoint {size}: co-signature by {cosignature['key_id']} fails")


def all_checkpoints(server: Server) -> list[dict[str, Any]]:
    checkpoints: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = server.get("/v1/observer/checkpoints", after_tree_size=after, limit=1000)
        checkpoints += page["checkpoints"]
        after = page["next_after_tree_size"]
    return checkpoints


def prove_consistency(server: Server, old: dict[str, Any], new: dict[str, Any]) -> int:
    first, second = old["tree_size"], new["tree_size"]
    if first > second:
        raise Problem(f"the log shrank: checkpoint {first} is followed by {second}")
    body = server.get("/v1/observer/proofs/consistency", first=first, second=second)
    proof = [bytes.fromhex(h) for h in body["proof"]]
    if not consistency_holds(
        first, second, bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]), proof
    ):
        raise Problem(f"tree {second} does not extend tree {first}: the past was rewritten")
    return len(proof)


def check_log(
    server: Server, keys: Keys, checkpoints: list[dict[str, Any]], sample: set[int]
) -> tuple[int, dict[int, bytes]]:
    """Checks every event, and each checkpoint's root against the tree computed here; returns
    the log's size and the leaf hashes of the sampled events."""
    wanted = {checkpoint["tree_size"]: checkpoint["root_hash"] for checkpoint in checkpoints}
    tree, prev_hash, kept = MerkleRoot(), GENESIS, {}
    for event in server.lines("/v1/observer/export"):
        check_event(event, tree.size + 1, prev_hash, keys)
        prev_hash = event["content_hash"]
        leaf = leaf_hash(event["content_hash"])
        if event["sequence"] in sample:
            kept[event["sequence"]] = leaf
        tree.push(leaf)
        if tree.size in wanted and tree.root().hex() != wanted[tree.size]:
            raise Problem(f"checkpoint {tree.size}: its root is not the root of the log")
    served = server.get("/v1/observer/roots", tree_size=tree.size)["root_hash"]
    if served != tree.root().hex():
        raise Problem(f"/v1/observer/roots says {served} for {tree.size} events, not ours")
    return tree.size, kept


def check_inclusion(server: Server, latest: dict[str, Any], leaves: dict[int, bytes]) -> None:
    size, root = latest["tree_size"], bytes.fromhex(latest["root_hash"])
    for sequence, leaf in sorted(leaves.items()):
        body = server.get("/v1/observer/proofs/inclusion", sequence=sequence, tree_size=size)
        path = [bytes.fromhex(h) for h in body["audit_path"]]
        if not inclusion_holds(sequence - 1, size, leaf, path, root):
            raise Problem(f"event {sequence}: its inclusion proof does not verify")


def observe(server: Server, state: Path | None, samples: int, say: Any) -> None:
    keys = Keys(server.get("/v1/observer/keys")["keys"])
    checkpoints = all_checkpoints(server)
    latest = checkpoints[-1] if checkpoints else None
    top = latest["tree_size"] if latest else 0
    sample = set(random.sample(range(1, top + 1), min(samples, top)))
    size, leaves = check_log(server, keys, checkpoints, sample)
    say(f"chain: {size} events verified (hashes, links, agent and witness signatures)")
    if latest is None:
        say("checkpoints: none signed yet")
        return
    if top > size or any(c["tree_size"] not in range(1, size + 1) for c in checkpoints):
        raise Problem(f"a checkpoint lies beyond the {size} events served")
    for checkpoint in checkpoints:
        check_checkpoint_signatures(checkpoint, keys)
    for old, new in zip(checkpoints, checkpoints[1:], strict=False):
        prove_consistency(server, old, new)
    say(
        f"checkpoints: {len(checkpoints)} signed, co-signed, matching our roots and consistent "
        f"with each other (latest: tree {top})"
    )
    check_inclusion(server, latest, leaves)
    say(f"inclusion: {len(leaves)} sampled events proven in tree {top}")
    if state is None:
        return
    if state.exists():
        kept = json.loads(state.read_text())
        check_checkpoint_signatures(kept, keys)
        hashes = prove_consistency(server, kept, latest)
        say(
            f"consistency: today's tree {top} extends the kept tree {kept['tree_size']} "
            f"({hashes} hashes)"
        )
    state.write_text(json.dumps(latest, indent=2) + "\n")
    say(f"kept checkpoint {top} in {state}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="base URL, e.g. https://hub.example.com")
    parser.add_argument("--state", type=Path, help="file keeping the last checkpoint seen")
    parser.add_argument("--samples", type=int, default=16, help="inclusion proofs to check")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    try:
        server = Server(args.server, args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        observe(server, args.state, max(args.samples, 0), print)
    except Problem as problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, IndexError,
            AttributeError, RecursionError) as exc:  # fmt: skip
        # Answers of the wrong shape (an event that is not an object, a time that is not
        # text, JSON nested deeper than Python reads) are unreadable, not a verdict.
        print(f"cannot read the server's answers: {exc!r}", file=sys.stderr)
        return 2
    print("OK: the log holds up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
