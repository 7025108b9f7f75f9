"""The halt across real processes: gunicorn workers, a Celery worker, redis-cli, the keepers'
own command line, and start-up verification. Each test has a scratch database and its own
Redis key prefix."""

import json
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PYTHON, REPO_ROOT, clean_env, gunicorn, run_manage
from tests.http import call

pytestmark = pytest.mark.django_db

REDIS_DB = "15"


@pytest.fixture
def deployment(scratch_database, tmp_path):
    """A migrated scratch database with system keys, two keepers (key files in tmp_path) and
    a staff token; returns (env, dsn, keeper key files, token)."""
    database = scratch_database("conclave_halt")
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        HALT_REDIS_PREFIX=f"halt-test-{uuid.uuid4().hex[:8]}",
        SIGNING_KEY_DIR=str(tmp_path / "keys"),
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="filesystem://",
        HALT_TASK_RETRY_SECONDS="1",
        EVENT_QUEUE_RETENTION_SECONDS="0",
        LOG_LEVEL="WARNING",
        DJANGO_SUPERUSER_USERNAME="operator",
        DJANGO_SUPERUSER_EMAIL="operator@example.com",
        DJANGO_SUPERUSER_PASSWORD="not-a-real-password-1234",
    )
    keys = [tmp_path / "alice.pem", tmp_path / "bob.pem"]
    steps = [
        ["migrate", "-v0"],
        ["keys", "bootstrap"],
        ["create_keeper", "alice", "--key-out", str(keys[0])],
        ["create_keeper", "bob", "--key-out", str(keys[1])],
        ["createsuperuser", "--noinput"],
    ]
    for step in steps:
        result = run_manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    token = run_manage("drf_create_token", "operator", env=env).stdout.split()[2]
    yield env, database.dsn, keys, token
    subprocess.run(
        ["redis-cli", "-n", REDIS_DB, "DEL", *redis_keys(env)], check=False, capture_output=True
    )


def redis_keys(env: dict[str, str]) -> list[str]:
    prefix = env["HALT_REDIS_PREFIX"]
    return [f"{prefix}:halt:active", f"{prefix}:halt:reason", f"{prefix}:halt:number"]


