"""The event store on PostgreSQL: appends, database-enforced invariants, the runbook's SQL."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from conclave.exceptions import Conflict, ValidationFailed
from events import crypto
from events.models import AgentKey, ClockDriftWarning, Event, KeeperKey
from events.services import (
    EventDraft,
    event_append,
    event_append_batch,
    key_register,
    key_rotate,
    keys_bootstrap,
)
from tests import independent_verifier

pytestmark = pytest.mark.django_db


def sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def refused(statement: str, params=None) -> str:
    """Runs a statement that must fail, in a savepoint, and returns the database's message."""
    with pytest.raises(DatabaseError) as failure, transaction.atomic():
        sql(statement, params)
    return str(failure.value)


def observer_view(api_client) -> tuple[list[dict], list[dict]]:
    events = api_client.get("/v1/observer/events?limit=1000").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]
    return events, keys


# --- Appends -------------------------------------------------------------------------------------


def test_event_append__chain__links_sequences_and_hashes(system_keys):
    genesis = Event.objects.get()

    second = event_append(event_type="order.created", payload={"vin": "TEST123456789"}).wait()
    third = event_append(event_type="order.created", payload={"vin": "TESTADMIN123456"}).wait()

    assert (genesis.sequence, genesis.event_type) == (1, "keys.bootstrapped")
    assert genesis.prev_hash == "0" * 64
    assert (second.sequence, second.prev_hash) == (2, genesis.content_hash)
    assert (third.sequence, third.prev_hash) == (3, second.content_hash)


def test_event_append__observer_copy__verifies_with_independent_verifier(system_keys, api_client):
    for n in range(5):
        event_append(event_type="order.created", payload={"n": n, "note": "Ünïcode ✓", "x": 1.5})

    events, keys = observer_view(api_client)

    assert len(events) == 6
    assert independent_verifier.verify(events, keys) == []


def test_independent_verifier__tampered_copy__detected(system_keys, api_client):
    event_append(event_type="order.created", payload={"vin": "TEST123456789"})
    events, keys = observer_view(api_client)

    events[1]["payload"]["vin"] = "TEST000000000"

    assert any("content_hash" in problem for problem in independent_verifier.verify(events, keys))


def test_event_append__authority_timestamp__database_clock(system_keys):
    before = timezone.now()
    event = event_append(event_type="order.created", payload={}).wait()
    stored = Event.objects.get(sequence=event.sequence)

    assert before - timedelta(seconds=1) <= stored.authority_timestamp <= timezone.now()


def test_event_append__caller_rolls_back__no_event_and_no_gap(system_keys):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_append(event_type="order.created", payload={"n": 1})
        raise RuntimeError("the state change failed")

    after = event_append(event_type="order.created", payload={"n": 2}).wait()

    assert after.sequence == 2
    assert Event.objects.count() == 2


@pytest.mark.parametrize("payload", [{"bad": float("nan")}, {"bad": object()}])
def test_event_append__payload_not_canonical_json__validation_error(system_keys, payload):
    with pytest.raises(ValidationFailed):
        event_append(event_type="order.created", payload=payload)

    assert Event.objects.count() == 1


def test_event_append__no_keys__conflict_naming_the_command_that_registers_them(db):
    """A fresh database before `keys bootstrap` (a write tried straight after `migrate`):
    the refusal says what to run, not only what is missing (whichever check refuses it: the
    append's, or the inline integrator's when the append's answer for the writer is cached)."""
    with pytest.raises(Conflict, match="no agent key") as refused:
        event_append(event_type="order.created", payload={})

    assert str(refused.value).endswith(
        " No key is registered yet: `manage.py keys bootstrap` registers the system's first"
        " agent and witness keys."
    )
    assert not Event.objects.exists()


def test_witness__rotates_among_active_witnesses(system_keys):
    key_register(kind="witness", owner="SYSTEM:WITNESS_2")
    witnesses = {
        event_append(event_type="order.created", payload={"n": n}).wait().witness_id
        for n in range(4)
    }

    assert witnesses == {"SYSTEM:WITNESS", "SYSTEM:WITNESS_2"}


def test_keys_bootstrap__second_time__nothing_new(system_keys):
    assert keys_bootstrap() == []
    assert AgentKey.objects.count() == 2


# --- Rotation ------------------------------------------------------------------------------------


