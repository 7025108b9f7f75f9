"""`make run` with DATABASE_URL and REDIS_URL set uses PostgreSQL and Redis."""

import json
import signal

import psycopg
import pytest
import redis
from django.conf import settings

from tests.test_quickstart import QuickStart, get


@pytest.fixture
def scratch_database():
    """A database of this test's own on the suite's PostgreSQL server."""
    server = settings.DATABASES["default"]
    name = "conclave_make_run"
    dsn = (
        f"host={server['HOST']} port={server['PORT'] or 5432} user={server['USER']} dbname=postgres"
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://{server['USER']}@{server['HOST']}:{server['PORT'] or 5432}/{name}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_make_run__database_and_redis_urls__served_from_them(tmp_path, scratch_database):
    redis_url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(redis_url).flushdb()
    run = QuickStart(tmp_path, DATABASE_URL=scratch_database, REDIS_URL=redis_url)
    try:
        run.wait_until_serving()

        status, body = get(run.base + "/v1/ready")
        returncode, survivors = run.stop(signal.SIGTERM, whole_group=False)
    finally:
        run.kill()

    assert status == 200
    assert json.loads(body) == {
        "status": "ready",
        "database": "connected",
        "redis": "connected",
        "broker": "connected",
    }
    assert not (tmp_path / "var" / "db.sqlite3").exists()
    with psycopg.connect(scratch_database) as connection:
        staff = connection.execute(
            "SELECT is_staff FROM auth_user WHERE username = 'staff'"
        ).fetchone()
    assert staff == (True,)
    assert survivors == set()
