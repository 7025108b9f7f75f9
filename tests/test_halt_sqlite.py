"""The halt in the quick start: SQLite, no Redis; the database channel alone decides."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import DatabaseError, connection, transaction
from rest_framework.authtoken.models import Token

from conclave.halt import forget_halt_status, halt_status
from conclave.services import halt_raise
from events.services import keeper_key_register
from tests.factories import UserFactory

pytestmark = [pytest.mark.quickstart, pytest.mark.django_db]


def test_sqlite__halt_ceremony_and_clear_protection(system_keys, api_client):
    assert connection.vendor == "sqlite"
    staff = UserFactory(is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=staff).key}")
    keepers = []
    for name in ("alice", "bob"):
        private = Ed25519PrivateKey.generate()
        key = keeper_key_register(
            keeper_id=f"KEEPER:{name}", public_key=private.public_key().public_bytes_raw()
        )
        keepers.append((key.key_id, private))
    halt_raise(reason="drill", actor="test", channel="command")
    forget_halt_status()

    refused_write = api_client.post("/v1/observer/events", {}, format="json")
    with pytest.raises(DatabaseError, match="halt clear protection"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE halt_state SET is_halted = 0")
    challenge = api_client.get("/v1/admin/halt/ceremony").json()["challenge"]
    for key_id, private in keepers:
        approved = api_client.post(
            "/v1/admin/halt/ceremony/approve",
            {"keeper_key_id": key_id, "signature": private.sign(challenge.encode()).hex()},
            format="json",
        )
        assert approved.status_code == 201, approved.json()
    cleared = api_client.post("/v1/admin/halt/clear")

    assert refused_write.status_code == 503
    assert halt_status(fresh=True).redis is None  # no Redis in the quick start
    assert cleared.status_code == 200, cleared.json()
    assert not halt_status(fresh=True).halted
