"""The product's settings as the benchmarks serve it: the test settings (real PostgreSQL and
Redis, development keys), with static files indexed once at start as in production rather
than looked up on disk for every request (from the apps' folders: nothing is collected)."""

from conclave.settings.test import *  # noqa: F403

WHITENOISE_AUTOREFRESH = False
STATIC_ROOT = None
