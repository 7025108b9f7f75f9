"""Structured logging: every line is one JSON object carrying the request id when there is one.

Django, Celery and gunicorn all log through the standard library; structlog's
ProcessorFormatter renders their records and our own structlog events the same way.

No secret is written: the code never logs a password or a token, the HTTP client's own
request lines (which carry the bot token in Telegram's URLs) are kept at WARNING, and every
line is scrubbed of the configured secrets (the bot token, the webhook secret, the PKCS#11 PIN,
SECRET_KEY, the database and Redis passwords) in case a library's message quotes one.
"""

import logging
from typing import Any
from urllib.parse import urlsplit

import structlog

REDACTED = "[redacted]"
# Views whose path carries a credential (a one-time sign-in link's token): logged masked.
SECRET_PATHS = frozenset({"mechanic:login-link"})


def configured_secrets() -> list[str]:
    """The secret values in the settings, longest first (none before settings are ready)."""
    from django.conf import settings

    if not settings.configured:
        return []
    values = [
        getattr(settings, name, "")
        for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "PKCS11_PIN", "SECRET_KEY")
    ]
    values += [db.get("PASSWORD", "") for db in getattr(settings, "DATABASES", {}).values()]
    for url in (getattr(settings, "REDIS_URL", ""), getattr(settings, "CELERY_BROKER_URL", "")):
        values.append(urlsplit(url or "").password or "")
    # Short values would scrub ordinary words: a secret is at least 6 characters.
    return sorted({str(v) for v in values if v and len(str(v)) >= 6}, key=len, reverse=True)


def logged_path(request: Any, *, query: bool = True) -> str:
    """The request's path (with its query string, or not) as log lines write it: the path
    arguments of the views in SECRET_PATHS masked."""
    path = request.get_full_path() if query else request.path
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in SECRET_PATHS:
        for value in match.kwargs.values():
            path = path.replace(str(value), REDACTED)
    return path


class SecretPathFilter(logging.Filter):
    """Django's `django.request` lines ("Service Unavailable: <path>") with the path as
    `logged_path` writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and isinstance(record.args, tuple) and len(record.args) == 2:
            record.args = (record.args[0], logged_path(request, query=False))
        return True


# Beat jobs run every few seconds that find nothing to do nearly every time: Celery's lines
# for each run (sent, received, succeeded) would be most of the log. They log what they did.
ROUTINE_TASKS = frozenset({"notifications.tasks.dispatch_due_notifications"})
CELERY_TASK_LOGGERS = (
    "celery.beat",
    "celery.worker.strategy",
    "celery.app.trace",
    "django_structlog.celery.receivers",
)


class RoutineTaskFilter(logging.Filter):
    """Drops the INFO lines of a routine task's runs; a failed run's warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or task_named(record) not in ROUTINE_TASKS


def task_named(record: logging.LogRecord) -> str | None:
    data = getattr(record, "data", None)  # the worker's "received" and "succeeded"
    if isinstance(data, dict):
        return data.get("name")
    if isinstance(record.msg, dict):  # django-structlog's "task_enqueued"
        return record.msg.get("child_task_name")
    if isinstance(record.args, tuple) and len(record.args) == 2:  # beat's "Sending due task"
        return str(record.args[1])
    return None


# A body over Django's own limits (a form's size, its number of fields or files): Django's
# security logger writes it at ERROR with a traceback, but it is the client's mistake,
# answered 413 or 400 with the reason, and nothing for whoever reads the errors to mend.
CLIENT_MISTAKE_LOGGERS = tuple(
    f"django.security.{name}"
    for name in ("RequestDataTooBig", "TooManyFieldsSent", "TooManyFilesSent")
)


class ClientMistakeFilter(logging.Filter):
    """Writes such a line as a warning, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in configured_secrets():
            text = text.replace(secret, REDACTED)
        return text


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def build_logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": RedactingFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            },
        },
        "filters": {
            "secret_paths": {"()": SecretPathFilter},
            "routine_tasks": {"()": RoutineTaskFilter},
            "client_mistakes": {"()": ClientMistakeFilter},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # RequestLogMiddleware logs each request once; Django's own copy would repeat it.
            "django.request": {"level": "ERROR", "filters": ["secret_paths"]},
            "django.server": {"level": "WARNING"},
            # httpx logs each request's URL at INFO: Telegram's carry the bot token.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            **{name: {"filters": ["routine_tasks"]} for name in CELERY_TASK_LOGGERS},
            **{name: {"filters": ["client_mistakes"]} for name in CLIENT_MISTAKE_LOGGERS},
        },
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
