"""Settings shared by every environment. Every value comes from the environment (`.env.example`)."""

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from conclave.env import choice, env
from conclave.logging import build_logging_config, configure_structlog
from flags.constants import FLAG_NAMES

BASE_DIR = Path(__file__).resolve().parents[2]
# Local state of the quick start (SQLite file, broker folder, dev secret key); git-ignored.
VAR_DIR = Path(env.str("CONCLAVE_VAR_DIR", default=str(BASE_DIR / "var")))

ENVIRONMENT = choice(
    "ENVIRONMENT", ("development", "test", "staging", "production"), default="development"
)
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Governance core -------------------------------------------------------------------------
# DEV_MODE=true signs with software keys ("DEVELOPMENT"); otherwise a PKCS#11 token signs.
DEV_MODE = env.bool("DEV_MODE", default=False)
HSM_MODE = "DEVELOPMENT" if DEV_MODE else "PRODUCTION"
PKCS11_MODULE = env.str("PKCS11_MODULE", default="")
PKCS11_TOKEN_LABEL = env.str("PKCS11_TOKEN_LABEL", default="")
PKCS11_PIN = env.str("PKCS11_PIN", default="")
HALT_REDIS_PREFIX = env.str("HALT_REDIS_PREFIX", default="archon72")
HALT_CLEAR_QUORUM = env.int("HALT_CLEAR_QUORUM", default=2)
ALLOW_VERIFICATION_BYPASS = env.bool("ALLOW_VERIFICATION_BYPASS", default=False)
WITNESS_BOOTSTRAP_ENABLED = env.bool("WITNESS_BOOTSTRAP_ENABLED", default=False)
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
# Failed mechanic logins for one username before it is locked, and for how long.
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# While halted, a Celery task that writes is retried this often, without limit.
HALT_TASK_RETRY_SECONDS = env.int("HALT_TASK_RETRY_SECONDS", default=10)
# Software signing keys (DEV_MODE=true only): PKCS#8 files, one per key id, mode 0600.
SIGNING_KEY_DIR = Path(env.str("SIGNING_KEY_DIR", default=str(VAR_DIR / "keys")))

# --- Feature flags: an ENABLE_<FLAG> variable pins that flag to its value ----------------------
FEATURE_FLAG_PINS: dict[str, bool] = {
    name: env.bool(name) for name in FLAG_NAMES if os.environ.get(name, "") != ""
}

# --- Telegram ----------------------------------------------------------------------------------
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")
if not TELEGRAM_API_BASE_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("TELEGRAM_API_BASE_URL must be an http(s) URL")
TELEGRAM_API_BASE_URL = TELEGRAM_API_BASE_URL.rstrip("/")
ADMIN_CHAT_IDS: list[int] = env.list("ADMIN_CHAT_IDS", cast=int, default=[])
TELEGRAM_WEBHOOK_SECRET = env.str("TELEGRAM_WEBHOOK_SECRET", default="")

# --- Applications ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "conclave.apps.ConclaveAdminConfig",
    "conclave.accounts.apps.AccountsConfig",  # before auth: its createsuperuser is the one run
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_structlog",
    "csp",
    "conclave.apps.ConclaveConfig",
    "events.apps.EventsConfig",
    "flags.apps.FlagsConfig",
    "orders.apps.OrdersConfig",
    "notifications.apps.NotificationsConfig",
    "bot.apps.BotConfig",
    "mechanic_ui.apps.MechanicUiConfig",
]

MIDDLEWARE = [
    "conclave.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "conclave.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "mechanic_ui.middleware.LanguageMiddleware",
    "conclave.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The JSON APIs in UTC; the pages and the admin in the workshop's TIME_ZONE.
    "conclave.middleware.ApiInUtcMiddleware",
    # DEBUG only (`make run`): an unknown API path is a JSON 404 there too.
    "conclave.middleware.ApiNotFoundMiddleware",
    # The request id on every log line and the X-Request-ID header; one line per request.
    "conclave.middleware.RequestLogMiddleware",
    # Bodies over the limit are refused from Content-Length before anything reads them (the
    # session, user and language known: a page's refusal is that page's, in its language).
    "conclave.middleware.RequestSizeLimitMiddleware",
    # A NUL in a query string or a form is a 400: PostgreSQL's text cannot hold one.
    "conclave.middleware.NulInputMiddleware",
    # Every unsafe request is refused while halted (SPEC 3.4).
    "conclave.middleware.HaltMiddleware",
    # A service's refusal a page did not catch (the state changed since its checks): 4xx/503.
    "conclave.middleware.RefusalMiddleware",
    # A view's database outage (unreachable, disk full) is a 503/507, not a 500.
    "conclave.middleware.DatabaseErrorMiddleware",
]

