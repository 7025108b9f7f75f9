import json
import re
import secrets
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from conclave.env import Env
from tests.conftest import PYTHON, REPO_ROOT, clean_env, run_manage

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "conclave.settings.production",
    "SECRET_KEY": secrets.token_urlsafe(60),  # random: check --deploy warns of a weak key
    "ALLOWED_HOSTS": "hub.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/conclave",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "ENVIRONMENT": "staging",
    "DEV_MODE": "true",
}


def settings_of(env: dict[str, str], *names: str) -> dict:
    """Loads the settings in a fresh interpreter under `env` and returns the named values."""

    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on"])
def test_env_bool__true_spellings__true(monkeypatch, raw):
    monkeypatch.setenv("DEV_MODE", raw)

    assert Env().bool("DEV_MODE") is True


@pytest.mark.parametrize("raw", ["false", "0", "no", "off"])
def test_env_bool__false_spellings__false(monkeypatch, raw):
    monkeypatch.setenv("DEV_MODE", raw)

    assert Env().bool("DEV_MODE") is False


def test_env_bool__typo__error_names_variable(monkeypatch):
    monkeypatch.setenv("DEV_MODE", "flase")

    with pytest.raises(ImproperlyConfigured, match="DEV_MODE has an invalid value"):
        Env().bool("DEV_MODE")


def test_env_int__not_a_number__error_names_variable(monkeypatch):
    monkeypatch.setenv("HALT_CLEAR_QUORUM", "two")

    with pytest.raises(ImproperlyConfigured, match="HALT_CLEAR_QUORUM has an invalid value"):
        Env().int("HALT_CLEAR_QUORUM")


def test_local_settings__no_database_or_redis_url__sqlite_locmem_filesystem_broker(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local", CONCLAVE_VAR_DIR=str(tmp_path)
    )

    values = settings_of(
        env,
        "DATABASES",
        "CACHES",
        "CELERY_BROKER_URL",
        "CELERY_BROKER_TRANSPORT",
        "DEV_MODE",
        "SECRET_KEY",
    )

    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASES"]["default"]["NAME"] == str(tmp_path / "db.sqlite3")
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert values["CELERY_BROKER_URL"] == "filesystem://localhost//"
    assert values["CELERY_BROKER_TRANSPORT"] == "conclave.broker:Transport"
    assert values["DEV_MODE"] is True
    assert (tmp_path / "broker" / "queue").is_dir()
    assert len(values["SECRET_KEY"]) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_local_settings__secret_key__same_for_every_process(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local", CONCLAVE_VAR_DIR=str(tmp_path)
    )

    first = settings_of(env, "SECRET_KEY")["SECRET_KEY"]
    second = settings_of(env, "SECRET_KEY")["SECRET_KEY"]

    assert first == second


def test_local_settings__urls_set__postgres_and_redis_used(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/conclave",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )

    values = settings_of(env, "DATABASES", "CACHES", "CELERY_BROKER_URL")

    assert values["DATABASES"]["default"]["ENGINE"] == "conclave.database"
    assert values["CACHES"]["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/3"


def test_settings__flag_variables__pin_flags(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path),
        ENABLE_CAR_NUMBER="true",
        ENABLE_UI_REFRESH="off",
    )

    pins = settings_of(env, "FEATURE_FLAG_PINS")["FEATURE_FLAG_PINS"]

    assert pins == {"ENABLE_CAR_NUMBER": True, "ENABLE_UI_REFRESH": False}


def test_settings__admin_chat_ids__parsed_as_integers(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path),
        ADMIN_CHAT_IDS="12345,-1001234567890",
    )

    assert settings_of(env, "ADMIN_CHAT_IDS")["ADMIN_CHAT_IDS"] == [12345, -1001234567890]


