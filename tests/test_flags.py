"""The six feature flags (SPEC 5) and the rollout runbook's flag steps."""

import subprocess
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from conclave.exceptions import Conflict, Halted
from conclave.services import halt_raise
from events.models import Event
from flags.selectors import flags_snapshot
from flags.services import flag_set
from tests.conftest import clean_env, gunicorn, run_manage
from tests.factories import UserFactory
from tests.http import call

pytestmark = pytest.mark.django_db

ALL_OFF = {
    "ENABLE_CAR_NUMBER": False,
    "ENABLE_PART_CATEGORIES": False,
    "ENABLE_TG_ADMIN_NOTIFS": False,
    "ENABLE_TG_MECH_NOTIFS": False,
    "ENABLE_MECH_I18N": False,
    "ENABLE_UI_REFRESH": False,
}


@pytest.fixture
def manager_client(api_client, system_keys):
    manager = UserFactory(is_staff=True, is_superuser=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=manager).key}")
    return api_client


def flag_events() -> list[dict]:
    return list(Event.objects.filter(event_type="flag.changed").values_list("payload", flat=True))


def test_runbook_baseline__all_six_flags_false(api_client):
    response = api_client.get("/api/config/feature-flags")

    assert response.status_code == 200
    assert response.json() == ALL_OFF


def test_runbook_phases__car_number_then_categories__map_follows(
    manager_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        phase_1 = manager_client.put(
            "/api/admin/feature-flags/ENABLE_CAR_NUMBER", {"enabled": True}, format="json"
        )
    after_1 = manager_client.get("/api/config/feature-flags").json()
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.put(
            "/api/admin/feature-flags/ENABLE_PART_CATEGORIES", {"enabled": True}, format="json"
        )
    after_2 = manager_client.get("/api/config/feature-flags").json()

    assert phase_1.status_code == 200
    assert phase_1.json()["enabled"] is True
    assert after_1 == {**ALL_OFF, "ENABLE_CAR_NUMBER": True}
    assert after_2 == {**ALL_OFF, "ENABLE_CAR_NUMBER": True, "ENABLE_PART_CATEGORIES": True}


def test_flag_set__each_change_one_event_with_actor_old_new(system_keys):
    flag_set(name="ENABLE_UI_REFRESH", enabled=True, actor="user:alice")
    flag_set(name="ENABLE_UI_REFRESH", enabled=True, actor="user:alice")  # no change
    flag_set(name="ENABLE_UI_REFRESH", enabled=False, actor="user:bob")

    events = flag_events()
    assert [(e["old"], e["new"], e["actor"]) for e in events] == [
        (False, True, "user:alice"),
        (True, False, "user:bob"),
    ]
    assert all(e["flag"] == "ENABLE_UI_REFRESH" and e["pinned"] is False for e in events)


def test_kill_switch__every_flag_off_in_one_action(manager_client):
    for name in ("ENABLE_CAR_NUMBER", "ENABLE_TG_ADMIN_NOTIFS", "ENABLE_UI_REFRESH"):
        flag_set(name=name, enabled=True, actor="test")

    response = manager_client.post("/api/admin/feature-flags/kill-switch")

    assert response.status_code == 200
    assert response.json() == {
        "switched_off": ["ENABLE_CAR_NUMBER", "ENABLE_TG_ADMIN_NOTIFS", "ENABLE_UI_REFRESH"],
        "pinned": [],
    }
    assert manager_client.get("/api/config/feature-flags").json() == ALL_OFF
    assert [e["via"] for e in flag_events()[-3:]] == ["kill_switch"] * 3


def test_pinned_flag__reported_pinned__toggle_refused(settings, manager_client):
    settings.FEATURE_FLAG_PINS = {"ENABLE_MECH_I18N": True}

    public = manager_client.get("/api/config/feature-flags").json()
    detail = manager_client.get("/api/admin/feature-flags").json()
    refused = manager_client.put(
        "/api/admin/feature-flags/ENABLE_MECH_I18N", {"enabled": False}, format="json"
    )
    killed = manager_client.post("/api/admin/feature-flags/kill-switch").json()

    assert public["ENABLE_MECH_I18N"] is True
    assert next(f for f in detail if f["name"] == "ENABLE_MECH_I18N")["pinned"] is True
    assert refused.status_code == 409
    assert "pinned" in refused.json()["detail"]
    assert killed["pinned"] == ["ENABLE_MECH_I18N"]
    assert manager_client.get("/api/config/feature-flags").json()["ENABLE_MECH_I18N"] is True
    assert flag_events() == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("ENABLE_NOPE", {"enabled": True}, "name"),
        ("ENABLE_CAR_NUMBER", {"enabled": "maybe"}, "enabled"),
        ("ENABLE_CAR_NUMBER", {}, "enabled"),
        ("ENABLE_CAR_NUMBER", {"enabled": True, "also": 1}, "also"),
    ],
)
def test_flag_set__bad_input__400_nothing_changed(manager_client, path, body, field):
    response = manager_client.put(f"/api/admin/feature-flags/{path}", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert flag_events() == []


def test_flag_management__needs_the_flags_permission(api_client, system_keys):
    anonymous = api_client.put(
        "/api/admin/feature-flags/ENABLE_CAR_NUMBER", {"enabled": True}, format="json"
    )
    staff = UserFactory(is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=staff).key}")
    plain_staff = api_client.put(
        "/api/admin/feature-flags/ENABLE_CAR_NUMBER", {"enabled": True}, format="json"
    )
    listing = api_client.get("/api/admin/feature-flags")

    assert (anonymous.status_code, plain_staff.status_code, listing.status_code) == (401, 403, 403)
    assert flags_snapshot()["ENABLE_CAR_NUMBER"] is False