def test_key_rotate__events_before_and_after__verify(system_keys, api_client):
    agent = next(key for key in system_keys if key.kind == "agent")
    event_append(event_type="order.created", payload={"n": 1})

    successor = key_rotate(key_id=agent.key_id)
    after = event_append(event_type="order.created", payload={"n": 2}).wait()

    agent.refresh_from_db()
    assert agent.active_until is not None
    assert after.signing_key_id == successor.key_id
    events, keys = observer_view(api_client)
    assert independent_verifier.verify(events, keys) == []


def test_key_rotate__retired_key__rejected_for_new_events(system_keys):
    agent = next(key for key in system_keys if key.kind == "agent")
    key_rotate(key_id=agent.key_id)
    head = Event.objects.order_by("-sequence").first()

    message = refused(
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "
        "signing_mode, local_timestamp, authority_timestamp, prev_hash, content_hash, signature, "
        "witness_id, witness_key_id, witness_signature, schema_version) VALUES "
        "(%s, 'x', '{}', %s, %s, 'DEVELOPMENT', clock_timestamp(), clock_timestamp(), %s, %s, %s, 'SYSTEM:WITNESS', "
        "%s, %s, 1)",
        [
            head.sequence + 1,
            agent.agent_id,
            agent.key_id,
            head.content_hash,
            "a" * 64,
            "b" * 128,
            head.witness_key_id,
            "c" * 128,
        ],
    )

    assert "is not an agent key" in message


def test_key_rotate__twice__conflict(system_keys):
    agent = next(key for key in system_keys if key.kind == "agent")
    key_rotate(key_id=agent.key_id)

    with pytest.raises(Conflict, match="already retired"):
        key_rotate(key_id=agent.key_id)


# --- Database-enforced invariants ----------------------------------------------------------------


def test_events__update__refused_by_trigger(system_keys):
    assert "append-only" in refused("UPDATE events SET payload = '{}' WHERE sequence = 1")


def test_events__delete__refused_by_trigger(system_keys):
    assert "append-only" in refused("DELETE FROM events WHERE sequence = 1")


@pytest.mark.parametrize("table", ["events", "agent_keys", "keeper_keys"])
def test_truncate__refused_even_for_owner(system_keys, table):
    assert "never be truncated" in refused(f"TRUNCATE {table} CASCADE")


def test_orm_update_and_delete__refused(system_keys):
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(sequence=1).update(event_type="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(sequence=1).delete()


def test_keys__delete__refused(system_keys):
    assert "never deleted" in refused("DELETE FROM agent_keys")


def test_keys__public_key_changed__refused(system_keys):
    message = refused("UPDATE agent_keys SET public_key = %s", [bytes(32)])

    assert "may only gain an active_until" in message


def test_keeper_keys__delete__refused(db):
    KeeperKey.objects.create(
        keeper_id="KEEPER:alice",
        key_id="keeper-1",
        public_key=bytes(32),
        active_from=timezone.now(),
    )

    assert "never deleted" in refused("DELETE FROM keeper_keys")


def _insert_after_head(**overrides) -> str:
    head = Event.objects.order_by("-sequence").first()
    row = {
        "sequence": head.sequence + 1,
        "agent_id": head.agent_id,
        "signing_key_id": head.signing_key_id,
        "prev_hash": head.content_hash,
        "content_hash": "a" * 64,
        "signature": "b" * 128,
        "witness_id": head.witness_id,
        "witness_key_id": head.witness_key_id,
        "witness_signature": "c" * 128,
        **overrides,
    }
    return refused(
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "
        "signing_mode, local_timestamp, authority_timestamp, prev_hash, content_hash, signature, "
        "witness_id, witness_key_id, witness_signature, schema_version) VALUES "
        "(%(sequence)s, 'x', '{}', %(agent_id)s, %(signing_key_id)s, 'DEVELOPMENT', "
        "clock_timestamp(), clock_timestamp(), %(prev_hash)s, %(content_hash)s, %(signature)s, %(witness_id)s, "
        "%(witness_key_id)s, %(witness_signature)s, 1)",
        row,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sequence": 10}, "does not follow"),
        ({"prev_hash": "f" * 64}, "prev_hash"),
        ({"content_hash": "A" * 64}, "64 lowercase hex"),
        ({"signature": "b" * 127}, "128 lowercase hex"),
        ({"signing_key_id": "agent-unknown"}, "is not an agent key"),
        ({"witness_id": "SYSTEM:EVENT_WRITER"}, "cannot witness its own event"),
        ({"witness_key_id": "witness-unknown"}, "is not a witness key"),
    ],
)
def test_events__invalid_insert__refused_by_trigger(system_keys, overrides, message):
    assert message in _insert_after_head(**overrides)


