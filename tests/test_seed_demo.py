import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from rest_framework.authtoken.models import Token

from events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def test_seed_demo__empty_database__staff_user_with_token_and_saved_credentials(tmp_path):
    call_command("seed_demo", stdout=StringIO())

    staff = get_user_model().objects.get(username="staff")
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())["staff"]
    assert staff.is_staff
    assert staff.check_password(credentials["password"])
    assert Token.objects.get(user=staff).key == credentials["token"]
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o077 == 0
    # A superuser made without its event would be a hole in the log.
    assert Event.objects.get(event_type="user.created").payload == {
        "user_id": staff.pk, "username": "staff", "actor": "manage.py seed_demo",
        "password": "set", "is_staff": True, "is_superuser": True,
    }  # fmt: skip


def test_seed_demo__run_twice__changes_nothing(tmp_path):
    call_command("seed_demo", stdout=StringIO())
    staff = get_user_model().objects.get(username="staff")
    password_hash, token = staff.password, Token.objects.get(user=staff).key

    call_command("seed_demo", stdout=StringIO())

    staff.refresh_from_db()
    assert Event.objects.filter(event_type="user.created").count() == 1
    assert get_user_model().objects.filter(is_staff=True).count() == 1
    assert staff.password == password_hash
    assert Token.objects.get(user=staff).key == token


def test_seed_demo__password_from_environment(monkeypatch):
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", "a-chosen-demo-password")

    call_command("seed_demo", stdout=StringIO())

    assert get_user_model().objects.get(username="staff").check_password("a-chosen-demo-password")


@override_settings(ENVIRONMENT="production")
def test_seed_demo__production__refused():
    with pytest.raises(CommandError, match="refused"):
        call_command("seed_demo")

    assert not get_user_model().objects.exists()


def test_seed_demo__keeper_set__enough_to_clear_a_halt_keys_sign_with_keeper_sign(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from events.models import KeeperKey

    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    keepers = json.loads((tmp_path / "demo-credentials.json").read_text())["keepers"]
    assert len(keepers) == 2 == KeeperKey.objects.count()
    out = StringIO()
    call_command("keeper_sign", "--key", keepers[0]["key_file"], "--challenge", "c-1", stdout=out)
    public = bytes(KeeperKey.objects.get(key_id=keepers[0]["key_id"]).public_key)
    Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(out.getvalue()), b"c-1")
    assert (tmp_path / "keepers" / "keeper-one.pem").stat().st_mode & 0o077 == 0


def test_keeper_sign__not_a_key_file__clear_error(tmp_path):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a key")

    with pytest.raises(CommandError, match="cannot read a private key"):
        call_command("keeper_sign", "--key", str(bogus), "--challenge", "c", stdout=StringIO())


def test_seed_demo__mechanic_and_catalog__mechanic_logs_in(tmp_path, api_client):
    from orders.models import Category, Part

    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    mechanic = json.loads((tmp_path / "demo-credentials.json").read_text())["mechanic"]
    login = api_client.post("/api/mechanic/login", mechanic, format="json")
    assert login.status_code == 200
    assert Category.objects.count() == 3
    assert Part.objects.filter(is_common=True).count() == 3