def test_flag_set__halted__refused(manager_client):
    halt_raise(reason="drill", actor="test", channel="command")
    from conclave.halt import forget_halt_status

    forget_halt_status()

    over_http = manager_client.put(
        "/api/admin/feature-flags/ENABLE_CAR_NUMBER", {"enabled": True}, format="json"
    )
    with pytest.raises(Halted):
        flag_set(name="ENABLE_CAR_NUMBER", enabled=True, actor="test")

    assert over_http.status_code == 503


def test_flags_read__no_query_on_the_hot_path(api_client, django_assert_num_queries):
    flags_snapshot()  # warm this process's snapshot

    with django_assert_num_queries(0):
        flags_snapshot()
        response = api_client.get("/api/config/feature-flags")

    assert response.status_code == 200


def test_flags_command__list_on_off_and_kill_switch(system_keys):
    out = StringIO()
    call_command("flags", "on", "enable_car_number", stdout=out)
    call_command("flags", "on", "ENABLE_UI_REFRESH", stdout=out)
    listing = StringIO()
    call_command("flags", "list", stdout=listing)
    call_command("flags", "off", "--all", stdout=out)

    assert "ENABLE_CAR_NUMBER        on" in listing.getvalue()
    assert "switched off: ENABLE_CAR_NUMBER, ENABLE_UI_REFRESH" in out.getvalue()
    with pytest.raises(CommandError, match="Unknown flag"):
        call_command("flags", "on", "ENABLE_NOPE", stdout=out)
    with pytest.raises(CommandError, match="needs a flag name"):
        call_command("flags", "off", stdout=out)


def test_pinned_flag__command_refuses(settings, system_keys):
    settings.FEATURE_FLAG_PINS = {"ENABLE_CAR_NUMBER": False}

    with pytest.raises(CommandError, match="pinned"):
        call_command("flags", "on", "ENABLE_CAR_NUMBER", stdout=StringIO())
    with pytest.raises(Conflict):
        flag_set(name="ENABLE_CAR_NUMBER", enabled=True, actor="test")


def test_flag_change__reaches_every_gunicorn_worker_within_a_second(scratch_database, tmp_path):
    database = scratch_database("conclave_flags")
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        LOG_LEVEL="WARNING",
    )
    for step in (["migrate", "-v0"], ["keys", "bootstrap"]):
        assert run_manage(*step, env=env).returncode == 0
    subprocess.run(["redis-cli", "-n", "15", "FLUSHDB"], check=True, capture_output=True)

    def seen(base: str) -> set[bool]:
        return {
            call("GET", f"{base}/api/config/feature-flags")[1]["ENABLE_CAR_NUMBER"]
            for _ in range(12)
        }

    with gunicorn(env) as base:
        before = seen(base)
        assert run_manage("flags", "on", "ENABLE_CAR_NUMBER", env=env).returncode == 0
        time.sleep(1.0)
        after = seen(base)

    assert (before, after) == ({False}, {True})
