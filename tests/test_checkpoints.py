"""Checkpoints, the stored Merkle tree and the proof endpoints (SPEC 3.6), on PostgreSQL."""

import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from conclave.exceptions import Halted
from conclave.halt import forget_halt_status
from conclave.models import HaltState
from conclave.preoperational import preoperational_verify
from conclave.services import halt_raise
from events import merkle, tree
from events.models import AgentKey, Checkpoint, CheckpointCosignature, Event, MerkleTile
from events.services import CHECKPOINT_EVENT, checkpoint_create, event_append, key_register
from events.verification import verify_chain
from tests.test_halt import register_keeper
from tests.test_merkle import Reference, verify_consistency, verify_inclusion

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(system_keys):
    for n in range(299):
        event_append(event_type="order.created", payload={"n": n})
    return 300  # events, with the bootstrap


@pytest.fixture
def keepers(log):
    """Enough keepers for pre-operational verification to pass, registered before the log
    above is checkpointed."""
    return [register_keeper(name) for name in ("alice", "bob")]


def leaves() -> list[bytes]:
    return [
        merkle.leaf_hash(bytes.fromhex(h))
        for h in Event.objects.order_by("sequence").values_list("content_hash", flat=True)
    ]


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def rewrite_past(sequence: int) -> None:
    """Changes one event behind the triggers, keeping the chain linked to its successor."""
    forged = "ab" * 32
    sql("SET LOCAL session_replication_role = replica")
    sql("UPDATE events SET content_hash = %s WHERE sequence = %s", [forged, sequence])
    sql("UPDATE events SET prev_hash = %s WHERE sequence = %s", [forged, sequence + 1])
    sql("SET LOCAL session_replication_role = origin")


# --- The stored tree --------------------------------------------------------------------------


def test_tree_extend__in_steps__same_tiles_roots_and_proofs_as_the_reference(log):
    # Given the tree grown in uneven steps
    for size in (1, 2, 255, 256, 257, 299):
        assert tree.tree_extend(size) == size
    assert tree.tree_extend() == log
    ref = Reference(leaves())

    # Then every root matches the reference and the recomputation from events
    for size in range(1, log + 1):
        assert tree.tree_root(size) == ref.mth(0, size)
    assert tree.root_from_events(log) == ref.mth(0, log)
    assert tree.root_from_events(137) == ref.mth(0, 137)
    # ...and proofs too (a sample: every size and leaf is tests/test_merkle.py's job)
    for index, size in ((0, 1), (0, 300), (255, 256), (256, 257), (299, 300), (17, 130)):
        assert tree.tree_inclusion_proof(index + 1, size) == ref.path(index, 0, size)
    for first, size in ((1, 300), (256, 300), (257, 300), (299, 300), (300, 300), (5, 9)):
        assert tree.tree_consistency_proof(first, size) == ref.subproof(first, 0, size, True)
    # Two tiles on level 0 (one full), one on level 1.
    assert sorted(MerkleTile.objects.values_list("level", "index")) == [(0, 0), (0, 1), (1, 0)]


def test_tree_extend__called_twice__adds_each_event_once(log):
    tree.tree_extend()
    tree.tree_extend()

    assert tree.stored_size() == log
    assert (
        sum(len(t) for t in MerkleTile.objects.filter(level=0).values_list("hashes", flat=True))
        == 32 * log
    )


def test_proof__beyond_the_stored_tree__extends_it_first(log):
    tree.tree_extend(10)

    proof = tree.tree_inclusion_proof(250, 300)

    assert tree.stored_size() == 300
    assert proof == Reference(leaves()).path(249, 0, 300)


# --- Checkpoints ------------------------------------------------------------------------------


