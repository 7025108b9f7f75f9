"""Production: secrets have no defaults; unsafe combinations refuse to start."""

from django.core.exceptions import ImproperlyConfigured

from conclave.env import choice, env

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL

ENVIRONMENT = choice("ENVIRONMENT", ("staging", "production"), default="production")

SECRET_KEY = env.str("SECRET_KEY", default="")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters in production"
    )
DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts this service answers to")
if DATABASES["default"]["ENGINE"] != "conclave.database":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production (halt channel and broker)")

# TLS terminates at the ingress, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and the metrics scraper talk plain HTTP to the pod.
SECURE_REDIRECT_EXEMPT = [r"^v1/health", r"^v1/ready$", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # Preloading binds the domain and its subdomains to HTTPS in browsers for months: the
    # operator's choice (SECURE_HSTS_PRELOAD=true), not a default; `check --deploy` is
    # otherwise clean.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LANGUAGE_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
