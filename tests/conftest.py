import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
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
        }
    }
    env.update(overrides)
    return env


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