def _two_rows_after_head(**second_overrides) -> tuple[str, dict]:
    """An INSERT of two rows: the first follows the head; the second as overridden."""
    head = Event.objects.order_by("-sequence").first()
    first = {
        "sequence": head.sequence + 1,
        "prev_hash": head.content_hash,
        "content_hash": "a" * 64,
    }
    second = {"sequence": head.sequence + 2, "prev_hash": "a" * 64, "content_hash": "d" * 64}
    second.update(second_overrides)
    values = (
        "(%({n}sequence)s, 'x', '{{}}', %(agent_id)s, %(signing_key_id)s, 'DEVELOPMENT', "
        "clock_timestamp(), %({n}prev_hash)s, %({n}content_hash)s, repeat('b', 128), "
        "%(witness_id)s, %(witness_key_id)s, repeat('c', 128), 1)"
    )
    # Only placeholders are formatted into the statement.
    statement = (
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "  # noqa: S608
        "signing_mode, local_timestamp, prev_hash, content_hash, signature, witness_id, "
        f"witness_key_id, witness_signature, schema_version) VALUES {values.format(n='a_')}, "
        f"{values.format(n='b_')}"
    )
    params = {
        "agent_id": head.agent_id,
        "signing_key_id": head.signing_key_id,
        "witness_id": head.witness_id,
        "witness_key_id": head.witness_key_id,
        **{f"a_{name}": value for name, value in first.items()},
        **{f"b_{name}": value for name, value in second.items()},
    }
    return statement, params


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sequence": 3}, "sequence {third} does not follow the head"),
        ({"prev_hash": "f" * 64}, "prev_hash of sequence {second} is not the content_hash"),
        ({"content_hash": "D" * 64}, "64 lowercase hex characters (sequence {second})"),
    ],
)
def test_events__second_row_of_a_statement_breaks_a_rule__whole_statement_refused(
    system_keys, overrides, message
):
    head = Event.objects.order_by("-sequence").first().sequence
    if "sequence" in overrides:
        overrides = {"sequence": head + overrides["sequence"]}

    refusal = refused(*_two_rows_after_head(**overrides))

    assert message.format(second=head + 2, third=head + 3) in refusal
    assert Event.objects.order_by("-sequence").first().sequence == head


def test_events__statement_continuing_the_chain__accepted(system_keys):
    head = Event.objects.order_by("-sequence").first().sequence

    sql(*_two_rows_after_head())

    assert Event.objects.order_by("-sequence").first().sequence == head + 2


def test_events__client_supplied_authority_timestamp__replaced_by_database_clock(system_keys):
    agent = next(key for key in system_keys if key.kind == "agent")
    witness = next(key for key in system_keys if key.kind == "witness")
    head = Event.objects.order_by("-sequence").first()
    moment = timezone.now()
    canonical = crypto.canonical_content(
        sequence=3,
        event_type="x",
        payload={},
        agent_id=agent.agent_id,
        signing_key_id=agent.key_id,
        signing_mode="DEVELOPMENT",
        local_timestamp=moment,
        prev_hash=head.content_hash,
    )
    sql(
        "INSERT INTO events (sequence, event_type, payload, agent_id, signing_key_id, "
        "signing_mode, local_timestamp, authority_timestamp, prev_hash, content_hash, signature, "
        "witness_id, witness_key_id, witness_signature, schema_version) VALUES "
        "(2, 'x', '{}', %s, %s, 'DEVELOPMENT', %s, '2000-01-01T00:00:00Z', %s, %s, %s, %s, %s, "
        "%s, 1)",
        [
            agent.agent_id,
            agent.key_id,
            moment,
            head.content_hash,
            crypto.digest(canonical).hex(),
            "b" * 128,
            witness.agent_id,
            witness.key_id,
            "c" * 128,
        ],
    )

    stored = Event.objects.get(sequence=2).authority_timestamp
    assert abs((stored - timezone.now()).total_seconds()) < 5


