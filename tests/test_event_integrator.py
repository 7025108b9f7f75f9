"""The queue and the integrator (events.integration) inside the test's transaction: writers
queue, `events_integrate` chains and signs, the database keeps the queue honest. The
integrator as a real process against committed data is in test_event_store_processes.py."""

import random
import string
from datetime import timedelta

import psycopg
import pytest
import rfc8785
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from conclave.exceptions import Conflict
from events import crypto, integration
from events.integration import (
    INSERT_ROWS_MAX,
    _integrate_step,
    _pending,
    events_integrate,
    events_queue_purge,
)
from events.models import Event, EventQueueEntry
from events.services import EventNotLogged, event_append, key_rotate
from tests import independent_verifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def integrator_mode(settings, system_keys):
    settings.EVENT_INTEGRATION = "integrator"
    return system_keys


def queue_raw(**fields) -> int:
    """A queue row written directly, past the service's validation."""
    row = {
        "event_type": "order.created",
        "payload": "{}",
        "agent_id": "SYSTEM:EVENT_WRITER",
        "local_timestamp": timezone.now(),
        **fields,
    }
    return EventQueueEntry.objects.create(**row).id


def refused(statement: str, params=None) -> str:
    with pytest.raises(DatabaseError) as failure, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
    return str(failure.value)


# --- Canonical form ------------------------------------------------------------------------------


def _random_text(rng: random.Random) -> str:
    alphabet = string.printable + 'Ünïcode✓€\u2028\u0000"\\/😀\ud7ff'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 6 if depth < 3 else 3)
    if kind == 0:
        return _random_text(rng)
    if kind == 1:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == 2:
        return rng.choice([0.5, -1.25e-7, 1e21, 3.0, 123456.789, True, False, None])
    if kind == 3:
        return rng.choice(["", "a", "é"])
    if kind == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_random_text(rng): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_canonical_content__assembled_envelope__equals_rfc8785_of_whole_object():
    rng = random.Random(2026)
    for sequence in range(1, 500):
        fields = {
            "sequence": sequence * 7919,
            "event_type": _random_text(rng) or "x",
            "payload": _random_json(rng),
            "agent_id": _random_text(rng),
            "signing_key_id": _random_text(rng),
            "signing_mode": rng.choice(["DEVELOPMENT", "PRODUCTION"]),
            "local_timestamp": timezone.now() - timedelta(seconds=rng.randint(0, 10**8)),
            "prev_hash": rng.choice(["0" * 64, "f" * 64, _random_text(rng)]),
        }
        whole = rfc8785.dumps(
            {
                **fields,
                "schema_version": crypto.SCHEMA_VERSION,
                "local_timestamp": crypto.format_timestamp(fields["local_timestamp"]),
            }
        )

        assert crypto.canonical_content(**fields) == whole
        assert (
            crypto.canonical_content(
                **fields, payload_bytes=crypto.canonical_payload(fields["payload"])
            )
            == whole
        )


def test_signature_valid__openssl_signature__accepted_and_tampering_refused():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    signature = key.sign(b"message")

    assert crypto.signature_valid(public, signature, b"message")
    assert not crypto.signature_valid(public, signature, b"messagE")
    assert not crypto.signature_valid(public, bytes([signature[0] ^ 1]) + signature[1:], b"message")
    assert not crypto.signature_valid(public, signature[:63], b"message")
    assert not crypto.signature_valid(public[:31], signature, b"message")


def test_software_signer__signature__verifies_with_openssl(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from events.signing import SoftwareSigner

    public = SoftwareSigner(tmp_path).create_key("agent-test")
    # A second signer reads the key back from its PKCS#8 file.
    signature = SoftwareSigner(tmp_path).sign("agent-test", b"digest")

    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"digest")  # raises if not