def test_settings__time_zone__the_workshops_from_the_environment_utc_by_default(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local", CONCLAVE_VAR_DIR=str(tmp_path)
    )

    default = settings_of(env, "TIME_ZONE", "WEEK_STARTS_ON")
    set_ = settings_of(
        {**env, "TIME_ZONE": "Asia/Jerusalem", "WEEK_STARTS_ON": "sunday"},
        "TIME_ZONE", "CELERY_TIMEZONE", "WEEK_STARTS_ON",
    )  # fmt: skip

    assert default == {"TIME_ZONE": "UTC", "WEEK_STARTS_ON": "monday"}
    assert set_ == {
        "TIME_ZONE": "Asia/Jerusalem", "CELERY_TIMEZONE": "UTC", "WEEK_STARTS_ON": "sunday",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ADMIN_CHAT_IDS": "12345,abc"}, "ADMIN_CHAT_IDS has an invalid value"),
        ({"ENVIRONMENT": "prod"}, "ENVIRONMENT must be one of"),
        ({"ENABLE_CAR_NUMBER": "maybe"}, "ENABLE_CAR_NUMBER has an invalid value"),
        ({"TELEGRAM_API_BASE_URL": "api.telegram.org"}, "TELEGRAM_API_BASE_URL must be"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"TIME_ZONE": "Asia/Jerusalm"}, "TIME_ZONE must be an IANA time zone name"),
        ({"TIME_ZONE": "+02:00"}, "TIME_ZONE must be an IANA time zone name"),
        ({"WEEK_STARTS_ON": "Sunday"}, "WEEK_STARTS_ON must be one of monday, tuesday"),
    ],
)
def test_settings__bad_value__refuses_to_start_naming_it(tmp_path, overrides, message):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="conclave.settings.local",
        CONCLAVE_VAR_DIR=str(tmp_path),
        **overrides,
    )

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings__complete__check_passes():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=clean_env(**PRODUCTION_ENV)
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"DEBUG": "true"}, "DEBUG must be off in production"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name the hosts"),
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "DATABASE_URL must point at PostgreSQL"),
        ({"REDIS_URL": ""}, "REDIS_URL must be set in production"),
    ],
)
def test_production_settings__unsafe__refuse_to_start(overrides, message):
    result = run_manage("check", env=clean_env(**{**PRODUCTION_ENV, **overrides}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_settings__secure_cookies_and_headers():
    values = settings_of(
        clean_env(**PRODUCTION_ENV),
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "DEBUG",
    )

    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_SSL_REDIRECT": True,
        "DEBUG": False,
    }


SPEC_VARIABLES = [
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEV_MODE",
    "ENVIRONMENT",
    "ALLOWED_HOSTS",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "ADMIN_CHAT_IDS",
    "TELEGRAM_WEBHOOK_SECRET",
    "HALT_REDIS_PREFIX",
    "HALT_CLEAR_QUORUM",
    "ALLOW_VERIFICATION_BYPASS",
    "WITNESS_BOOTSTRAP_ENABLED",
    "PKCS11_MODULE",
    "PKCS11_TOKEN_LABEL",
    "PKCS11_PIN",
    "ENABLE_CAR_NUMBER",
    "ENABLE_PART_CATEGORIES",
    "ENABLE_TG_ADMIN_NOTIFS",
    "ENABLE_TG_MECH_NOTIFS",
    "ENABLE_MECH_I18N",
    "ENABLE_UI_REFRESH",
]


def test_env_example__documents_every_variable_with_a_comment():
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    documented = {}
    for index, line in enumerate(lines):
        name = line.lstrip("# ").split("=", 1)[0]
        if "=" in line and name.isupper() and " " not in name:
            documented[name] = lines[index - 1].startswith("#") if index else False

    missing = [name for name in SPEC_VARIABLES if name not in documented]
    uncommented = [name for name, has_comment in documented.items() if not has_comment]
    assert missing == []
    assert uncommented == []


def test_env_example__every_variable_read_by_settings_is_documented():

    sources = "".join(path.read_text() for path in (REPO_ROOT / "conclave").rglob("*.py"))
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', sources))
    read |= set(re.findall(r'choice\(\s*"([A-Z0-9_]+)"', sources))
    documented = (REPO_ROOT / ".env.example").read_text()

    assert sorted(name for name in read if f"{name}=" not in documented) == []


@pytest.mark.django_db
def test_migrations__every_model_change_has_its_migration():
    from django.core.management import call_command

    # exits non-zero (SystemExit) when a model differs from what its migrations build
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
