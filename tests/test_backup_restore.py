"""The backup and restore procedure of the README ("Backup and restore"), run for real:
`pg_dump --format=custom` of a live deployment's database, `pg_restore` into an empty one,
then the restored log must verify whole (`verify_chain --full`), pass the start-up
verification with its checkpoint anchor, keep its append-only triggers, and take new events
where the old ones stopped."""

import subprocess
import uuid

import psycopg
import pytest

from tests.conftest import clean_env, run_manage

pytestmark = pytest.mark.django_db


def _env(database, tmp_path) -> dict[str, str]:
    return clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.test",
        DATABASE_URL=database.url,
        REDIS_URL="redis://127.0.0.1:6379/15",
        HALT_REDIS_PREFIX=f"backup-{uuid.uuid4().hex[:8]}",
        SIGNING_KEY_DIR=str(tmp_path / "keys"),  # the key directory is backed up beside
        CONCLAVE_VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="filesystem://",
        LOG_LEVEL="WARNING",
    )


def _manage(*args: str, env: dict[str, str]) -> str:
    result = run_manage(*args, env=env, timeout=180)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as connection:
        return connection.execute(sql).fetchone()[0]


def test_pg_dump_then_pg_restore__log_verifies__anchor_holds__appends_continue(
    scratch_database, tmp_path
):
    source, target = scratch_database("conclave_backup"), scratch_database("conclave_restored")
    live = _env(source, tmp_path)
    for step in (
        ["migrate", "-v0"],
        ["keys", "bootstrap"],
        ["create_keeper", "alice", "--key-out", str(tmp_path / "alice.pem")],
        ["create_keeper", "bob", "--key-out", str(tmp_path / "bob.pem")],
        ["seed_demo"],
        ["checkpoint", "--force"],
        ["flags", "on", "ENABLE_CAR_NUMBER"],  # events after the checkpoint, too
    ):
        _manage(*step, env=live)
    dump = tmp_path / "conclave.dump"

    subprocess.run(  # noqa: S603, S607 - the documented commands
        ["pg_dump", "--format=custom", "--file", str(dump), source.url.replace("postgres://", "postgresql://")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    subprocess.run(  # noqa: S603, S607
        ["pg_restore", "--exit-on-error", "--no-owner", "--dbname", target.url.replace("postgres://", "postgresql://"), str(dump)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    restored = {**live, "DATABASE_URL": target.url}

    events = _count(source.dsn, "SELECT count(*) FROM events")
    assert _count(target.dsn, "SELECT count(*) FROM events") == events > 5
    assert _count(target.dsn, "SELECT count(*) FROM checkpoints") == 1
    assert "verified" in _manage("verify_chain", "--full", env=restored).lower()
    started = _manage("preoperational_verify", env=restored)
    assert "Pre-operational verification completed successfully" in started
    # The append-only triggers came back with the data.
    with psycopg.connect(target.dsn, autocommit=True) as connection:
        with pytest.raises(psycopg.Error, match="events are append-only: DELETE refused"):
            connection.execute("DELETE FROM events WHERE sequence = 1")
    # The restored deployment goes on: the next event follows the last restored one.
    _manage("flags", "on", "ENABLE_PART_CATEGORIES", env=restored)
    _manage("checkpoint", "--force", env=restored)
    assert _count(target.dsn, "SELECT max(sequence) FROM events") > events
    assert "verified" in _manage("verify_chain", "--full", env=restored).lower()
