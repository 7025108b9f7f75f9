"""The quick start (`make run`): SQLite and no Redis unless DATABASE_URL / REDIS_URL are set."""

import os
import secrets
import tempfile

from conclave.env import env

from .base import *  # noqa: F403
from .base import VAR_DIR

DEBUG = env.bool("DEBUG", default=True)
DEV_MODE = env.bool("DEV_MODE", default=True)
HSM_MODE = "DEVELOPMENT" if DEV_MODE else "PRODUCTION"


def _local_secret_key() -> str:
    """A per-checkout random key kept in var/ (git-ignored), shared by all local processes."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=VAR_DIR)  # created with mode 0600
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # atomic: when processes race, the first complete key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return path.read_text(encoding="ascii").strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()

# Serve static files straight from the apps, so the quick start needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