ROOT_URLCONF = "conclave.urls"
WSGI_APPLICATION = "conclave.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "mechanic_ui.context.mechanic_ui",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL from DATABASE_URL, or the quick start's SQLite file ------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # Several processes (gunicorn workers, Celery) share the file: WAL lets readers run
        # beside the writer, IMMEDIATE takes the write lock up front instead of failing on
        # upgrade, and the timeout waits for it instead of raising "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Django's PostgreSQL backend, its health check without a round trip (conclave.database).
    DATABASES["default"]["ENGINE"] = "conclave.database"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Parameters bound by the server, and each statement prepared on its fifth use on a
    # connection: PostgreSQL stops parsing and planning the queries the workshop repeats (an
    # event's queue INSERT costs the server about a third less). Empty prepares nothing (for
    # a transaction-pooling PgBouncer older than 1.21).
    prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        int(prepare_threshold) if prepare_threshold else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Event log integration (events.integration) -----------------------------------------------
# "integrator": writers queue events and `manage.py integrate_events` chains, signs and
# inserts them in batches; "inline": each appending transaction integrates its own entries
# (SQLite's default: it has one writer at a time anyway).
EVENT_INTEGRATION = choice(
    "EVENT_INTEGRATION",
    ("integrator", "inline"),
    default="inline" if DATABASES["default"]["ENGINE"].endswith("sqlite3") else "integrator",
)
EVENT_INTEGRATOR_BATCH_SIZE = env.int("EVENT_INTEGRATOR_BATCH_SIZE", default=2000)
EVENT_INTEGRATOR_POLL_SECONDS = env.float("EVENT_INTEGRATOR_POLL_SECONDS", default=0.01)
# Integrated queue entries are purged after this long (their events stay in the log).
EVENT_QUEUE_RETENTION_SECONDS = env.int("EVENT_QUEUE_RETENTION_SECONDS", default=3600)

# --- Redis: cache (and broker) when REDIS_URL is set; local memory otherwise -------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "conclave",
            # Version 2: JSON values. Entries pickled by earlier releases are never read.
            "VERSION": 2,
            "OPTIONS": {
                # JSON, not django-redis's default pickle: unpickling runs code, and whoever
                # can write to Redis (operators raise halts there) must not run it in every
                # process. The cache holds counters, throttle histories and the flags' version.
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                # A Redis outage must not turn cache reads (throttle counters) into 500s;
                # readiness reports the outage and the halt check reads Redis on its own.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ------------------------------------------------------------------------------------
# With no Redis the broker is kombu's filesystem transport: it needs no server, works across
# the quick start's processes (web, worker, beat) on one host, and ships with kombu. Delivery
# guarantees come from the outbox, not from the broker. (Its URL names a host, which the
# transport ignores: without one kombu warns on every connection.)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost//")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "conclave.broker:Transport"  # messages written whole
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "visibility_timeout": 3600,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish while the broker is down must not stall a request: the outbox re-sends later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_TASK_TIME_LIMIT = 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Seconds between verifications of the newest events (a failure halts the system).
VERIFY_RECENT_EVENTS_SECONDS = env.int("VERIFY_RECENT_EVENTS_SECONDS", default=60)
# How often Celery beat signs a checkpoint (SPEC 3.6), when the log has grown since the last.
CHECKPOINT_INTERVAL_SECONDS = env.int("CHECKPOINT_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "verify-recent-events": {
        "task": "conclave.tasks.verify_recent_events",
        "schedule": float(VERIFY_RECENT_EVENTS_SECONDS),
    },
    "purge-event-queue": {"task": "events.tasks.purge_event_queue", "schedule": 600.0},
    "purge-idempotency-keys": {
        "task": "conclave.tasks.purge_idempotency_keys",
        "schedule": 3600.0,
    },
    "checkpoint": {
        "task": "events.tasks.checkpoint",
        "schedule": float(CHECKPOINT_INTERVAL_SECONDS),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule")
)

# --- Passwords, sessions, security headers -----------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: this origin's scripts, styles, images and API only; no inline
# script anywhere (the API docs use drf-spectacular's split view for that). Inline style
# attributes, which a few admin templates use, are the one allowance.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# CORS: no Access-Control-Allow-* header is ever sent, so browsers keep other origins' pages
# from reading the API; the mechanic pages are same-origin. (No CORS middleware on purpose.)

# Request bodies (conclave.middleware.RequestSizeLimitMiddleware): 1 MiB, or for a multipart
# upload REQUEST_MAX_BYTES (a photo's limit and room for the form around it); more is 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("he", "עברית"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The mechanic pages' language switcher (ENABLE_MECH_I18N) keeps the choice in this cookie too.
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# The workshop's time zone: the pages and the admin show its time, and "today", "yesterday" and
# a history's days are its days. The JSON APIs and the event log speak UTC whatever it is
# (conclave.middleware.ApiInUtcMiddleware; events.crypto).
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as error:
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA time zone name such as Europe/Berlin; got {TIME_ZONE!r}"
    ) from error
