"""`verify_chain` finds every kind of tampering. The tampering itself needs the triggers off,
which only a superuser can do (`session_replication_role = replica`), as an attacker with
full database access would."""

import json
from itertools import pairwise

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from events.models import Event
from events.services import event_append, key_rotate
from events.signing import get_signer
from events.verification import MIN_CHUNK_SIZE, _chunk_bounds, verify_chain

pytestmark = pytest.mark.django_db


def tamper(*statements: tuple[str, list]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for statement, params in statements:
            cursor.execute(statement, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def log(system_keys):
    for n in range(8):
        event_append(event_type="order.created", payload={"n": n})
    return list(Event.objects.order_by("sequence"))  # sequences 1..9


def test_verify_chain__untouched_log__ok(log):
    result = verify_chain()

    assert result.ok
    assert (result.checked, result.first_sequence, result.last_sequence) == (9, 1, 9)


def test_verify_chain__empty_log__ok(db):
    assert verify_chain().ok


def test_verify_chain__payload_edited__detected_at_that_event(log):
    tamper(("UPDATE events SET payload = '{\"n\": 99}' WHERE sequence = 5", []))

    result = verify_chain()

    assert not result.ok
    assert result.first_bad_sequence == 5
    assert "content_hash" in result.reason


def test_verify_chain__event_deleted__gap_detected(log):
    tamper(("DELETE FROM events WHERE sequence = 6", []))

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence) == (False, 6)


def test_verify_chain__two_events_swapped__detected(log):
    tamper(
        ("UPDATE events SET sequence = -4 WHERE sequence = 4", []),
        ("UPDATE events SET sequence = 4 WHERE sequence = 5", []),
        ("UPDATE events SET sequence = 5 WHERE sequence = -4", []),
    )

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence) == (False, 4)


def test_verify_chain__signature_forged_with_another_key__detected(log):
    forged = Ed25519PrivateKey.generate().sign(bytes.fromhex(log[6].content_hash)).hex()
    tamper(("UPDATE events SET signature = %s WHERE sequence = 7", [forged]))

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence) == (False, 7)
    assert "agent signature" in result.reason


def test_verify_chain__witness_signature_forged__detected(log):
    tamper(("UPDATE events SET witness_signature = %s WHERE sequence = 3", ["0" * 128]))

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence) == (False, 3)


def test_verify_chain__forged_signature_then_edited_payload__earlier_one_reported(log):
    # The signatures are checked after the page's other checks: a bad signature still comes
    # before a later event's bad hash.
    forged = Ed25519PrivateKey.generate().sign(bytes.fromhex(log[3].content_hash)).hex()
    tamper(
        ("UPDATE events SET signature = %s WHERE sequence = 4", [forged]),
        ("UPDATE events SET payload = '{\"n\": 99}' WHERE sequence = 7", []),
    )

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence, result.checked) == (False, 4, 3)
    assert (result.last_sequence, result.reason) == (3, "agent signature does not verify")


def test_verify_chain__bad_witness_signature_and_witness_key_in_one_event__first_check_named(
    log,
):
    # As one event's checks run: the witness key is refused before its signature is checked.
    tamper(
        (
            "UPDATE events SET witness_signature = %s, witness_key_id = 'unknown' "
            "WHERE sequence = 5",
            ["0" * 128],
        ),
    )

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence, result.checked) == (False, 5, 4)
    assert result.reason == "witness key unknown is not valid"


def test_verify_chain__key_public_bytes_replaced__detected(log):
    attacker = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    tamper(("UPDATE agent_keys SET public_key = %s WHERE kind = 'agent'", [attacker]))

    result = verify_chain()

    assert (result.ok, result.first_bad_sequence) == (False, 1)


