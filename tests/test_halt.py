"""The halt and its clearing ceremony on PostgreSQL and Redis (SPEC 3.4)."""

import json
from dataclasses import dataclass

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from conclave import halt as halt_module
from conclave.exceptions import Halted
from conclave.halt import forget_halt_status, halt_status
from conclave.models import HALT_STATE_ID, HaltState
from conclave.services import halt_raise
from events.models import Event, EventQueueEntry
from events.services import event_append, keeper_key_register
from events.verification import verify_chain
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class Keeper:
    keeper_id: str
    key_id: str
    private: Ed25519PrivateKey

    def sign(self, challenge: str) -> str:
        return self.private.sign(challenge.encode()).hex()


def register_keeper(name: str) -> Keeper:
    private = Ed25519PrivateKey.generate()
    key = keeper_key_register(
        keeper_id=f"KEEPER:{name}", public_key=private.public_key().public_bytes_raw()
    )
    return Keeper(key.keeper_id, key.key_id, private)


@pytest.fixture
def keepers(system_keys) -> list[Keeper]:
    return [register_keeper(name) for name in ("alice", "bob", "carol")]


@pytest.fixture
def staff_client(api_client):
    staff = UserFactory(is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=staff).key}")
    return api_client


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def halted_now() -> bool:
    forget_halt_status()
    return halt_status().halted


def sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def refused(statement: str) -> str:
    with pytest.raises(DatabaseError) as failure, transaction.atomic():
        sql(statement)
    return str(failure.value)


def approve(client, keeper: Keeper, challenge: str, signature: str | None = None):
    return client.post(
        "/v1/admin/halt/ceremony/approve",
        {"keeper_key_id": keeper.key_id, "signature": signature or keeper.sign(challenge)},
        format="json",
    )


# --- The row and the database's clear protection --------------------------------------------------


def test_runbook_sql__halt_state__one_row_not_halted(db):
    rows = sql("SELECT id, is_halted, reason FROM halt_state;")

    assert [(str(rows[0][0]), rows[0][1], rows[0][2])] == [(str(HALT_STATE_ID), False, None)]


def test_clear_without_ceremony__refused_by_database_even_in_replica_mode(system_keys):
    halt_raise(reason="drill", actor="test", channel="command")

    plain = refused("UPDATE halt_state SET is_halted = false")
    sql("SET LOCAL session_replication_role = replica")
    replica = refused("UPDATE halt_state SET is_halted = false")

    assert "halt clear protection" in plain
    assert "halt clear protection" in replica


def test_halt_state__second_row_or_delete__refused(db):
    assert "halt_state_singleton" in refused(
        "INSERT INTO halt_state (id, is_halted, halt_number, halted_by, channel, cleared_by, "
        "updated_at) VALUES (gen_random_uuid(), false, 0, '', '', '', now())"
    )
    assert "never deleted" in refused("DELETE FROM halt_state")
    assert "may never be truncated" in refused("TRUNCATE halt_state CASCADE")


# --- Raising ---------------------------------------------------------------------------------------


