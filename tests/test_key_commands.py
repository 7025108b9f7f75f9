import io

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import CommandError

from events.models import AgentKey, Event, KeeperKey

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_keys_bootstrap_then_list__system_keys_shown(db):
    run("keys", "bootstrap")

    listing = run("keys", "list")

    assert "SYSTEM:EVENT_WRITER" in listing and "SYSTEM:WITNESS" in listing
    assert "system keys already exist" in run("keys", "bootstrap")


def test_keys_register__new_witness_and_event(system_keys):
    output = run("keys", "register", "--kind", "witness", "--owner", "SYSTEM:WITNESS_2")

    key = AgentKey.objects.get(agent_id="SYSTEM:WITNESS_2")
    assert key.key_id in output
    event = Event.objects.get(event_type="key.registered")
    assert event.payload["key_id"] == key.key_id
    assert event.payload["actor"] == "manage.py keys"


def test_keys_rotate__old_retired_new_active(system_keys):
    agent = next(k for k in system_keys if k.kind == "agent")

    run("keys", "rotate", agent.key_id)

    agent.refresh_from_db()
    assert agent.active_until is not None
    assert AgentKey.objects.filter(agent_id=agent.agent_id, active_until__isnull=True).count() == 1
    assert AgentKey.objects.count() == 3  # nothing deleted


def test_keys_rotate__unknown_key__clear_error(system_keys):
    with pytest.raises(CommandError, match="not_found"):
        run("keys", "rotate", "agent-nope")


def test_create_keeper__private_key_file_and_registered_public_key(system_keys, tmp_path):
    key_file = tmp_path / "alice.pem"

    run("create_keeper", "alice", "--key-out", str(key_file))

    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    keeper = KeeperKey.objects.get(keeper_id="KEEPER:alice")
    assert bytes(keeper.public_key) == private.public_key().public_bytes_raw()
    assert key_file.stat().st_mode & 0o077 == 0
    assert Event.objects.filter(event_type="keeper_key.registered").count() == 1


def test_create_keeper__existing_file__refused_and_nothing_registered(system_keys, tmp_path):
    key_file = tmp_path / "alice.pem"
    key_file.write_text("keep me")

    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("create_keeper", "alice", "--key-out", str(key_file))

    assert key_file.read_text() == "keep me"
    assert not KeeperKey.objects.exists()


@pytest.mark.parametrize(
    ("where", "problem"),
    [("missing/alice.pem", "No such file or directory"), ("a-file/alice.pem", "Not a directory")],
)
def test_create_keeper__key_file_cannot_be_written__refused_and_nothing_registered(
    system_keys, tmp_path, where, problem
):
    (tmp_path / "a-file").write_text("")

    with pytest.raises(CommandError, match=f"cannot write the key to .*: {problem}"):
        run("create_keeper", "alice", "--key-out", str(tmp_path / where))

    assert not KeeperKey.objects.exists()


@pytest.mark.parametrize("name", ["", "  "])
def test_create_keeper__no_name__refused(system_keys, tmp_path, name):
    with pytest.raises(CommandError, match="Give the keeper's name"):
        run("create_keeper", name, "--key-out", str(tmp_path / "k.pem"))

    assert not KeeperKey.objects.exists() and not (tmp_path / "k.pem").exists()


def test_app_role_sql__append_only_grants(db):
    sql = run("app_role_sql", "--role", "conclave_app")

    assert "GRANT SELECT, INSERT ON events TO conclave_app;" in sql
    assert "UPDATE" not in next(line for line in sql.splitlines() if " ON events " in line)
    grants = [line for line in sql.splitlines() if line.startswith("GRANT")]
    assert not [line for line in grants if "TRUNCATE" in line or "ALL PRIVILEGES" in line]
