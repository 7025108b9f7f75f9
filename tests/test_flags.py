"""The six feature flags (SPEC 5) and the rollout runbook's flag steps."""

import json
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
from tests.conftest import gunicorn, run_manage, served_env
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


def test_kill_switch__retried_with_its_key__the_first_answer_again(manager_client):
    flag_set(name="ENABLE_CAR_NUMBER", enabled=True, actor="test")
    path = "/api/admin/feature-flags/kill-switch"

    first = manager_client.post(path, HTTP_IDEMPOTENCY_KEY="kill-1")
    again = manager_client.post(path, HTTP_IDEMPOTENCY_KEY="kill-1")

    assert first.json() == again.json() == {"switched_off": ["ENABLE_CAR_NUMBER"], "pinned": []}
    assert again["Idempotent-Replayed"] == "true"


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


def test_flags_read__version_key_missing__rows_read_once_not_every_ttl(
    monkeypatch, django_assert_num_queries
):
    # the cache starts empty (a fresh or restarted Redis): the key is created, and from then
    # on only a change of it makes the process read the rows again
    monkeypatch.setattr("flags.selectors.LOCAL_TTL", 0)
    with django_assert_num_queries(1):
        flags_snapshot()

    with django_assert_num_queries(0):
        flags_snapshot()
        flags_snapshot()


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
    env = served_env(scratch_database("conclave_flags"), tmp_path)
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


# --- The WSGI fast path of GET /api/config/feature-flags -----------------------------------------


def wsgi_get(app, path: str = "/api/config/feature-flags", **extra: str):
    from wsgiref.util import setup_testing_defaults

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_HOST": "127.0.0.1", **extra}
    if "?" in path:
        environ["PATH_INFO"], environ["QUERY_STRING"] = path.split("?", 1)
    setup_testing_defaults(environ)
    answered: dict = {}

    def start_response(status, headers, exc_info=None):
        answered["status"], answered["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return int(answered["status"].split()[0]), answered["headers"], body


@pytest.fixture
def fast_path():
    """The product's WSGI application, with a record of what reached Django behind it."""
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections

    from flags.fastpath import with_feature_flags_fast_path

    reached_django: list[str] = []
    handler: list[WSGIHandler] = []

    def django(environ, start_response):
        reached_django.append(environ["PATH_INFO"])
        if not handler:  # made on first use: its middleware reads the test's settings
            handler.append(WSGIHandler())
        return handler[0](environ, start_response)

    # As Django's test client does: the test's transaction outlives each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield with_feature_flags_fast_path(django), reached_django
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_fast_path__same_body_and_security_headers_as_the_view_without_django(
    fast_path, system_keys, django_capture_on_commit_callbacks
):
    from conclave.metrics import HTTP_REQUESTS

    app, reached_django = fast_path
    with django_capture_on_commit_callbacks(execute=True):
        flag_set(name="ENABLE_CAR_NUMBER", enabled=True, actor="test")
    counted = HTTP_REQUESTS.labels("feature-flags", "GET", "200")._value.get()

    status, headers, body = wsgi_get(app)
    view_status, view_headers, view_body = wsgi_get(app, "/api/config/feature-flags?via=django")

    assert reached_django == ["/api/config/feature-flags"]  # only the one with a query string
    assert status == view_status == 200
    assert body == view_body
    assert json.loads(body)["ENABLE_CAR_NUMBER"] is True
    for name in (
        "Content-Type",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert headers[name] == view_headers[name], name
    assert len(headers["X-Request-ID"]) == 36
    assert HTTP_REQUESTS.labels("feature-flags", "GET", "200")._value.get() == counted + 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"HTTP_HOST": "evil.example"}, 400),
        ({"REQUEST_METHOD": "POST"}, 405),
    ],
)
def test_fast_path__anything_else_goes_to_django(fast_path, extra, status):
    app, reached_django = fast_path

    answered, _headers, _body = wsgi_get(app, **extra)

    assert answered == status
    assert reached_django == ["/api/config/feature-flags"]


@pytest.mark.django_db
def test_fast_path__https_redirect_and_hsts_as_django_would(fast_path, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app, reached_django = fast_path

    plain_status, plain_headers, _ = wsgi_get(app)
    secure_status, secure_headers, _ = wsgi_get(app, HTTP_X_FORWARDED_PROTO="https")

    assert plain_status == 301  # Django's SecurityMiddleware redirected it
    assert plain_headers["Location"].startswith("https://")
    assert secure_status == 200
    assert secure_headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert reached_django == ["/api/config/feature-flags"]


@pytest.mark.django_db
def test_fast_path__request_id_echoed_only_when_plain(fast_path):
    app, _reached = fast_path

    _, plain, _ = wsgi_get(app, HTTP_X_REQUEST_ID="abc-123")
    _, odd, _ = wsgi_get(app, HTTP_X_REQUEST_ID="x" * 65)
    _, injected, _ = wsgi_get(app, HTTP_X_REQUEST_ID="a\r\nSet-Cookie: x=1")

    assert plain["X-Request-ID"] == "abc-123"
    assert len(odd["X-Request-ID"]) == len(injected["X-Request-ID"]) == 36


TRAP_SPRUNG: list[str] = []


def _spring_trap() -> str:
    TRAP_SPRUNG.append("code ran")
    return "version"


class _Trap:
    def __reduce__(self):
        return (_spring_trap, ())


def test_shared_cache__a_value_written_into_redis_is_never_unpickled(db):
    """Whoever can write to Redis must not run code in every process: the cache reads JSON,
    and a pickle placed at the flags' version key is refused, not run."""
    import pickle

    from django.core.cache import cache

    from flags.selectors import VERSION_KEY

    cache.client.get_client().set(cache.make_key(VERSION_KEY), pickle.dumps(_Trap()))

    with pytest.raises(ValueError):
        cache.get(VERSION_KEY)
    assert TRAP_SPRUNG == []
    cache.delete(VERSION_KEY)
