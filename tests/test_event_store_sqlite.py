"""The quick start's SQLite event store is append-only and chained too."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events.models import EventQueueEntry
from events.services import event_append, key_rotate
from events.verification import verify_chain
from tests import independent_verifier
from tests.conftest import clean_env, run_manage

pytestmark = [pytest.mark.quickstart, pytest.mark.django_db]


def refused(statement: str, params=()) -> str:
    with pytest.raises(DatabaseError) as failure, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
    return str(failure.value)


@pytest.fixture
def log(system_keys):
    assert connection.vendor == "sqlite"
    for n in range(3):
        event_append(event_type="order.created", payload={"n": n})


def test_sqlite__appends_verify(log, api_client):
    events = api_client.get("/v1/observer/events").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]

    assert verify_chain().ok
    assert independent_verifier.verify(events, keys) == []


def test_sqlite__rotation__verifies(log, system_keys):
    key_rotate(key_id=next(k.key_id for k in system_keys if k.kind == "agent"))
    event_append(event_type="order.created", payload={"after": "rotation"})

    assert verify_chain().ok


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE events SET payload = '{}' WHERE sequence = 1", "append-only"),
        ("DELETE FROM events WHERE sequence = 1", "append-only"),
        ("DELETE FROM agent_keys", "never deleted"),
        ("UPDATE agent_keys SET public_key = x'00'", "may only gain an active_until"),
        ("UPDATE event_queue SET payload = '{}'", "only gains a sequence or a rejection"),
    ],
)
def test_sqlite__tampering__refused_by_triggers(log, statement, message):
    assert message in refused(statement)


def test_sqlite__pending_queue_entry_deleted__refused(log):
    EventQueueEntry.objects.create(
        event_type="order.created", payload="{}", agent_id="a", local_timestamp=timezone.now()
    )

    assert "pending queued event cannot be deleted" in refused(
        "DELETE FROM event_queue WHERE processed_at IS NULL"
    )


def test_sqlite__insert_breaking_the_chain__refused(log):
    message = refused(
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "
        "signing_mode, local_timestamp, authority_timestamp, prev_hash, content_hash, "
        "signature, witness_id, witness_key_id, witness_signature, schema_version) "
        "SELECT sequence + 5, event_type, payload, agent_id, signing_key_id, signing_mode, "
        "local_timestamp, strftime('%Y-%m-%d %H:%M:%f', 'now'), content_hash, content_hash, "
        "signature, witness_id, witness_key_id, witness_signature, 1 "
        "FROM events ORDER BY sequence DESC LIMIT 1"
    )

    assert "hash chain" in message


def test_sqlite__client_chosen_authority_timestamp__refused(log):
    message = refused(
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "
        "signing_mode, local_timestamp, authority_timestamp, prev_hash, content_hash, "
        "signature, witness_id, witness_key_id, witness_signature, schema_version) "
        "SELECT sequence + 1, event_type, payload, agent_id, signing_key_id, signing_mode, "
        "local_timestamp, '2000-01-01 00:00:00', content_hash, content_hash, "
        "signature, witness_id, witness_key_id, witness_signature, 1 "
        "FROM events ORDER BY sequence DESC LIMIT 1"
    )

    assert "authority_timestamp is set by the database" in message


def test_sqlite__migrations_reverse_and_reapply(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path),
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
    )
    steps = [["migrate"], ["keys", "bootstrap"], ["migrate", "events", "zero"], ["migrate"],
             ["keys", "bootstrap"], ["verify_chain", "--full"]]  # fmt: skip
    results = [run_manage(*step, env=env) for step in steps]

    assert [r.returncode for r in results] == [0] * len(steps), [r.stderr for r in results]
    assert "chain verified: 1 events" in results[-1].stdout


def test_sqlite__checkpoint_proofs_and_anchor(log, api_client):
    from conclave.preoperational import Report, _checkpoint_anchors
    from events import merkle
    from events.services import checkpoint_create

    checkpoint = checkpoint_create()
    size = checkpoint.tree_size
    root = bytes.fromhex(api_client.get(f"/v1/observer/roots?tree_size={size}").json()["root_hash"])
    body = api_client.get(f"/v1/observer/proofs/inclusion?sequence=2&tree_size={size}").json()
    leaf = merkle.leaf_hash(
        bytes.fromhex(api_client.get("/v1/observer/events/2").json()["content_hash"])
    )

    assert root.hex() == checkpoint.root_hash
    assert merkle.verify_inclusion(
        1, size, leaf, [bytes.fromhex(h) for h in body["audit_path"]], root
    )
    assert _checkpoint_anchors(Report()).ok
    assert "append-only" in refused("UPDATE checkpoints SET root_hash = 'x'")
    assert "append-only" in refused("DELETE FROM checkpoint_cosignatures")