def _random_plain_json(rng: random.Random, depth: int = 0):
    """JSON without floats, ASCII keys: what the fast path of canonical_payload takes."""
    kind = rng.randint(0, 4 if depth < 3 else 2)
    if kind == 0:
        return _random_text(rng) + rng.choice(["", "\ud800", "\ue000", "\x7f", "\x1f"])
    if kind == 1:
        return rng.choice([rng.randint(-(2**53) + 1, 2**53 - 1), True, False, None, 0])
    if kind == 2:
        return rng.choice(["", "é", "\u2028"])
    if kind == 3:
        return [_random_plain_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = string.ascii_letters + string.digits + ' _-"\\\t'
    return {
        "".join(rng.choice(keys) for _ in range(rng.randint(0, 6))): _random_plain_json(
            rng, depth + 1
        )
        for _ in range(rng.randint(0, 5))
    }


def test_canonical_payload__random_json__equals_rfc8785():
    rng = random.Random(8785)
    payloads = [_random_plain_json(rng) for _ in range(2000)]
    payloads += [_random_json(rng) for _ in range(2000)]  # floats, astral keys: rfc8785's way
    payloads += [{"\ue000": 1, "\U0001f600": 2}, {"n": 2**53}, {"n": 1.0}, {1: "int key"}]
    for payload in payloads:
        try:
            expected = rfc8785.dumps(payload)
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as refusal:
            with pytest.raises(type(refusal)):
                crypto.canonical_payload(payload)
            continue
        assert crypto.canonical_payload(payload) == expected, payload


@pytest.mark.parametrize("value", [0, 1, -1, 2**53 - 1, -(2**53) + 1])
def test_json_integer__safe_integers__equal_rfc8785(value):
    assert crypto._json_integer(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [2**53, -(2**53)])
def test_json_integer__beyond_i_json__refused_as_rfc8785_does(value):
    with pytest.raises(rfc8785.CanonicalizationError):
        crypto._json_integer(value)


@pytest.mark.parametrize(
    "text",
    ["", "SYSTEM:EVENT_WRITER", "agent-0f3a", "a/b+c@d.e f_g", "2026-11-22T03:15:00.000000Z",
     "é", 'q"uote', "back\\slash", "tab\t", "\u2028", "\x7f", "\x00"],
)  # fmt: skip
def test_json_text__plain_and_escaped_strings__equal_rfc8785(text):
    assert crypto._json_text(text) == rfc8785.dumps(text)


# --- Queue, then integrate -----------------------------------------------------------------------


def test_pending__local_timestamp_text__as_format_timestamp_writes_it(integrator_mode):
    now = timezone.now()
    moments = [
        now,
        now.replace(microsecond=0),
        now.replace(microsecond=7),
        now.replace(year=999),
        now.astimezone(timezone.get_fixed_timezone(-330)),
    ]
    for moment in moments:
        queue_raw(local_timestamp=moment)

    read = [entry.local_timestamp for entry in _pending(None)]

    assert read == [crypto.format_timestamp(moment) for moment in moments]


@pytest.mark.parametrize("batch", [7, INSERT_ROWS_MAX + 1])  # stored with INSERT / with COPY
def test_integrate__escapes_and_unicode__stored_exactly_and_verified(
    integrator_mode, api_client, batch
):
    rng = random.Random(batch)
    payloads = [
        {"text": _random_text(rng).replace("\x00", ""), "n": n, "nested": {"q": '"\\', "e": "😀"}}
        for n in range(batch)
    ]
    pendings = [
        event_append(event_type=f'order.note-"{n}\\', payload=payload)
        for n, payload in enumerate(payloads)
    ]

    assert events_integrate(limit=None) == batch

    events = [pending.wait() for pending in pendings]
    assert [event.payload for event in events] == payloads
    assert [event.event_type for event in events] == [f'order.note-"{n}\\' for n in range(batch)]
    observed = api_client.get("/v1/observer/events?limit=1000").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]
    assert independent_verifier.verify(observed, keys) == []


def test_lock_chain__planner_settings__last_until_the_transaction_ends():
    # (its own connection: the test's transaction never commits)
    server = connection.settings_dict
    dsn = (
        f"host={server['HOST']} port={server['PORT'] or 5432} user={server['USER']} "
        f"dbname={server['NAME']}"
    )
    show = "SELECT current_setting('plan_cache_mode'), current_setting('enable_bitmapscan')"
    with psycopg.connect(dsn) as own:
        before = own.execute(show).fetchone()
        own.commit()
        own.execute(integration.LOCK_CHAIN_SQL, [integration.CHAIN_LOCK_KEY])
        during = own.execute(show).fetchone()
        own.commit()
        after = own.execute(show).fetchone()

    assert before == after == ("auto", "on")
    assert during == ("force_generic_plan", "off")


def test_append__integrator_mode__queued_until_integrated(integrator_mode):
    pending = event_append(event_type="order.created", payload={"vin": "TEST123456789"})

    assert Event.objects.count() == 1
    entry = EventQueueEntry.objects.get(id=pending.queue_id)
    assert (entry.sequence, entry.processed_at) == (None, None)
    assert entry.payload == '{"vin":"TEST123456789"}'

    assert events_integrate() == 1

    event = pending.wait()
    assert (event.sequence, event.payload) == (2, {"vin": "TEST123456789"})
    entry.refresh_from_db()
    assert entry.sequence == 2 and entry.processed_at is not None