def test_verify_chain__truncated_and_regrown_with_injected_key__detected(log):
    # An attacker with database access but not the signing keys cuts the log after event 4,
    # slips a key of their own into agent_keys, retires the real one, and writes new history.
    attacker_public = get_signer().create_key("agent-attacker")
    tamper(
        ("DELETE FROM events WHERE sequence > 4", []),
        ("UPDATE agent_keys SET active_until = now() - interval '1 hour' WHERE kind = 'agent'", []),
        (
            "INSERT INTO agent_keys (id, agent_id, key_id, kind, public_key, active_from, "
            "created_at) VALUES (gen_random_uuid(), 'SYSTEM:EVENT_WRITER', 'agent-attacker', "
            "'agent', %s, now() - interval '2 hours', now())",
            [attacker_public],
        ),
    )
    for n in range(3):
        event_append(event_type="order.created", payload={"rewritten": n})

    result = verify_chain(from_sequence=5)

    assert (result.ok, result.first_bad_sequence) == (False, 5)
    assert "never registered in the log" in result.reason


def test_verify_chain__rotation_not_endorsed__detected(log):
    agent = Event.objects.get(sequence=1).signing_key_id
    key_rotate(key_id=agent)
    event = Event.objects.get(event_type="key.rotated")
    payload = {**event.payload, "endorsement": "00" * 64}
    tamper(
        (
            "UPDATE events SET payload = %s WHERE sequence = %s",
            [json.dumps(payload), event.sequence],
        )
    )

    result = verify_chain()

    assert not result.ok
    assert result.first_bad_sequence == event.sequence


def test_verify_chain__from_sequence__checks_suffix_only(log):
    result = verify_chain(from_sequence=6)

    assert (result.ok, result.checked, result.first_sequence) == (True, 4, 6)


def test_verify_chain_command__clean__exit_0(log, capsys):
    call_command("verify_chain", "--full")

    assert "chain verified: 9 events (1..9)" in capsys.readouterr().out


def test_verify_chain_command__tampered__fails_naming_sequence_and_halts(log):
    from conclave.models import HaltState

    tamper(("UPDATE events SET event_type = 'order.deleted' WHERE sequence = 8", []))

    with pytest.raises(CommandError, match="FAILED at sequence 8.*the system is halted"):
        call_command("verify_chain", "--full")

    state = HaltState.objects.get()
    assert (state.is_halted, state.channel) == (True, "automatic")
    assert "integrity failure at sequence 8" in state.reason


@pytest.mark.parametrize("first", ["11", str(2**63), str(2**70)])
def test_verify_chain_command__from_past_the_head__refused_nothing_recorded_no_halt(log, first):
    from conclave.models import HaltState, VerificationRun

    with pytest.raises(CommandError, match=r"past the log's head \(9\)|--from must be 1 to"):
        call_command("verify_chain", "--from", first)

    assert not VerificationRun.objects.exists()
    assert not HaltState.objects.filter(is_halted=True).exists()


def test_verify_chain_command__from_just_after_the_head__nothing_to_verify(log, capsys):
    call_command("verify_chain", "--from", "10")

    assert "chain verified: 0 events (nothing)" in capsys.readouterr().out


def test_verify_chain_command__verified_events_gone_from_the_tail__from_past_head_halts(log):
    """Past the head is a typo only where the log never reached: events verified once and
    gone since are the truncation verification exists to find."""
    from conclave.models import HaltState
    from conclave.services import verification_record

    verification_record(kind="full", result=verify_chain(), started_at=log[0].authority_timestamp)
    tamper(("DELETE FROM events WHERE sequence > 6", []))

    with pytest.raises(CommandError, match="FAILED at sequence 9: previous event is missing"):
        call_command("verify_chain", "--from", "10")

    assert HaltState.objects.get().is_halted


def test_chunk_bounds__long_range__whole_contiguous_and_shrinking_toward_the_end():
    bounds = _chunk_bounds(1, 200_000, chunk_size=25_000, workers=2)

    sizes = [last - first + 1 for first, last in bounds]
    assert (bounds[0][0], bounds[-1][1]) == (1, 200_000)
    assert all(later[0] == earlier[1] + 1 for earlier, later in pairwise(bounds))
    assert sizes[0] == 25_000
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] <= MIN_CHUNK_SIZE


def test_chunk_bounds__chunks_below_the_minimum__kept_as_asked():
    assert _chunk_bounds(5, 30, chunk_size=10, workers=2) == [(5, 14), (15, 24), (25, 30)]