# The first day of the workshop's week, the time history's "week": Sunday in Israel, Monday
# in most of Europe.
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK_STARTS_ON = choice("WEEK_STARTS_ON", WEEKDAYS, default="monday")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["conclave.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "conclave.negotiation.JsonFirstNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "conclave.authentication.BearerTokenAuthentication",
        "conclave.authentication.SessionCookieAuthentication",
    ],
    # Least privilege: an endpoint that is public says so itself.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "conclave.throttling.SignedInUserThrottle",
    ],
    # THROTTLE_RATE_<SCOPE> set empty switches that throttle off (the load benchmark does:
    # all its clients share one address).
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_RATE_ANON", default="120/min") or None,
        "user": env.str("THROTTLE_RATE_USER", default="1200/min") or None,
        "login": env.str("THROTTLE_RATE_LOGIN", default="10/min") or None,
        "observer": env.str("THROTTLE_RATE_OBSERVER", default="600/min") or None,
        "orders_anon": env.str("THROTTLE_RATE_ORDERS_ANON", default="30/min") or None,
    },
    # Client address for throttling: REMOTE_ADDR unless TRUSTED_PROXY_COUNT proxies stand in
    # front, so a client cannot pick its own identity with a forged X-Forwarded-For.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "EXCEPTION_HANDLER": "conclave.exception_handlers.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "conclave.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Conclave Hub API",
    "DESCRIPTION": (
        "Car-parts ordering workshop on a tamper-evident governance core. Authenticated "
        "endpoints take `Authorization: Bearer <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ComponentStatusEnum": "conclave.apis.COMPONENT_STATUSES",
        # signing_mode of events and hsm_mode of /v1/health: one set of values, one name.
        "SigningModeEnum": "events.models.SigningMode",
        "OrderStatusEnum": "orders.models.OrderStatus",
    },
}

# --- Logging: JSON lines through structlog, with the request id on every line ------------------
LOG_LEVEL = choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")
LOG_FORMAT = choice("LOG_FORMAT", ("json", "console"), default="json")
LOGGING = build_logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)
configure_structlog()
DJANGO_STRUCTLOG_CELERY_ENABLED = True
TRUST_UPSTREAM_REQUEST_ID = env.bool("TRUST_UPSTREAM_REQUEST_ID", default=False)

# --- Order photos ------------------------------------------------------------------------------
ORDER_PHOTO_MAX_BYTES = env.int("ORDER_PHOTO_MAX_BYTES", default=8 * 1024 * 1024)
REQUEST_MAX_BYTES = ORDER_PHOTO_MAX_BYTES + 256 * 1024
ORDER_PHOTO_MAX_COUNT = env.int("ORDER_PHOTO_MAX_COUNT", default=20)

# --- Notifications -----------------------------------------------------------------------------
# Where links in messages point (the admin, the mechanic UI).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# An identical message to the same chat within this many seconds is sent once.
NOTIFY_DEDUPE_SECONDS = env.int("NOTIFY_DEDUPE_SECONDS", default=60)
# Transient failures (5xx, timeouts) before a message is given up as dead.
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=8)
# Exponential backoff between those attempts: first delay and cap, in seconds (with jitter).
NOTIFY_BACKOFF_SECONDS = env.float("NOTIFY_BACKOFF_SECONDS", default=1.0)
NOTIFY_BACKOFF_MAX_SECONDS = env.float("NOTIFY_BACKOFF_MAX_SECONDS", default=300.0)
# Telegram's limits, kept by every worker together (Redis).
TELEGRAM_RATE_GLOBAL = env.str("TELEGRAM_RATE_GLOBAL", default="30/second")
TELEGRAM_RATE_PER_CHAT = env.str("TELEGRAM_RATE_PER_CHAT", default="1/second")
TELEGRAM_TIMEOUT_SECONDS = env.float("TELEGRAM_TIMEOUT_SECONDS", default=5.0)
# Consecutive failures that open the circuit, and how long it stays open before one probe.
TELEGRAM_BREAKER_FAILURES = env.int("TELEGRAM_BREAKER_FAILURES", default=5)
TELEGRAM_BREAKER_RESET_SECONDS = env.int("TELEGRAM_BREAKER_RESET_SECONDS", default=30)
# An order left unfinished in the Telegram bot for this long is dropped.
BOT_CONVERSATION_SECONDS = env.int("BOT_CONVERSATION_SECONDS", default=30 * 60)
CELERY_BEAT_SCHEDULE["prune-telegram-updates"] = {
    "task": "bot.tasks.prune_telegram_updates",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["dispatch-due-notifications"] = {
    "task": "notifications.tasks.dispatch_due_notifications",
    "schedule": env.float("NOTIFY_DISPATCH_SECONDS", default=2.0),
}