def test_integrate__many_entries__one_chain_in_queue_order_verified(integrator_mode, api_client):
    pendings = [event_append(event_type="order.created", payload={"n": n}) for n in range(120)]

    # 50: one INSERT with the queue's UPDATE; 70: COPY, then the UPDATE (`_store`)
    assert events_integrate(limit=INSERT_ROWS_MAX) == 50
    assert events_integrate(limit=None) == 70
    assert events_integrate() == 0

    events = [pending.wait() for pending in pendings]
    assert [event.payload["n"] for event in events] == list(range(120))
    assert [event.sequence for event in events] == list(range(2, 122))
    observed = api_client.get("/v1/observer/events?limit=1000").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]
    assert independent_verifier.verify(observed, keys) == []


def test_integrate__entry_below_the_floor__found_by_the_next_read_from_the_start(
    integrator_mode, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(integration, "FLOOR_MARGIN_IDS", 2)
    with connection.cursor() as cursor:  # the id of a transaction still open
        cursor.execute("SELECT nextval(pg_get_serial_sequence('event_queue', 'id'))")
        [(drawn,)] = cursor.fetchall()
    newer = [event_append(event_type="order.created", payload={"n": n}) for n in range(6)]
    with django_capture_on_commit_callbacks(execute=True):
        assert events_integrate() == 6  # the first read starts from the beginning
    # ... which commits only now.
    late = queue_raw(id=drawn, payload='{"late":true}')

    # Reads start 2 ids below the newest settled entry until a read from the start is due.
    assert integration.queue_floor.start() == newer[-1].queue_id - 2
    assert events_integrate() == 0
    assert not integration._has_pending()

    # Due: the idle poll sees the entry and leaves the read from the start to the batch.
    integration.queue_floor.full_scan_due = 0.0
    assert integration._has_pending()
    assert events_integrate() == 1
    assert EventQueueEntry.objects.get(id=late).sequence == 8
    assert integration.queue_floor.start() > 0  # until the next second

    # Due again with nothing pending: one idle poll from the start, then from the floor.
    integration.queue_floor.full_scan_due = 0.0
    assert not integration._has_pending()
    assert integration.queue_floor.start() > 0


def test_wait__inside_the_appending_transaction__refused(integrator_mode):
    pending = event_append(event_type="order.created", payload={})

    with pytest.raises(RuntimeError, match="after the transaction"):
        pending.wait(timeout=0.05)


def test_caller_rolls_back__queued_entry_gone_nothing_integrated(integrator_mode):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_append(event_type="order.created", payload={"n": 1})
        raise RuntimeError("the state change failed")

    assert events_integrate() == 0
    assert list(EventQueueEntry.objects.values_list("sequence", flat=True)) == [1]  # genesis
    assert Event.objects.count() == 1


def test_append__agent_without_key__refused_in_the_callers_transaction(integrator_mode):
    with pytest.raises(Conflict, match="has no agent key"):
        event_append(event_type="order.created", payload={}, agent_id="SYSTEM:UNKNOWN")

    assert EventQueueEntry.objects.count() == 1  # genesis


def test_integrate__entry_without_key__rejected_and_the_rest_integrated(integrator_mode):
    stray = queue_raw(agent_id="SYSTEM:UNKNOWN")
    good = event_append(event_type="order.created", payload={"n": 1})

    assert events_integrate() == 2

    rejected = EventQueueEntry.objects.get(id=stray)
    assert rejected.sequence is None
    assert "SYSTEM:UNKNOWN has no agent key" in rejected.rejected_reason
    assert good.wait().sequence == 2
    with pytest.raises(EventNotLogged, match="rejected"):
        type(good)(stray, "order.created").wait()


def test_integrate__inline_mode_entry_without_key__conflict_rolls_back(settings, system_keys):
    queue_raw(agent_id="SYSTEM:UNKNOWN")

    with pytest.raises(Conflict, match="cannot take this event"), transaction.atomic():
        events_integrate(strict=True)

    assert EventQueueEntry.objects.get(agent_id="SYSTEM:UNKNOWN").processed_at is None


@pytest.mark.parametrize("after", [1, INSERT_ROWS_MAX])  # stored with INSERT / with COPY
def test_integrate__batch_refused_by_database__bad_entry_rejected_rest_integrated(
    integrator_mode, after
):
    first = event_append(event_type="order.created", payload={"n": 1})
    malformed = queue_raw(payload="{not json")
    rest = [event_append(event_type="order.created", payload={"n": n}) for n in range(after)]

    assert _integrate_step(batch_size=100) == 2 + after

    assert "refused by the database" in EventQueueEntry.objects.get(id=malformed).rejected_reason
    assert first.wait().sequence == 2
    assert [pending.wait().sequence for pending in rest] == list(range(3, 3 + after))


def test_integrate__key_rotated_while_queued__signed_by_key_active_at_local_time(
    integrator_mode, api_client
):
    agent = next(key for key in integrator_mode if key.kind == "agent")
    before = event_append(event_type="order.created", payload={"n": 1})
    successor = key_rotate(key_id=agent.key_id)
    after = event_append(event_type="order.created", payload={"n": 2})

    events_integrate()

    assert before.wait().signing_key_id == agent.key_id
    assert after.wait().signing_key_id == successor.key_id
    observed = api_client.get("/v1/observer/events?limit=1000").json()["events"]
    keys = api_client.get("/v1/observer/keys").json()["keys"]
    assert independent_verifier.verify(observed, keys) == []


def test_integrate__key_rotated_between_batches__key_ring_read_again(integrator_mode):
    agent = next(key for key in integrator_mode if key.kind == "agent")
    event_append(event_type="order.created", payload={"n": 1})
    events_integrate()  # the key ring is read and kept for the batches that follow
    successor = key_rotate(key_id=agent.key_id)
    after = event_append(event_type="order.created", payload={"n": 2})

    events_integrate()

    assert after.wait().signing_key_id == successor.key_id


# --- The database keeps the queue honest ---------------------------------------------------------


def test_queue__pending_entry_edited__refused(integrator_mode):
    entry = queue_raw()

    message = refused("UPDATE event_queue SET payload = '{\"x\":1}' WHERE id = %s", [entry])

    assert "only gains a sequence or a rejection, once" in message


def test_queue__pending_entry_deleted__refused(integrator_mode):
    entry = queue_raw()

    assert "pending queued event cannot be deleted" in refused(
        "DELETE FROM event_queue WHERE id = %s", [entry]
    )


def test_queue__integrated_entry_given_another_sequence__refused(integrator_mode):
    pending = event_append(event_type="order.created", payload={})
    events_integrate()

    message = refused(
        "UPDATE event_queue SET sequence = 99, processed_at = now() WHERE id = %s",
        [pending.queue_id],
    )

    assert "only gains a sequence or a rejection, once" in message


def test_queue__both_sequence_and_rejection__refused(integrator_mode):
    entry = queue_raw()

    message = refused(
        "UPDATE event_queue SET sequence = 2, rejected_reason = 'x', processed_at = now() "
        "WHERE id = %s",
        [entry],
    )

    assert "only gains a sequence or a rejection, once" in message


def test_queue__truncate__refused(integrator_mode):
    queue_raw()

    assert "may never be truncated" in refused("TRUNCATE event_queue")


def test_queue_purge__old_integrated_only(integrator_mode):
    integrated = event_append(event_type="order.created", payload={})
    rejected = queue_raw(agent_id="SYSTEM:UNKNOWN")
    events_integrate()
    pending = queue_raw()

    assert events_queue_purge(older_than=timedelta(hours=1)) == 0
    assert events_queue_purge(older_than=timedelta(seconds=-1)) == 2  # with genesis

    assert set(EventQueueEntry.objects.values_list("id", flat=True)) == {rejected, pending}
    assert Event.objects.filter(sequence=2).exists()
    with pytest.raises(Exception, match="purged"):
        integrated.wait(timeout=0)


def test_append_batch__more_rows_than_one_statement_takes__all_queued_in_order(
    integrator_mode,
):
    from events.services import ENQUEUE_ROWS_PER_STATEMENT, EventDraft, event_append_batch

    count = ENQUEUE_ROWS_PER_STATEMENT * 2 + 3
    drafts = [EventDraft(event_type="order.created", payload={"n": n}) for n in range(count)]

    pendings = event_append_batch(drafts=drafts)
    events_integrate(limit=None)

    assert [pending.wait().payload["n"] for pending in pendings[::997]] == list(
        range(0, count, 997)
    )
    assert Event.objects.count() == count + 1
