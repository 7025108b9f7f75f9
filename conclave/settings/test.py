"""The test suite: real PostgreSQL and Redis by default, as on the CI machine.

The quick-start smoke pass runs the same settings with DATABASE_URL pointing at SQLite and an
empty REDIS_URL (see the Makefile).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/conclave")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("DEV_MODE", "true")
os.environ.setdefault("SECRET_KEY", "test-only-key-not-used-outside-the-test-suite-000000")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Each test runs in a transaction that never commits, so no integrator process could see its
# events: appends integrate in their own transaction. Tests of the integrator set
# EVENT_INTEGRATION=integrator and run `manage.py integrate_events` against committed data.
os.environ.setdefault("EVENT_INTEGRATION", "inline")

from .base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Uploads kept in memory in the suite's own process; a served one (gunicorn's workers, which
# share only a disk) is given MEDIA_ROOT and stores them there, as deployed.
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
        if "MEDIA_ROOT" in os.environ
        else "django.core.files.storage.InMemoryStorage"
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files from the apps, as in the quick start; no collectstatic before the suite.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
