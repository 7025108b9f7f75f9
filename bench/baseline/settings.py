"""The product's test settings with nothing between gunicorn and the baseline's views."""

from conclave.settings.test import *  # noqa: F403

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.baseline.urls"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
