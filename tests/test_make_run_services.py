"""`make run` with DATABASE_URL and REDIS_URL set uses PostgreSQL and Redis."""

import json
import signal

import psycopg
import redis

from tests.test_quickstart import QuickStart, get


def test_make_run__database_and_redis_urls__served_from_them(tmp_path, scratch_database):
    database = scratch_database("conclave_make_run")
    redis_url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(redis_url).flushdb()
    run = QuickStart(tmp_path, DATABASE_URL=database.url, REDIS_URL=redis_url)
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
        "outbox": {"backlog": 0, "oldest_age_seconds": 0.0},
    }
    assert not (tmp_path / "var" / "db.sqlite3").exists()
    with psycopg.connect(database.dsn) as connection:
        staff = connection.execute(
            "SELECT is_staff FROM auth_user WHERE username = 'staff'"
        ).fetchone()
    assert staff == (True,)
    assert survivors == set()
