import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import UserFactory

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_flags() -> Iterator[None]:
    """Each process's flag snapshot is read again in every test."""
    from flags.selectors import forget_flags

    forget_flags()
    yield
    forget_flags()


@pytest.fixture(autouse=True)
def _fresh_queue_floor(monkeypatch) -> None:
    """The integrator's reads start from the queue's beginning in every test (its floor is
    the process's: a transactional test's settled entries would carry it into the next)."""
    from events import integration

    monkeypatch.setattr(integration, "queue_floor", integration.QueueFloor())


def reset_halt() -> None:
    """No halt in Redis, and both channels read afresh (a test's database row is rolled back
    with its transaction)."""
    from conclave.halt import forget_halt_status, redis_channel

    forget_halt_status()
    redis_channel._down_until = 0.0
    with contextlib.suppress(redis.RedisError, OSError):  # a test may stop its Redis
        redis_channel.write(halted=False)


@pytest.fixture(autouse=True)
def _not_halted() -> Iterator[None]:
    """Every test starts and ends with no halt."""
    reset_halt()
    yield
    reset_halt()


@pytest.fixture(autouse=True)
def _signing_keys(settings, tmp_path_factory) -> Iterator[None]:
    """Software signing keys in a folder of the test's own."""
    from events.signing import get_signer

    settings.SIGNING_KEY_DIR = tmp_path_factory.mktemp("keys")
    get_signer.cache_clear()
    yield
    get_signer.cache_clear()


@pytest.fixture
def system_keys(db):
    from events.services import keys_bootstrap

    return keys_bootstrap()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The process environment without the suite's own configuration, plus overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "DJANGO_SETTINGS_MODULE",
            "ENVIRONMENT",
            "DEV_MODE",
            "SECRET_KEY",
            "LOG_LEVEL",
            "PYTEST_CURRENT_TEST",
            "EVENT_INTEGRATION",
        }
    }
    env.update(overrides)
    return env


@dataclass(frozen=True)
class ScratchDatabase:
    url: str  # for DATABASE_URL
    dsn: str  # for psycopg


@contextlib.contextmanager
def scratch_databases() -> Iterator[Callable[[str], ScratchDatabase]]:
    """Makes PostgreSQL databases of a test's own on the suite's server, dropped afterwards:
    for tests whose data must be committed (other processes read it, or it must survive the
    suite's rollback) without touching the shared test database. Each name carries the test
    database's, so two suites on one server (each on its own DATABASE_URL) keep apart."""
    from django.conf import settings

    server = settings.DATABASES["default"]
    host, port, user = server["HOST"], server["PORT"] or 5432, server["USER"]
    admin = f"host={host} port={port} user={user} dbname=postgres"
    made: list[str] = []

    def make(name: str) -> ScratchDatabase:
        name = f"{name}__{server['NAME']}"[:63]  # PostgreSQL's longest name
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return ScratchDatabase(
            url=f"postgres://{user}@{host}:{port}/{name}",
            dsn=f"host={host} port={port} user={user} dbname={name}",
        )

    try:
        yield make
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in made:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch_database():
    with scratch_databases() as make:
        yield make


def run_manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def served_env(database: ScratchDatabase, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment of this project's processes on a scratch database (test settings, keys
    and var/ under `tmp_path`, plus overrides), the database migrated and its keys made."""
    env = clean_env(
        **{
            "DJANGO_SETTINGS_MODULE": "conclave.settings.test",
            "DATABASE_URL": database.url,
            "SIGNING_KEY_DIR": str(tmp_path / "keys"),
            "CONCLAVE_VAR_DIR": str(tmp_path / "var"),
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
    )
    for step in (["migrate", "-v0"], ["keys", "bootstrap"]):
        result = run_manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    return env


def wait_for_lock_waiters(dsn: str, count: int, timeout: float = 30) -> None:
    """Returns once `count` sessions of the database wait on a lock (the test holds one to
    stop requests at a known point); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            (waits,) = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
        if waits >= count:
            return
        assert time.monotonic() < deadline, f"{waits} of {count} sessions ever waited on a lock"
        time.sleep(0.05)


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], workers: int = 2, log: Path | None = None, config: str = ""
) -> Iterator[str]:
    """A real gunicorn serving this project with `env` on a free port; yields its base URL.
    Its output goes to `log` when given; `config` names a settings file (the command line's
    workers and address still win)."""
    from tests.http import call

    port = free_port()
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "conclave.wsgi:application", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
         *(["--config", config] if config else [])],
        cwd=REPO_ROOT, env=env, stdout=output, stderr=output,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call("GET", f"{base}/v1/health", timeout=1)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        if log:
            output.close()


# --- The workshop ---------------------------------------------------------------------------------


@pytest.fixture
def mechanic(system_keys):
    from orders.services import mechanic_create
    from tests.workshop import MECHANIC_PASSWORD

    return mechanic_create(username="mika", password=MECHANIC_PASSWORD)


@pytest.fixture
def other_mechanic(system_keys):
    from orders.services import mechanic_create
    from tests.workshop import OTHER_MECHANIC_PASSWORD

    return mechanic_create(username="nora", password=OTHER_MECHANIC_PASSWORD)


@pytest.fixture
def staff_user(system_keys):
    """A staff member with the workshop's model permissions (the staff group's)."""
    from django.contrib.auth.models import Permission

    staff = UserFactory(username="stella", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="orders"))
    return staff


@pytest.fixture
def staff_client(api_client, staff_user):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=staff_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api_client


# --- Telegram -------------------------------------------------------------------------------------


def _forget_telegram_state() -> None:
    """The circuit and the rate windows live in Redis, shared by processes: start afresh."""
    from django_redis import get_redis_connection

    from notifications.delivery import _limiter, breaker

    breaker.cache_clear()
    _limiter.cache_clear()
    redis = get_redis_connection("default")
    for pattern in ("pybreaker:conclave:telegram*", "LIMITS*"):
        for key in redis.scan_iter(pattern):
            redis.delete(key)


@pytest.fixture
def telegram(settings):
    """The fake Bot API, with the product pointed at it; admin chats 111 and 222."""
    from tests.fake_telegram import TOKEN, fake_telegram

    with fake_telegram() as fake:
        settings.TELEGRAM_API_BASE_URL = fake.url
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.ADMIN_CHAT_IDS = [111, 222]
        settings.TELEGRAM_TIMEOUT_SECONDS = 1.0
        settings.NOTIFY_BACKOFF_SECONDS = 0.01
        # Retries here follow each other at once; the per-chat limit has a test of its own.
        settings.TELEGRAM_RATE_PER_CHAT = "1000/second"
        _forget_telegram_state()
        yield fake
        _forget_telegram_state()