def test_checkpoint_create__signed_by_checkpoint_key_and_cosigned_by_every_witness(log):
    # Given a second witness
    second = key_register(kind="witness", owner="WITNESS:B")
    head = Event.objects.count()

    checkpoint = checkpoint_create()

    # Then the tree head covers the whole log, the checkpoint key's registration included
    assert checkpoint.tree_size == head + 1
    assert checkpoint.root_hash == Reference(leaves()[: head + 1]).mth(0, head + 1).hex()
    message = rfc8785.dumps(
        {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "timestamp": checkpoint.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )
    key = AgentKey.objects.get(key_id=checkpoint.key_id)
    assert key.kind == "checkpoint"
    Ed25519PublicKey.from_public_bytes(bytes(key.public_key)).verify(
        bytes.fromhex(checkpoint.signature), message
    )
    cosignatures = list(checkpoint.cosignatures.all())
    assert {c.key_id for c in cosignatures} == set(
        AgentKey.objects.filter(kind="witness").values_list("key_id", flat=True)
    )
    assert second.key_id in {c.key_id for c in cosignatures}
    for cosignature in cosignatures:
        witness = AgentKey.objects.get(key_id=cosignature.key_id)
        Ed25519PublicKey.from_public_bytes(bytes(witness.public_key)).verify(
            bytes.fromhex(cosignature.signature), message
        )
    # ...registering its key and the checkpoint itself are events
    event = Event.objects.filter(event_type=CHECKPOINT_EVENT).get()
    assert event.payload["tree_size"] == checkpoint.tree_size
    assert event.payload["root_hash"] == checkpoint.root_hash
    assert len(event.payload["cosignatures"]) == 2
    assert Event.objects.filter(event_type="key.registered", payload__kind="checkpoint").exists()


def test_checkpoint_create__nothing_new_but_checkpoints__makes_none_unless_forced(log):
    first = checkpoint_create()

    assert checkpoint_create() is None
    forced = checkpoint_create(force=True)

    assert forced.tree_size > first.tree_size
    assert Checkpoint.objects.count() == 2


def test_checkpoint_create__halted__refused_and_nothing_stored(log):
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()  # as the halt's commit would

    with pytest.raises(Halted):
        checkpoint_create()

    assert not Checkpoint.objects.exists()


def test_checkpoint_create__log_tampered_since_last__refused_and_halts(log):
    sql("SET LOCAL session_replication_role = replica")
    sql("UPDATE events SET payload = '{\"n\": -1}' WHERE sequence = 5")
    sql("SET LOCAL session_replication_role = origin")

    with pytest.raises(Exception, match="does not verify at sequence 5"):
        checkpoint_create()

    assert not Checkpoint.objects.exists()
    assert HaltState.objects.get().is_halted


def test_checkpoints__append_only_in_the_database(log):
    checkpoint = checkpoint_create()

    for statement in (
        "UPDATE checkpoints SET root_hash = repeat('0', 64)",
        "DELETE FROM checkpoint_cosignatures",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints CASCADE",
    ):
        with pytest.raises(DatabaseError, match="append-only|never be truncated"):
            with transaction.atomic():
                sql("SET CONSTRAINTS ALL IMMEDIATE")
                sql(statement)
    assert Checkpoint.objects.get().root_hash == checkpoint.root_hash
    assert CheckpointCosignature.objects.count() == 1


def test_checkpoint_command__prints_the_checkpoint(log, capsys):
    call_command("checkpoint")

    printed = json.loads(capsys.readouterr().out)
    assert printed["tree_size"] == log + 1
    assert set(printed) == {
        "tree_size", "root_hash", "timestamp", "key_id", "signature", "cosignatures",
    }  # fmt: skip


def test_checkpoint_task__signs_on_schedule(log, settings):
    from events.tasks import checkpoint

    assert settings.CELERY_BEAT_SCHEDULE["checkpoint"]["task"] == "events.tasks.checkpoint"

    assert checkpoint.apply().get() == log + 1
    event_append(event_type="order.created", payload={"late": True})
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()  # as the halt's commit would
    assert checkpoint.apply().get() is None
    assert Checkpoint.objects.count() == 1


# --- Start-up anchor --------------------------------------------------------------------------


def test_preoperational__rewritten_past__caught_by_the_checkpoint_anchor_and_halts(keepers):
    # Given a checkpoint, and everything up to it verified (incremental checks start after it)
    checkpoint_create()
    assert preoperational_verify().ok
    for n in range(3):
        event_append(event_type="order.created", payload={"after": n})

    # When one event before the checkpoint is rewritten behind the triggers
    rewrite_past(42)

    # Then the chain check alone, incremental as it is, would not see it...
    verified_prefix = Event.objects.count() - 3
    assert verify_chain(from_sequence=verified_prefix).ok
    # ...but the anchor does, names the event, and halts
    report = preoperational_verify()
    assert not report.ok
    assert report.failure.startswith("checkpoint_anchors:")
    assert "first changed event: 42" in report.failure
    state = HaltState.objects.get()
    assert (state.is_halted, state.channel) == (True, "automatic")


def test_preoperational__clean__anchored_and_chain_checked_after_the_checkpoint(keepers):
    checkpoint = checkpoint_create()
    event_append(event_type="order.created", payload={"late": True})

    report = preoperational_verify()

    checks = {check.name: check for check in report.checks}
    assert checks["checkpoint_anchors"].ok
    assert f"match checkpoint {checkpoint.tree_size}" in checks["checkpoint_anchors"].detail
    assert checks["hash_chain"].detail.endswith(f"from sequence {checkpoint.tree_size + 1}")


def test_preoperational__forged_checkpoint_row__fails(keepers):
    checkpoint = checkpoint_create()
    sql("SET LOCAL session_replication_role = replica")
    sql("UPDATE checkpoints SET root_hash = %s WHERE id = %s", ["cd" * 32, checkpoint.id])
    sql("SET LOCAL session_replication_role = origin")

    report = preoperational_verify()

    assert "checkpoint signature by" in report.failure
    assert HaltState.objects.get().is_halted


# --- verify_chain --checkpoint ----------------------------------------------------------------


def test_verify_chain__kept_checkpoint__consistent_with_today(log, tmp_path, capsys, api_client):
    checkpoint_create()
    kept = tmp_path / "checkpoint.json"
    kept.write_text(api_client.get("/v1/observer/checkpoints/latest").content.decode())
    for n in range(20):
        event_append(event_type="order.created", payload={"later": n})

    call_command("verify_chain", "--checkpoint", str(kept))

    out = capsys.readouterr().out
    assert f"tree {log + 1} " in out and f"extends to {Event.objects.count()} events" in out


def test_verify_chain__kept_checkpoint_not_ours__refused_without_halting(log, tmp_path):
    checkpoint_create()
    data = json.loads(json.dumps(Checkpoint.objects.get().__dict__, default=str))
    forged = {
        "tree_size": data["tree_size"],
        "root_hash": "00" * 32,
        "timestamp": Checkpoint.objects.get().timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "key_id": data["key_id"],
        "signature": data["signature"],
        "cosignatures": [],
    }
    kept = tmp_path / "forged.json"
    kept.write_text(json.dumps(forged))

    with pytest.raises(CommandError, match="not a checkpoint this log signed"):
        call_command("verify_chain", "--checkpoint", str(kept))

    assert not HaltState.objects.get().is_halted


def test_verify_chain__kept_checkpoint__past_rewritten__fails_and_halts(log, tmp_path, api_client):
    checkpoint_create()
    kept = tmp_path / "checkpoint.json"
    kept.write_text(api_client.get("/v1/observer/checkpoints/latest").content.decode())
    rewrite_past(7)

    with pytest.raises(CommandError, match=r"no longer hash to checkpoint \d+'s signed root"):
        call_command("verify_chain", "--checkpoint", str(kept))

    assert HaltState.objects.get().is_halted


# --- Observer endpoints -----------------------------------------------------------------------


def test_latest_checkpoint__none_yet__404(api_client, log):
    response = api_client.get("/v1/observer/checkpoints/latest")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_latest_checkpoint__shape_of_spec_3_6(api_client, log):
    checkpoint = checkpoint_create()

    body = api_client.get("/v1/observer/checkpoints/latest").json()

    assert {k: body[k] for k in ("tree_size", "root_hash", "key_id", "signature")} == {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }
    assert body["timestamp"].endswith("Z")
    assert body["cosignatures"][0]["witness_id"] == "SYSTEM:WITNESS"


def test_checkpoint_list__pages_in_tree_order(api_client, log):
    sizes = [checkpoint_create(force=True).tree_size for _ in range(3)]

    first = api_client.get("/v1/observer/checkpoints?limit=2").json()
    rest = api_client.get(
        f"/v1/observer/checkpoints?after_tree_size={first['next_after_tree_size']}"
    ).json()

    assert [c["tree_size"] for c in first["checkpoints"] + rest["checkpoints"]] == sizes
    assert rest["next_after_tree_size"] is None


def test_proofs__verify_against_the_served_roots(api_client, log):
    ref_leaves = leaves()
    for sequence, size in ((1, 1), (1, 300), (200, 300), (300, 300), (77, 128)):
        root = bytes.fromhex(
            api_client.get(f"/v1/observer/roots?tree_size={size}").json()["root_hash"]
        )
        response = api_client.get(
            f"/v1/observer/proofs/inclusion?sequence={sequence}&tree_size={size}"
        )
        body = response.json()
        assert set(body) == {"leaf_index", "tree_size", "audit_path"}
        assert (body["leaf_index"], body["tree_size"]) == (sequence - 1, size)
        path = [bytes.fromhex(h) for h in body["audit_path"]]
        assert verify_inclusion(sequence - 1, size, ref_leaves[sequence - 1], path, root)
        assert "immutable" in response["Cache-Control"]
    roots = {}
    for first, second in ((1, 300), (64, 300), (100, 101), (300, 300)):
        for n in (first, second):
            roots[n] = bytes.fromhex(
                api_client.get(f"/v1/observer/roots?tree_size={n}").json()["root_hash"]
            )
        body = api_client.get(
            f"/v1/observer/proofs/consistency?first={first}&second={second}"
        ).json()
        assert set(body) == {"first", "second", "proof"}
        proof = [bytes.fromhex(h) for h in body["proof"]]
        assert verify_consistency(first, second, roots[first], roots[second], proof)


def test_roots__size_zero_is_the_empty_tree(api_client, log):
    body = api_client.get("/v1/observer/roots?tree_size=0").json()

    assert body == {"tree_size": 0, "root_hash": merkle.EMPTY_ROOT.hex()}


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/observer/roots?tree_size=301", "tree_size"),
        ("/v1/observer/roots?tree_size=-1", "tree_size"),
        ("/v1/observer/roots", "tree_size"),
        ("/v1/observer/roots?tree_size=abc", "tree_size"),
        ("/v1/observer/proofs/inclusion?sequence=5&tree_size=301", "tree_size"),
        ("/v1/observer/proofs/inclusion?sequence=6&tree_size=5", "tree_size"),
        ("/v1/observer/proofs/inclusion?sequence=0&tree_size=5", "sequence"),
        ("/v1/observer/proofs/inclusion?tree_size=5", "sequence"),
        ("/v1/observer/proofs/consistency?first=5&second=301", "second"),
        ("/v1/observer/proofs/consistency?first=6&second=5", "first"),
        ("/v1/observer/proofs/consistency?first=0&second=5", "first"),
        ("/v1/observer/proofs/consistency?first=1&second=5&extra=1", "extra"),
        ("/v1/observer/checkpoints?limit=0", "limit"),
    ],
)
def test_proofs__out_of_range__clear_400(api_client, log, url, field):
    response = api_client.get(url)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "validation_error"
    assert field in body["detail"]


def test_constitutional_health__reports_the_latest_checkpoint(api_client, log):
    assert api_client.get("/v1/health/constitutional").json()["latest_checkpoint"] is None

    checkpoint = checkpoint_create()

    body = api_client.get("/v1/health/constitutional").json()
    assert body["latest_checkpoint"]["tree_size"] == checkpoint.tree_size
    assert body["latest_checkpoint"]["timestamp"].endswith("Z")


def test_preoperational__event_removed_before_the_checkpoint__fails_and_halts(keepers):
    checkpoint_create()
    sql("SET LOCAL session_replication_role = replica")
    sql("DELETE FROM events WHERE sequence = 10")
    sql("SET LOCAL session_replication_role = origin")

    report = preoperational_verify()

    assert report.failure.startswith("checkpoint_anchors:")
    assert "event 10 is missing" in report.failure
    assert HaltState.objects.get().is_halted
