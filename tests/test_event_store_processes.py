"""The event store against real concurrent processes and a least-privilege role, each in a
PostgreSQL database of its own (the suite's test database rolls back, these must commit)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest

from tests.conftest import REPO_ROOT, clean_env, run_manage

pytestmark = pytest.mark.django_db

WRITERS = 16
APPENDS_EACH = 200


@pytest.fixture
def event_store(scratch_database, tmp_path):
    """A migrated scratch database with the system keys: (environment for manage.py, dsn)."""
    database = scratch_database("conclave_scratch")
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        LOG_LEVEL="WARNING",
    )
    for step in (["migrate", "-v0"], ["keys", "bootstrap"]):
        result = run_manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    return env, database.dsn


WRITER = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from events.services import event_append
    writer = int(sys.argv[1])
    for n in range(int(sys.argv[2])):
        last = event_append(event_type="order.created", payload={"writer": writer, "n": n})
    # Each writer's last event is in the log within seconds, whatever happened to integrators.
    assert last.wait(timeout=60).payload == {"writer": writer, "n": n}
    """
)


def integrator(env: dict[str, str]) -> subprocess.Popen:
    """A running `manage.py integrate_events`, once it has said it handles SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "integrate_events"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "SIGTERM stops" in process.stdout.readline()
    # Keep reading what it logs, so a full pipe never blocks it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process


def test_integrator__started__its_heap_settled_before_its_first_batch(event_store):
    """What the integrator loaded at start is out of the garbage collector's sight
    (conclave.heap): no full collection walks it between two batches."""
    env, _ = event_store
    process = integrator(
        {**env, "EVENT_INTEGRATION": "integrator", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    )
    try:
        started = next(
            json.loads(line) for line in process.stderr if '"integrator_started"' in line
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    assert started["settled_objects"] > 50_000


def test_concurrent_writers_and_integrators__killed_integrator__no_gap_no_fork_no_loss(
    event_store,
):
    """16 writer processes queue 200 events each while two integrators take turns; one is
    killed with SIGKILL mid-run (its batch rolls back) and replaced."""
    env, dsn = event_store
    env = {**env, "EVENT_INTEGRATION": "integrator"}
    first, second = integrator(env), integrator(env)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(APPENDS_EACH)],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for w in range(WRITERS)
    ]
    with psycopg.connect(dsn, autocommit=True) as connection:
        while connection.execute("SELECT COUNT(*) FROM events").fetchone()[0] < 500:
            time.sleep(0.05)
    first.kill()
    replacement = integrator(env)
    failures = [w.stderr.read().decode() for w in writers if w.wait(timeout=600) != 0]
    for process in (second, replacement):
        process.send_signal(signal.SIGTERM)
    stopped = [process.wait(timeout=30) for process in (second, replacement)]

    assert failures == []
    assert first.wait() == -signal.SIGKILL
    assert stopped == [0, 0], [p.stderr.read() for p in (second, replacement)]
    with psycopg.connect(dsn) as connection:
        queue = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT sequence), COUNT(*) FILTER (WHERE sequence IS NULL) "
            "FROM event_queue"
        ).fetchone()
        assert queue == (WRITERS * APPENDS_EACH + 1, WRITERS * APPENDS_EACH + 1, 0)
        linked = connection.execute(
            "SELECT COUNT(*) FROM event_queue q JOIN events e ON e.sequence = q.sequence "
            "WHERE e.payload::text = q.payload::jsonb::text"
        ).fetchone()[0]
        assert linked == WRITERS * APPENDS_EACH + 1
        count, low, high = connection.execute(
            "SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM events"
        ).fetchone()
        per_writer = connection.execute(
            "SELECT COUNT(DISTINCT (payload->>'writer', payload->>'n')) FROM events "
            "WHERE event_type = 'order.created'"
        ).fetchone()[0]
    assert (count, low, high) == (WRITERS * APPENDS_EACH + 1, 1, WRITERS * APPENDS_EACH + 1)
    assert per_writer == WRITERS * APPENDS_EACH
    verified = run_manage("verify_chain", "--full", env=env)
    assert verified.returncode == 0, verified.stderr
    assert f"chain verified: {count} events" in verified.stdout

    # The same log in parallel chunks; then tampered in a middle chunk.
    def verify_in_chunks():
        return run_manage(
            "verify_chain", "--full", "--workers", "2", "--chunk-size", "500", env=env
        )

    parallel = verify_in_chunks()
    with psycopg.connect(dsn) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute("UPDATE events SET payload = '{}' WHERE sequence IN (1777, 2900)")
    tampered = verify_in_chunks()

    assert parallel.returncode == 0, parallel.stderr
    assert f"chain verified: {count} events (1..{count})" in parallel.stdout
    assert tampered.returncode == 1
    assert "FAILED at sequence 1777" in tampered.stderr


def test_app_role__update_and_delete_refused_even_with_triggers_disabled(event_store):
    env, dsn = event_store
    role = run_manage(
        "app_role_sql", "--role", "conclave_app_test",
        "--password-placeholder", "'app-test-password'", env=env,
    )  # fmt: skip
    assert role.returncode == 0, role.stderr
    role_sql = role.stdout
    with psycopg.connect(dsn, autocommit=True) as owner:
        owner.execute("DROP ROLE IF EXISTS conclave_app_test")
        owner.execute(role_sql)
        owner.execute("ALTER TABLE events DISABLE TRIGGER USER")
    app_dsn = dsn.replace("user=postgres", "user=conclave_app_test") + " password=x"
    try:
        with psycopg.connect(app_dsn, autocommit=True) as app:
            assert app.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
            for statement in (
                "UPDATE events SET event_type = 'forged'",
                "DELETE FROM events",
                "TRUNCATE events",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
            # The queue: writers insert; a queued event's content can never be rewritten.
            app.execute(
                "INSERT INTO event_queue (event_type, payload, agent_id, local_timestamp) "
                "VALUES ('order.created', '{}', 'SYSTEM:EVENT_WRITER', now())"
            )
            for statement in (
                "UPDATE event_queue SET payload = '{\"forged\":1}'",
                "TRUNCATE event_queue",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
    finally:
        with psycopg.connect(dsn, autocommit=True) as owner:
            owner.execute("ALTER TABLE events ENABLE TRIGGER USER")
            owner.execute("DROP OWNED BY conclave_app_test")
            owner.execute("DROP ROLE conclave_app_test")


def test_migrations__events_reverse_to_zero_and_reapply(event_store):
    env, dsn = event_store

    backwards = run_manage("migrate", "events", "0001", env=env)
    with psycopg.connect(dsn) as connection:
        triggers_after_reverse = connection.execute(
            "SELECT COUNT(*) FROM information_schema.triggers WHERE event_object_table = 'events'"
        ).fetchone()[0]
    to_zero = run_manage("migrate", "events", "zero", env=env)
    forwards = run_manage("migrate", env=env)

    assert backwards.returncode == 0, backwards.stderr
    assert triggers_after_reverse == 0
    assert to_zero.returncode == 0, to_zero.stderr
    assert forwards.returncode == 0, forwards.stderr
    with psycopg.connect(dsn) as connection:
        triggers = connection.execute(
            "SELECT COUNT(*) FROM information_schema.triggers WHERE event_object_table = 'events'"
        ).fetchone()[0]
    assert triggers >= 6


def test_app_role__applied_by_migrate__the_product_serves_and_logs_as_it(
    scratch_database, tmp_path
):
    """The production shape: migrate (as the owner) grants the least-privilege role, and the
    web server, the integrator and the operators' commands then work as that role."""
    from tests.conftest import gunicorn
    from tests.http import call
    from tests.workshop import RUNBOOK_ORDER

    database = scratch_database("conclave_approle")
    role, password = "conclave_app_run", "a-role-password-of-length"
    owner = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        HALT_REDIS_PREFIX=f"approle-{os.getpid()}",
        LOG_LEVEL="WARNING",
    )
    app = {
        **owner,
        "DATABASE_URL": database.url.replace("postgres@", f"{role}:{password}@"),
        "EVENT_INTEGRATION": "integrator",
    }
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute(f"DROP ROLE IF EXISTS {role}")
    try:
        for step in (["migrate", "-v0"], ["keys", "bootstrap"]):
            assert run_manage(*step, env=owner).returncode == 0
        applied = run_manage(
            "app_role_sql", "--apply", "--role", role,
            env={**owner, "APP_DATABASE_PASSWORD": password},
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        made = run_manage("create_mechanic", "mika", "--password", "a-long-enough-password-1",
                          env=app)  # fmt: skip
        assert made.returncode == 0, made.stderr
        chaining = integrator(app)
        try:
            with gunicorn(app) as base:
                token = call("POST", f"{base}/api/mechanic/login",
                             body={"username": "mika", "password": "a-long-enough-password-1"}
                             )[1]["token"]  # fmt: skip
                auth = {"Authorization": f"Bearer {token}"}
                status, order = call("POST", f"{base}/api/orders", body=RUNBOOK_ORDER,
                                     headers=auth)  # fmt: skip
                assert status == 201, order
                moved = call("PATCH", f"{base}/api/mechanic/orders/{order['id']}/status",
                             body={"status": "in_progress"}, headers=auth)  # fmt: skip
                assert moved[0] == 200, moved
                deadline = time.monotonic() + 30
                while "order.status_changed" not in str(
                    call("GET", f"{base}/v1/observer/events?limit=100")[1]
                ):
                    assert time.monotonic() < deadline, "the integrator did not chain"
                    time.sleep(0.2)
        finally:
            chaining.send_signal(signal.SIGTERM)
            chaining.wait(timeout=30)
        for step in (["checkpoint", "--force"], ["verify_chain", "--full"]):
            result = run_manage(*step, env=app)
            assert result.returncode == 0, f"{step}: {result.stderr}"
        with psycopg.connect(database.dsn.replace("user=postgres", f"user={role}")) as as_app:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                as_app.execute("DELETE FROM events")
    finally:
        with psycopg.connect(database.dsn, autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                connection.execute(f"DROP OWNED BY {role}")
                connection.execute(f"DROP ROLE {role}")