def redis_cli(*args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-n", REDIS_DB, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def halt_row(dsn: str) -> tuple:
    with psycopg.connect(dsn) as connection:
        return connection.execute("SELECT is_halted, reason, channel FROM halt_state").fetchone()


@pytest.fixture
def server(deployment):
    with gunicorn(deployment[0]) as base:
        yield base


def write_statuses(base: str, count: int = 12) -> set[int]:
    """Statuses of unsafe requests spread over both workers (405: not halted; 503: halted)."""
    return {call("POST", f"{base}/v1/observer/events")[0] for _ in range(count)}


def test_redis_cli_halt__every_worker_refuses_within_a_second__ceremony_clears(deployment, server):
    env, dsn, keys, token = deployment
    assert write_statuses(server) == {405}

    redis_cli("SET", redis_keys(env)[0], "true")
    redis_cli("SET", redis_keys(env)[1], "Emergency maintenance")
    time.sleep(1.0)
    after_a_second = write_statuses(server)
    redis_cli("DEL", redis_keys(env)[0], redis_keys(env)[1])
    time.sleep(1.2)
    after_delete = write_statuses(server)

    assert after_a_second == {503}
    assert halt_row(dsn) == (True, "Emergency maintenance", "redis")
    assert after_delete == {503}
    assert redis_cli("GET", redis_keys(env)[0]) == "true"  # written back from the row

    # The ceremony, with the keepers' own command line.
    staff = {"Authorization": f"Bearer {token}"}
    challenge = call("GET", f"{server}/v1/admin/halt/ceremony", headers=staff)[1]["challenge"]
    alone = None
    for key in keys:
        alone = alone or call("POST", f"{server}/v1/admin/halt/clear", headers=staff)[0]
        signed = run_manage("keeper_sign", "--key", str(key), "--challenge", challenge, env=env)
        assert signed.returncode == 0, signed.stderr
        approved = call(
            "POST",
            f"{server}/v1/admin/halt/ceremony/approve",
            headers=staff,
            body={"keeper_key_id": _keeper_key_id(dsn, key.stem), "signature": signed.stdout},
        )
        assert approved[0] == 201, approved
    cleared = call("POST", f"{server}/v1/admin/halt/clear", headers=staff)

    assert alone == 409
    assert cleared[0] == 200, cleared
    assert halt_row(dsn)[0] is False
    time.sleep(1.0)
    assert write_statuses(server) == {405}
    assert redis_cli("EXISTS", redis_keys(env)[0]) == "0"


def _keeper_key_id(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT key_id FROM keeper_keys WHERE keeper_id = %s", [f"KEEPER:{name}"]
        ).fetchone()[0]


def test_celery_task_that_writes__waits_out_the_halt__runs_after_the_clear(deployment, tmp_path):
    env, dsn, keys, _ = deployment
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "--app", "conclave", "worker", "--pool", "solo",
         "--loglevel", "WARNING"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert run_manage("halt", "raise", "--reason", "drill", env=env).returncode == 0
        sent = run_manage(
            "shell", "-c", "from events.tasks import purge_event_queue; purge_event_queue.delay()",
            env=env,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        time.sleep(4)
        queued_while_halted = _queue_rows(dsn)
        _clear_with_keepers(env, dsn, keys)
        deadline = time.monotonic() + 30
        while _queue_rows(dsn) and time.monotonic() < deadline:
            time.sleep(0.2)
        queued_after_clear = _queue_rows(dsn)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert queued_while_halted > 0  # the task was deferred, not run and not dropped
    # The clear's own events are new entries; everything before them was purged.
    assert queued_after_clear <= 4


def _queue_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM event_queue WHERE event_type NOT LIKE 'halt.%%'"
        ).fetchone()[0]


CLEAR = """
import sys
from cryptography.hazmat.primitives import serialization
from events.models import KeeperKey
from conclave.services import ceremony_approve, ceremony_open, halt_clear
challenge = ceremony_open(actor="test").challenge
for path in sys.argv[1:]:
    private = serialization.load_pem_private_key(open(path, "rb").read(), password=None)
    public = private.public_key().public_bytes_raw()
    key = next(k for k in KeeperKey.objects.all() if bytes(k.public_key) == public)
    ceremony_approve(keeper_key_id=key.key_id, signature=private.sign(challenge.encode()).hex(),
                     actor="test")
halt_clear(actor="test")
"""


def _clear_with_keepers(env: dict[str, str], dsn: str, keys: list[Path]) -> None:
    cleared = subprocess.run(
        [PYTHON, "-c", "import django; django.setup(); exec(open(0).read())", *map(str, keys)],
        input=CLEAR, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cleared.returncode == 0, cleared.stderr
    assert halt_row(dsn)[0] is False


def test_startup_verification__clean__succeeds__tampered__halts_and_blocks(deployment):
    env, dsn, _, _ = deployment

    clean = run_manage("preoperational_verify", "--json", env=env)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET session_replication_role = replica")
        connection.execute("UPDATE events SET payload = '{\"forged\": true}' WHERE sequence = 2")
    # The clean run verified up to here: start from the beginning to find the rewrite.
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("UPDATE verification_runs SET extends_verified_prefix = false")
    tampered = run_manage("preoperational_verify", env=env)
    bypassed = run_manage("preoperational_verify", env={**env, "ALLOW_VERIFICATION_BYPASS": "true"})
    post_halt = run_manage(
        "preoperational_verify", "--post-halt", env={**env, "ALLOW_VERIFICATION_BYPASS": "true"}
    )

    assert clean.returncode == 0, clean.stderr
    assert "Pre-operational verification completed successfully" in clean.stdout
    assert {check["name"] for check in json.loads(clean.stdout.rsplit("}", 1)[0] + "}")["checks"]} >= {
        "hash_chain", "witness_pool", "keeper_keys", "checkpoint_anchors", "halt_state",
        "replica_sync",
    }  # fmt: skip
    assert tampered.returncode == 1
    assert "hash_chain: sequence 2" in tampered.stderr
    is_halted, reason, channel = halt_row(dsn)
    assert (is_halted, channel) == (True, "automatic")
    assert "sequence 2" in reason
    assert bypassed.returncode == 0
    assert "BYPASSED" in bypassed.stderr
    assert post_halt.returncode == 1


def test_startup_verification__fewer_keepers_than_quorum__blocks(deployment):
    env, _, _, _ = deployment

    result = run_manage("preoperational_verify", env={**env, "HALT_CLEAR_QUORUM": "3"})

    assert result.returncode == 1
    assert "keeper_keys: 2 keepers with active keys; a halt needs 3" in result.stderr