def test_clock_drift__local_clock_far_off__warning_row(system_keys):
    agent = next(key for key in system_keys if key.kind == "agent")
    earlier = agent.active_from + timedelta(microseconds=1)
    sql(
        "UPDATE constitutional_config SET value = '0.000001' "
        "WHERE key = 'clock_drift_threshold_seconds'"
    )

    event = event_append(event_type="order.created", payload={}, local_timestamp=earlier).wait()

    warning = ClockDriftWarning.objects.get(event_sequence=event.sequence)
    assert warning.drift_seconds > 0


# --- The runbook's diagnostic SQL, verbatim (sections 4.2, 4.3, 11.4) ----------------------------

RUNBOOK_TABLES = """SELECT table_name FROM information_schema.tables
WHERE table_schema = 'public';"""

RUNBOOK_TRIGGERS = """SELECT trigger_name, event_manipulation, action_statement
FROM information_schema.triggers
WHERE trigger_schema = 'public';"""

RUNBOOK_HEALTH = "SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM events;"

RUNBOOK_GAPS = """SELECT sequence, prev_hash, content_hash
FROM events
WHERE sequence > 1
  AND prev_hash != (
    SELECT content_hash FROM events e2
    WHERE e2.sequence = events.sequence - 1
  );"""

RUNBOOK_ACTIVE_KEYS = """SELECT agent_id, key_id, active_from, active_until
FROM agent_keys
WHERE active_until IS NULL;"""


def test_runbook_sql__expected_tables_exist(db):
    tables = {row[0] for row in sql(RUNBOOK_TABLES)}

    assert {
        "events",
        "agent_keys",
        "keeper_keys",
        "clock_drift_warnings",
        "constitutional_config",
    } <= tables


def test_runbook_sql__expected_triggers_exist(db):
    triggers = {row[0] for row in sql(RUNBOOK_TRIGGERS)}

    assert {
        "prevent_event_update",
        "prevent_event_delete",
        "verify_hash_chain_on_insert",
        "validate_witness_attribution_on_insert",
        "validate_signature_format_on_insert",
        "log_clock_drift_on_insert",
    } <= triggers


def test_runbook_sql__health_gaps_and_active_keys(system_keys):
    event_append(event_type="order.created", payload={})

    assert sql(RUNBOOK_HEALTH) == [(2, 1, 2)]
    assert sql(RUNBOOK_GAPS) == []
    active = sql(RUNBOOK_ACTIVE_KEYS)
    assert {row[0] for row in active} == {"SYSTEM:EVENT_WRITER", "SYSTEM:WITNESS"}


# --- Batches -------------------------------------------------------------------------------------


def test_event_append_batch__one_chain_in_order(system_keys, api_client):
    drafts = [EventDraft(event_type="order.created", payload={"n": n}) for n in range(250)]

    events = [pending.wait() for pending in event_append_batch(drafts=drafts)]

    assert [e.sequence for e in events] == list(range(2, 252))
    assert all(b.prev_hash == a.content_hash for a, b in zip(events, events[1:], strict=False))
    assert Event.objects.count() == 251
    events_json, keys = observer_view(api_client)
    assert independent_verifier.verify(events_json, keys) == []


def test_event_append_batch__one_invalid_draft__nothing_written(system_keys):
    drafts = [
        EventDraft(event_type="order.created", payload={"n": 1}),
        EventDraft(event_type="", payload={}),
    ]

    with pytest.raises(ValidationFailed):
        event_append_batch(drafts=drafts)

    assert Event.objects.count() == 1


def test_event_append_batch__empty__nothing(system_keys):
    assert event_append_batch(drafts=[]) == []


def test_event_append_batch__queries_independent_of_batch_size(
    system_keys, django_assert_max_num_queries
):
    drafts = [EventDraft(event_type="order.created", payload={"n": n}) for n in range(100)]

    # savepoint, queue insert, (inline integration:) savepoint, lock, pending entries, head,
    # keys, queue update, releases; COPY bypasses the query log but is one statement.
    with django_assert_max_num_queries(10):
        event_append_batch(drafts=drafts)


def test_event_append__metrics__counted_only_on_commit(
    system_keys, django_capture_on_commit_callbacks
):
    from conclave.metrics import EVENTS_APPENDED

    before = EVENTS_APPENDED.labels("metrics.probe")._value.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event_append(event_type="metrics.probe", payload={})
    counted_before_commit = EVENTS_APPENDED.labels("metrics.probe")._value.get()
    for callback in callbacks:
        callback()

    assert counted_before_commit == before
    assert EVENTS_APPENDED.labels("metrics.probe")._value.get() == before + 1