def test_raise__staff_api__halted_in_both_channels_and_logged(
    staff_client, redis_client, keepers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/v1/admin/halt", {"reason": "Emergency maintenance"}, format="json"
        )

    assert response.status_code == 200
    assert response.json()["raised"] is True
    assert response.json()["state"]["is_halted"] is True
    state = HaltState.objects.get()
    assert (state.is_halted, state.reason, state.channel) == (True, "Emergency maintenance", "api")
    assert redis_client.get(halt_module.active_key()) == "true"
    assert redis_client.get(halt_module.reason_key()) == "Emergency maintenance"
    assert Event.objects.filter(event_type="halt.raised").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"reason": ""}, "reason"), ({}, "reason"), ({"reason": "x", "extra": 1}, "extra"),
     ({"reason": "\u0001\u0002"}, "reason"), ({"reason": "disk \u202efull"}, "reason"),
     ({"reason": "\u2067"}, "reason")],
)  # fmt: skip
def test_raise__bad_input__400_and_nothing_halted(staff_client, system_keys, body, field):
    response = staff_client.post("/v1/admin/halt", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not halted_now()


def test_raise__not_staff__refused(api_client, system_keys):
    user = UserFactory()
    anonymous = api_client.post("/v1/admin/halt", {"reason": "x"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    mechanic = api_client.post("/v1/admin/halt", {"reason": "x"}, format="json")

    assert (anonymous.status_code, mechanic.status_code) == (401, 403)
    assert not halted_now()


def test_halted__writes_refused_503_reads_go_on(staff_client, api_client, system_keys):
    halt_raise(reason="integrity drill", actor="test", channel="command")
    forget_halt_status()

    write = api_client.post("/v1/observer/events", {}, format="json")
    read = api_client.get("/v1/observer/events")
    health = api_client.get("/v1/health")
    constitutional = api_client.get("/v1/health/constitutional").json()

    assert write.status_code == 503
    assert write.json()["error"] == "halted"
    assert write.json()["reason"] == "integrity drill"
    assert (read.status_code, health.status_code) == (200, 200)
    assert constitutional["halted"] is True
    assert constitutional["halt"]["reason"] == "integrity drill"


@pytest.mark.parametrize("integration", ["inline", "integrator"])
def test_halted__event_append_refused_except_halt_events(settings, system_keys, integration):
    settings.EVENT_INTEGRATION = integration
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()

    with pytest.raises(Halted):
        event_append(event_type="order.created", payload={})
    note = event_append(event_type="halt.note", payload={})

    assert not EventQueueEntry.objects.filter(event_type="order.created").exists()
    assert EventQueueEntry.objects.filter(id=note.queue_id).exists()


def test_integrator__halted__integrates_only_halt_events(settings, system_keys):
    from conclave.halt import HALT_EVENT_PREFIX
    from events.integration import _integrate_step

    settings.EVENT_INTEGRATION = "integrator"
    order = event_append(event_type="order.created", payload={})
    halt_raise(reason="drill", actor="test", channel="command")

    _integrate_step(100, HALT_EVENT_PREFIX)

    assert Event.objects.filter(event_type="halt.raised").exists()
    assert EventQueueEntry.objects.get(id=order.queue_id).sequence is None


# --- The Redis channel -----------------------------------------------------------------------------


def test_redis_only_halt__carried_into_database__deleting_key_does_not_clear(
    redis_client, system_keys
):
    redis_client.set(halt_module.active_key(), "true")
    redis_client.set(halt_module.reason_key(), "Emergency maintenance")

    assert halted_now()
    state = HaltState.objects.get()
    assert (state.is_halted, state.reason, state.channel) == (
        True,
        "Emergency maintenance",
        "redis",
    )

    redis_client.delete(halt_module.active_key(), halt_module.reason_key())

    assert halted_now()
    assert redis_client.get(halt_module.active_key()) == "true"  # written back from the row


@pytest.mark.parametrize("reason", ["", "x" * 2000, "disk \u202efull\x01", "\x00"])
def test_redis_only_halt__any_reason_written_there__still_carried(
    redis_client, system_keys, reason
):
    """Anyone may write Redis: the halt is carried whatever the reason says, shown readable."""
    redis_client.set(halt_module.active_key(), "true")
    redis_client.set(halt_module.reason_key(), reason)

    assert halted_now()
    state = HaltState.objects.get()
    assert (state.is_halted, state.channel) == (True, "redis")
    assert 0 < len(state.reason) <= 500 and state.reason.isprintable()


@pytest.mark.parametrize(
    ("key", "value"),
    [("reason", b"\xff\xfe disk"), ("number", "\u00b2"), ("number", "9" * 5000),
     ("active", b"\xff")],
)  # fmt: skip
def test_redis_halt_keys_written_oddly__still_halted_not_an_error(
    redis_client, system_keys, key, value
):
    """Bytes that are not UTF-8, a halt number that is not one: the halt holds, and the API
    answers 503 as halted, not 500."""
    redis_client.set(halt_module.active_key(), "true")
    redis_client.set({"reason": halt_module.reason_key(), "number": halt_module.number_key(),
                      "active": halt_module.active_key()}[key], value)  # fmt: skip

    assert halted_now()
    assert HaltState.objects.get().is_halted


@pytest.mark.parametrize("command", ["rpush", "sadd", "hset"])
def test_redis_halt_key_of_another_type__halted_fail_closed(redis_client, system_keys, command):
    """`LPUSH ...:halt:active true` for `SET`: the key is set, though not as a string (which
    Redis's MGET reads as missing). Halted, as for any value that is not a "no"."""
    key = halt_module.active_key()
    if command == "hset":
        redis_client.hset(key, "active", "true")
    else:
        getattr(redis_client, command)(key, "true")

    assert halted_now()
    state = HaltState.objects.get()
    assert (state.is_halted, state.channel) == (True, "redis")
    assert "not a string" in state.reason


def test_automatic_halt__reason_quoting_the_log_made_readable_never_refused(system_keys):
    """A failed verification quotes what it found (a key id from a tampered row): control or
    bidirectional characters there, or a reason past the limit once they are written out,
    must not stop the halt."""
    from conclave.services import verification_record
    from events.verification import VerificationResult

    quoted = "signing key \u202ekey\x01 is not the agent's key " + "\x02" * 200
    result = VerificationResult(False, 0, 1, None, 1, quoted)

    verification_record(kind="full", result=result, started_at=timezone.now())

    state = HaltState.objects.get()
    assert state.is_halted and state.channel == "automatic"
    assert state.reason.startswith("integrity failure at sequence 1: signing key \\u202ekey\\x01")
    assert len(state.reason) <= 500 and state.reason.isprintable()


def test_redis_unreachable__database_decides(settings, system_keys):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    halt_module.redis_channel._client = None
    try:
        assert not halted_now()
        halt_raise(reason="drill", actor="test", channel="command")
        status = halt_status(fresh=True)
    finally:
        halt_module.redis_channel._client = None

    assert (status.halted, status.database, status.redis) == (True, True, None)


def test_neither_channel_readable__fails_closed():
    status = halt_module._combine(None, None)

    assert status.halted
    assert "unreadable" in status.reason


def test_stale_redis_keys_of_a_cleared_halt__removed_not_a_new_halt(redis_client, system_keys):
    # Keys this system wrote for halt 0 (cleared since), e.g. after a failed delete.
    halt_module.redis_channel.write(halted=True, reason="old", halt_number=0)

    assert not halted_now()
    assert redis_client.get(halt_module.active_key()) is None
    assert HaltState.objects.get().halt_number == 0


# --- The ceremony ----------------------------------------------------------------------------------


def test_ceremony__two_keepers__clears_both_channels_and_logs_every_step(
    staff_client, keepers, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        halt_raise(reason="drill", actor="test", channel="command")
    assert redis_client.get(halt_module.active_key()) == "true"
    ceremony = staff_client.get("/v1/admin/halt/ceremony").json()

    first = approve(staff_client, keepers[0], ceremony["challenge"])
    second = approve(staff_client, keepers[1], ceremony["challenge"])
    with django_capture_on_commit_callbacks(execute=True):
        cleared = staff_client.post("/v1/admin/halt/clear")

    assert ceremony["quorum"] == 2
    assert (first.status_code, second.status_code) == (201, 201)
    assert [a["keeper_id"] for a in second.json()["approvals"]] == ["KEEPER:alice", "KEEPER:bob"]
    assert cleared.status_code == 200, cleared.json()
    assert cleared.json()["is_halted"] is False
    assert not halted_now()
    assert redis_client.get(halt_module.active_key()) is None
    steps = list(
        Event.objects.filter(event_type__startswith="halt.").values_list("event_type", flat=True)
    )
    assert steps == [
        "halt.raised",
        "halt.ceremony.started",
        "halt.ceremony.approved",
        "halt.ceremony.approved",
        "halt.cleared",
    ]
    assert verify_chain().ok
    # Writes go on again.
    event_append(event_type="order.created", payload={})


def test_ceremony__one_keeper__clear_409(staff_client, keepers):
    halt_raise(reason="drill", actor="test", channel="command")
    challenge = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    approve(staff_client, keepers[0], challenge)

    response = staff_client.post("/v1/admin/halt/clear")

    assert response.status_code == 409
    assert "1 of the 2" in response.json()["detail"]
    assert halted_now()


def test_ceremony__same_keeper_twice__409(staff_client, keepers):
    halt_raise(reason="drill", actor="test", channel="command")
    challenge = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    approve(staff_client, keepers[0], challenge)

    again = approve(staff_client, keepers[0], challenge)

    assert again.status_code == 409
    assert "already approved" in again.json()["detail"]


def test_ceremony__forged_signature__400(staff_client, keepers):
    halt_raise(reason="drill", actor="test", channel="command")
    challenge = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]

    forged = approve(staff_client, keepers[0], challenge, signature=keepers[1].sign(challenge))
    garbage = approve(staff_client, keepers[0], challenge, signature="zz" * 64)

    assert (forged.status_code, garbage.status_code) == (400, 400)
    assert "signature" in forged.json()["detail"]


def test_ceremony__replayed_signature_of_an_earlier_halt__refused(staff_client, keepers):
    halt_raise(reason="first", actor="test", channel="command")
    old = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    approve(staff_client, keepers[0], old)
    approve(staff_client, keepers[1], old)
    assert staff_client.post("/v1/admin/halt/clear").status_code == 200
    halt_raise(reason="second", actor="test", channel="command")
    new = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]

    replayed = approve(staff_client, keepers[0], new, signature=keepers[0].sign(old))

    assert new != old
    assert replayed.status_code == 400
    assert halted_now()


def test_ceremony__retired_keeper_key__409(staff_client, keepers):
    from django.utils import timezone

    from events.models import KeeperKey

    halt_raise(reason="drill", actor="test", channel="command")
    challenge = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    KeeperKey.objects.filter(key_id=keepers[0].key_id).update(active_until=timezone.now())

    response = approve(staff_client, keepers[0], challenge)

    assert response.status_code == 409
    assert "not active" in response.json()["detail"]


@pytest.mark.parametrize("keeper_id", ["KEEPER:\u202eecila", "KEEPER:a\x01", "KEEPER:\u2066x"])
def test_keeper_keys__an_id_that_does_not_print__refused(system_keys, keeper_id):
    from conclave.exceptions import ValidationFailed

    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()

    with pytest.raises(ValidationFailed, match="keeper_id"):
        keeper_key_register(keeper_id=keeper_id, public_key=public)


def test_keeper_keys__a_public_key_is_registered_once_ever(keepers):
    """One private key under two keeper ids would make a quorum of one person; a key rotated
    out (perhaps because it leaked) must not come back."""
    from conclave.exceptions import Conflict
    from events.models import KeeperKey
    from events.services import keeper_key_rotate

    alices = keepers[0].private.public_key().public_bytes_raw()
    fresh = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    rotated = keeper_key_rotate(key_id=keepers[0].key_id, public_key=fresh)
    events = Event.objects.count()

    with pytest.raises(Conflict, match="registered already"):
        keeper_key_register(keeper_id="KEEPER:mallory", public_key=alices)
    with pytest.raises(Conflict, match="registered already"):
        keeper_key_rotate(key_id=keepers[1].key_id, public_key=fresh)
    with pytest.raises(Conflict, match="registered already"):
        keeper_key_rotate(key_id=rotated.key_id, public_key=alices)
    with pytest.raises(DatabaseError), transaction.atomic():
        KeeperKey.objects.create(keeper_id="KEEPER:m", key_id="keeper-m", public_key=fresh,
                                 active_from=rotated.active_from)  # fmt: skip

    assert Event.objects.count() == events
    assert KeeperKey.objects.filter(active_until__isnull=True).count() == 3


def test_ceremony__not_halted__409(staff_client, keepers):
    response = staff_client.get("/v1/admin/halt/ceremony")

    assert response.status_code == 409


def test_ceremony__verification_fails__clear_409_and_still_halted(staff_client, keepers):
    event_append(event_type="order.created", payload={"n": 1})
    halt_raise(reason="drill", actor="test", channel="command")
    challenge = staff_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    approve(staff_client, keepers[0], challenge)
    approve(staff_client, keepers[1], challenge)
    sql("SET LOCAL session_replication_role = replica")
    sql("UPDATE events SET payload = '{\"n\": 2}' WHERE event_type = 'order.created'")
    sql("SET LOCAL session_replication_role = origin")

    response = staff_client.post("/v1/admin/halt/clear")

    assert response.status_code == 409
    assert "hash_chain" in response.json()["detail"]
    assert halted_now()


# --- Automatic halt (CT-13) ------------------------------------------------------------------------


def test_periodic_verification__tampered_log__halts_with_sequence(system_keys):
    from conclave.tasks import verify_recent_events

    event_append(event_type="order.created", payload={"n": 1})
    sql("SET LOCAL session_replication_role = replica")
    sql("UPDATE events SET payload = '{\"n\": 2}' WHERE sequence = 2")
    sql("SET LOCAL session_replication_role = origin")

    outcome = verify_recent_events.apply().get()

    assert outcome["ok"] is False
    state = HaltState.objects.get()
    assert state.is_halted and state.channel == "automatic"
    assert "sequence 2" in state.reason


def test_constitutional_health__reports_chain_keepers_and_verification(api_client, keepers):
    from conclave.tasks import verify_recent_events

    verify_recent_events.apply()

    body = api_client.get("/v1/health/constitutional").json()

    assert body["status"] == "operational"
    assert body["chain_head"]["sequence"] == Event.objects.count()
    assert body["last_verification"]["ok"] is True
    assert body["keepers"] == {"active": 3, "quorum": 2, "available": True}
    assert body["witnesses"]["available"] is True
    assert body["hsm_mode"] == "DEVELOPMENT"


def test_metrics__halted_gauge_and_halts_counted(
    api_client, system_keys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        halt_raise(reason="drill", actor="test", channel="command")
    assert halted_now()

    text = api_client.get("/metrics").content.decode()

    assert "conclave_halted 1.0" in text
    assert 'conclave_halts_raised_total{channel="command"}' in text


def test_preoperational__witness_bootstrap_left_on_in_production__fails(settings, keepers):
    from conclave.preoperational import preoperational_verify

    settings.ENVIRONMENT = "production"
    settings.WITNESS_BOOTSTRAP_ENABLED = True

    report = preoperational_verify()

    assert not report.ok
    assert report.failure.startswith("witness_bootstrap: WITNESS_BOOTSTRAP_ENABLED=true")
    assert not report.bypassed


def test_halt_command__raise_then_status(system_keys):
    from io import StringIO

    from django.core.management import call_command

    raised, status = StringIO(), StringIO()
    call_command("halt", "raise", "--reason", "Emergency maintenance", stdout=raised)
    forget_halt_status()
    call_command("halt", "status", stdout=status)

    assert "halt 1 raised: Emergency maintenance" in raised.getvalue()
    reported = json.loads(status.getvalue())
    assert reported["halted"] is True
    assert (reported["reason"], reported["channel"]) == ("Emergency maintenance", "command")
